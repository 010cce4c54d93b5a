package relay

import "net/http"

// TEMPORARY until the converter and gemini packages land this session.
func (r *Relay) handleChat(w http.ResponseWriter, req *http.Request) {
	openaiDialect{}.writeError(w, http.StatusNotImplemented, "not implemented yet")
}

func (r *Relay) geminiRoutes(mux *http.ServeMux) {}
