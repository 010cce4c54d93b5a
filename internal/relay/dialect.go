package relay

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
)

// dialect writes the relay's own errors in the shape of the route's provider.
type dialect interface {
	errorBody(status int, msg string) []byte
	writeError(w http.ResponseWriter, status int, msg string)
	// streamError is an in-stream error in this dialect's SSE form.
	streamError(status int, msg string) []byte
}

type anthropicDialect struct{}
type openaiDialect struct{}
type googleDialect struct{}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (anthropicDialect) errorBody(status int, msg string) []byte {
	return anthropic.ErrorBody(status, msg)
}
func (d anthropicDialect) writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, d.errorBody(status, msg))
}
func (anthropicDialect) streamError(status int, msg string) []byte {
	return anthropic.ErrorEvent(status, msg)
}

func openaiErrorType(status int) string {
	switch status {
	case 400, 404, 413:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 429:
		return "rate_limit_error"
	}
	return "server_error"
}

func (openaiDialect) errorBody(status int, msg string) []byte {
	b := []byte(`{"error":{"message":`)
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"type":"`...)
	b = append(b, openaiErrorType(status)...)
	b = append(b, `","param":null,"code":null}}`...)
	return b
}
func (d openaiDialect) writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, d.errorBody(status, msg))
}
func (d openaiDialect) streamError(status int, msg string) []byte {
	b := append([]byte("event: error\ndata: "), d.errorBody(status, msg)...)
	return append(b, "\n\n"...)
}

func googleStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 413:
		return "INVALID_ARGUMENT"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

func (googleDialect) errorBody(status int, msg string) []byte {
	b := []byte(`{"error":{"code":`)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"status":"`...)
	b = append(b, googleStatus(status)...)
	return append(b, `"}}`...)
}
func (d googleDialect) writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, d.errorBody(status, msg))
}
func (d googleDialect) streamError(status int, msg string) []byte {
	b := append([]byte("data: "), d.errorBody(status, msg)...)
	return append(b, "\n\n"...)
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
	dialectFor(path).writeError(w, status, msg)
}
