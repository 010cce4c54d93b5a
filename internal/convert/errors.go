package convert

import "fmt"

// RequestError is a client's fault found while decoding or encoding a
// request: the relay answers it with HTTP 400 in the client's shape. Param
// names the offending field for dialects whose errors carry one (OpenAI's
// error.param).
type RequestError struct {
	// Message is a lowercase, human-readable explanation.
	Message string
	// Param is the JSON path of the offending field in the client's body
	// ("messages[2].content", "n"), or empty when the whole body is at
	// fault.
	Param string
}

// Error returns the message.
func (e *RequestError) Error() string { return e.Message }

// badRequest is a *RequestError on param with a formatted message.
func badRequest(param, format string, args ...any) *RequestError {
	return &RequestError{Message: fmt.Sprintf(format, args...), Param: param}
}
