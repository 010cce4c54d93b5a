package relay

import (
	"net/http"
	"strconv"

	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
)

// dialect is the API a client speaks, as far as the relay's own answers
// go: the shape of the errors it makes. The route table (routes.go) says
// which dialect each path speaks. Each provider package maps its errors
// once (status to error type and code); the dialect only picks that
// package.
type dialect interface {
	// name is the dialect's name in the request log: anthropic, openai
	// (Chat Completions), responses (OpenAI Responses) or google.
	name() string
	errorBody(status int, msg string) []byte
	// quotaBody is the 429 of a spent budget. OpenAI names it apart from a
	// rate limit (clients stop rather than wait); the others by status.
	quotaBody(msg string) []byte
	// streamError is an in-stream error in this dialect's SSE form.
	streamError(status int, msg string) []byte
}

// paramDialect is a dialect whose error body names the request parameter
// at fault (OpenAI's error.param).
type paramDialect interface {
	paramErrorBody(status int, msg, param string) []byte
}

type anthropicDialect struct{}
type openaiDialect struct{}
type googleDialect struct{}

func (anthropicDialect) name() string { return "anthropic" }
func (openaiDialect) name() string    { return "openai" }
func (googleDialect) name() string    { return "google" }

func (anthropicDialect) errorBody(status int, msg string) []byte {
	return anthropic.ErrorBody(status, msg)
}
func (anthropicDialect) quotaBody(msg string) []byte {
	return anthropic.ErrorBody(http.StatusTooManyRequests, msg)
}
func (anthropicDialect) streamError(status int, msg string) []byte {
	return anthropic.ErrorEvent(status, msg)
}

func (openaiDialect) errorBody(status int, msg string) []byte {
	return openai.ErrorBody(status, msg, "")
}
func (openaiDialect) paramErrorBody(status int, msg, param string) []byte {
	return openai.ErrorBody(status, msg, param)
}
func (openaiDialect) quotaBody(msg string) []byte { return openai.QuotaErrorBody(msg) }
func (d openaiDialect) streamError(status int, msg string) []byte {
	b := append([]byte("event: error\ndata: "), d.errorBody(status, msg)...)
	return append(b, "\n\n"...)
}

func (googleDialect) errorBody(status int, msg string) []byte {
	return gemini.ErrorBody(status, "", msg)
}
func (googleDialect) quotaBody(msg string) []byte {
	return gemini.ErrorBody(http.StatusTooManyRequests, "", msg)
}
func (d googleDialect) streamError(status int, msg string) []byte {
	b := append([]byte("data: "), d.errorBody(status, msg)...)
	return append(b, "\n\n"...)
}

// responsesDialect is OpenAI's, but inside a stream a relay-made error is a
// response.failed event (openai.FailedEvent says why).
type responsesDialect struct{ openaiDialect }

func (responsesDialect) name() string { return "responses" }

func (responsesDialect) streamError(status int, msg string) []byte {
	return openai.FailedEvent(status, msg)
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

// DialectError writes an error for path in its provider's shape; the server's
// middleware uses it for errors raised before a handler runs.
func DialectError(w http.ResponseWriter, path string, status int, msg string) {
	writeDialectError(w, routeOf(path).dialect, status, msg)
}
