package relay

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
)

// dialect is the error shape of a route's provider. Each provider package
// owns its shape (one mapping of status to error type per provider); the
// dialect only picks it.
type dialect interface {
	errorBody(status int, msg string) []byte
	// streamError is an in-stream error in this dialect's SSE form.
	streamError(status int, msg string) []byte
}

type anthropicDialect struct{}
type openaiDialect struct{}
type googleDialect struct{}

func (anthropicDialect) errorBody(status int, msg string) []byte {
	return anthropic.ErrorBody(status, msg)
}
func (anthropicDialect) streamError(status int, msg string) []byte {
	return anthropic.ErrorEvent(status, msg)
}

func (openaiDialect) errorBody(status int, msg string) []byte {
	return openai.ErrorBody(status, msg, "")
}
func (d openaiDialect) streamError(status int, msg string) []byte {
	b := append([]byte("event: error\ndata: "), d.errorBody(status, msg)...)
	return append(b, "\n\n"...)
}

func (googleDialect) errorBody(status int, msg string) []byte {
	return gemini.ErrorBody(status, "", msg)
}
func (d googleDialect) streamError(status int, msg string) []byte {
	b := append([]byte("data: "), d.errorBody(status, msg)...)
	return append(b, "\n\n"...)
}

// writeJSON writes a complete JSON answer (errors raised outside a call).
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeDialectError writes a relay-made error in d's shape outside a call.
func writeDialectError(w http.ResponseWriter, d dialect, status int, msg string) {
	writeJSON(w, status, d.errorBody(status, msg))
}

// dialectFor picks the error shape from a request path.
func dialectFor(path string) dialect {
	switch {
	case strings.HasPrefix(path, "/gemini/"):
		return googleDialect{}
	case strings.HasPrefix(path, "/openai/"), strings.HasPrefix(path, "/v1/responses"), strings.HasPrefix(path, "/v1/chat/"):
		return openaiDialect{}
	}
	return anthropicDialect{}
}

// DialectError writes an error for path in its provider's shape; the server's
// middleware uses it for errors raised before a handler runs.
func DialectError(w http.ResponseWriter, path string, status int, msg string) {
	writeDialectError(w, dialectFor(path), status, msg)
}
