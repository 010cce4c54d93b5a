package gemini

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// ErrNotObject is returned by WrapCodeAssist for a body that is not a
// syntactically valid JSON object.
var ErrNotObject = errors.New("gemini: request body is not a valid JSON object")

// WrapCodeAssist wraps a public-API request body in the Code Assist envelope.
//
// For generateContent and streamGenerateContent the result is
// {"model":<model>,"project":<project>,"request":<body>}; "project" is left
// out when project is empty, as Gemini CLI does. For countTokens it is
// {"request":{"model":"models/<model>",<body fields>}} (Code Assist's
// countTokens takes no project). A countTokens body in the public
// {"generateContentRequest":{...}} form is unwrapped to its inner fields
// first, and a "model" field already in the body is overwritten in place.
//
// The body is embedded byte for byte (surrounding whitespace aside); nothing
// is decoded and re-encoded, so unknown and future fields survive.
func WrapCodeAssist(c Call, project string, body []byte) ([]byte, error) {
	if !ValidModel(c.Model) {
		return nil, fmt.Errorf("gemini: wrap code assist request: %w", ErrInvalidPath)
	}
	b := bytes.TrimSpace(body)
	if len(b) < 2 || b[0] != '{' || !gjson.ValidBytes(b) {
		return nil, ErrNotObject
	}
	switch c.Method {
	case MethodGenerate, MethodStream:
		out := make([]byte, 0, len(b)+len(c.Model)+len(project)+40)
		out = append(out, `{"model":`...)
		out = provider.AppendJSONString(out, c.Model)
		if project != "" {
			out = append(out, `,"project":`...)
			out = provider.AppendJSONString(out, project)
		}
		out = append(out, `,"request":`...)
		out = append(out, b...)
		return append(out, '}'), nil
	case MethodCountTokens:
		return wrapCountTokens(c.Model, b)
	default:
		return nil, fmt.Errorf("gemini: wrap code assist request: unsupported method %q", c.Method)
	}
}

// wrapCountTokens builds {"request":{"model":"models/<model>",...}} from a
// trimmed, valid JSON object.
func wrapCountTokens(model string, b []byte) ([]byte, error) {
	s := view(b)
	if !gjson.Get(s, "contents").Exists() {
		if gcr := gjson.Get(s, "generateContentRequest"); gcr.IsObject() {
			b = rawBytes(b, gcr)
			s = view(b)
		}
	}
	if gjson.Get(s, "model").Exists() {
		// Rare: overwrite in place so no duplicate key reaches upstream.
		nb, err := sjson.SetBytes(bytes.Clone(b), "model", "models/"+model)
		if err != nil {
			return nil, fmt.Errorf("gemini: wrap countTokens request: %w", err)
		}
		out := make([]byte, 0, len(nb)+14)
		out = append(out, `{"request":`...)
		out = append(out, nb...)
		return append(out, '}'), nil
	}
	inner := bytes.TrimSpace(b[1 : len(b)-1])
	out := make([]byte, 0, len(b)+len(model)+40)
	out = append(out, `{"request":{"model":`...)
	out = provider.AppendJSONString(out, "models/"+model)
	if len(inner) > 0 {
		out = append(out, ',')
		out = append(out, inner...)
	}
	return append(out, "}}"...), nil
}

// UnwrapCodeAssist returns the inner "response" object of a Code Assist
// answer: a unary JSON body or one SSE data payload. The result is the
// original bytes of that object and aliases body (its capacity is clipped,
// so appending to it cannot overwrite body). A body without a "response"
// object, such as a countTokens answer or an error, is returned unchanged,
// and so is one whose "response" is visibly truncated.
//
// The envelope's traceId is dropped with the rest of the envelope; Gemini
// CLI maps it to responseId, which public-API clients treat as optional.
func UnwrapCodeAssist(body []byte) []byte {
	r := gjson.Get(view(body), "response")
	// A truncated body yields a truncated object; leave such bodies alone.
	if !r.IsObject() || len(r.Raw) < 2 || r.Raw[len(r.Raw)-1] != '}' {
		return body
	}
	return rawBytes(body, r)
}

// rawBytes returns the bytes of r inside b, the buffer r was read from
// through view, with capacity clipped. A member value never starts at offset
// 0, so Index 0 means gjson could not locate r and the bytes are copied.
func rawBytes(b []byte, r gjson.Result) []byte {
	end := r.Index + len(r.Raw)
	if r.Index <= 0 || end > len(b) {
		return []byte(r.Raw)
	}
	return b[r.Index:end:end]
}

// view returns a read-only string that shares b's memory, so gjson can scan a
// body without copying it. Results read through a view must not outlive b:
// code that keeps a string from one clones it.
func view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// bytesView returns a read-only []byte sharing s's memory, for writers such
// as hashes that neither modify nor keep what they are given.
func bytesView(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
