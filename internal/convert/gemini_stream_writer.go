package convert

import (
	"bytes"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file writes Events as a client's Gemini SSE stream, the way
// streamGenerateContent?alt=sse sends it: every event "data: {a
// GenerateContentResponse}\n\n" holding the new parts only, no event names,
// no end marker. Text and thinking deltas are one chunk each (a thought
// piece has thought:true); a tool call is one chunk with its functionCall
// whole, sent when the call is complete (Gemini never splits a call). A
// thinking part's state goes in the thoughtSignature of the next part sent
// (see WriteGemini); the last chunk carries finishReason and usageMetadata
// (and an empty text part, with a signature still pending). EventError is
// a chunk {"error": {code, message, status}} as Google sends errors.

// geminiStreamWriter keeps one client stream's state.
type geminiStreamWriter struct {
	model, id      string
	started, ended bool
	usage          provider.Usage
	// cur is the open part; its text (thinking) or args (call) so far.
	cur     Part
	open    bool
	buf     []byte
	pending string
}

// NewGeminiStreamWriter returns a writer of one client Gemini stream that
// reports model.
func NewGeminiStreamWriter(model string) StreamWriter {
	return &geminiStreamWriter{model: model}
}

// Write implements StreamWriter.
func (w *geminiStreamWriter) Write(dst []byte, ev *Event) []byte {
	if w.ended {
		return dst
	}
	if !w.started {
		w.started = true
		w.id = ev.ID
		if ev.Kind != EventStart || w.id == "" {
			w.id = randomID("")
		}
	}
	switch ev.Kind {
	case EventStart:
		w.usage.Merge(ev.Usage)
	case EventPartStart:
		dst = w.stop(dst)
		w.cur, w.open, w.buf = ev.Part, true, w.buf[:0]
	case EventDelta:
		dst = w.delta(dst, ev.Delta)
	case EventSignature:
		if w.open && w.cur.Kind == PartThinking {
			w.cur.Sig = ev.Sig
		}
	case EventPartStop:
		dst = w.stop(dst)
	case EventFinish:
		dst = w.stop(dst)
		w.usage.Merge(ev.Usage)
		w.ended = true
		last := geminiTextPart("")
		last.ThoughtSignature, w.pending = w.pending, ""
		return w.chunk(dst, last, geminiFinishReason(ev.Stop), geminiUsageOut(w.usage, ev.ReasoningTokens))
	case EventError:
		w.ended = true
		return appendGeminiError(dst, ev.ErrType, ev.Delta)
	}
	return dst
}

// Finish implements StreamWriter: a Gemini stream has no end marker.
func (w *geminiStreamWriter) Finish(dst []byte) []byte { return dst }

func (w *geminiStreamWriter) delta(dst []byte, text string) []byte {
	if !w.open || text == "" {
		return dst
	}
	switch w.cur.Kind {
	case PartText:
		p := geminiTextPart(text)
		p.ThoughtSignature, w.pending = w.pending, ""
		return w.chunk(dst, p, "", nil)
	case PartThinking:
		w.buf = append(w.buf, text...)
		p := geminiTextPart(text)
		p.Thought = true
		return w.chunk(dst, p, "", nil)
	case PartToolCall:
		w.buf = append(w.buf, text...)
	}
	return dst
}

// stop closes the open part: a call is sent whole, a thinking part's
// state kept for the next part.
func (w *geminiStreamWriter) stop(dst []byte) []byte {
	if !w.open {
		return dst
	}
	w.open = false
	switch w.cur.Kind {
	case PartToolCall:
		w.cur.Args = string(w.buf)
		p := geminiPart{FunctionCall: &geminiFunctionCall{ID: w.cur.CallID, Name: w.cur.Name, Args: geminiArgs(w.cur)}}
		p.ThoughtSignature, w.pending = w.pending, ""
		return w.chunk(dst, p, "", nil)
	case PartThinking:
		w.cur.Text = string(w.buf)
		sig := geminiPartSig(w.cur, geminiClient)
		if sig == "" {
			return dst
		}
		if w.cur.Sig.Origin == OriginGemini && w.cur.Sig.ID == geminiSigOnThought {
			p := geminiTextPart("")
			p.Thought, p.ThoughtSignature = true, sig
			return w.chunk(dst, p, "", nil)
		}
		var flush string
		w.pending, flush = queueGeminiSig(w.pending, sig)
		if flush != "" {
			p := geminiTextPart("")
			p.ThoughtSignature = flush
			return w.chunk(dst, p, "", nil)
		}
	}
	return dst
}

// chunk writes one SSE event holding part.
func (w *geminiStreamWriter) chunk(dst []byte, part geminiPart, finish string, u *geminiUsage) []byte {
	out := geminiResponse{
		Candidates:    []geminiCandidate{{Content: geminiContent{Role: "model", Parts: []geminiPart{part}}, FinishReason: finish}},
		UsageMetadata: u,
		ModelVersion:  w.model,
		ResponseID:    w.id,
	}
	b, _ := marshal(out) // args are valid JSON (geminiArgs): cannot fail
	dst = append(dst, "data: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}

// appendGeminiError writes a stream error the way Google sends one.
func appendGeminiError(dst []byte, errType, msg string) []byte {
	code, status := geminiStatusOf(errType)
	if msg == "" {
		msg = "upstream stream error"
	}
	dst = append(dst, `data: {"error":{"code":`...)
	dst = appendInt(dst, int64(code))
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, status)
	return append(dst, "}}\n\n"...)
}

// geminiStatusOf maps an error type (Anthropic's names, as the readers
// give them) onto an HTTP code and a google.rpc status.
func geminiStatusOf(errType string) (int, string) {
	switch errType {
	case "rate_limit_error", "rate_limit_exceeded", "insufficient_quota":
		return 429, "RESOURCE_EXHAUSTED"
	case "overloaded_error", "server_is_overloaded":
		return 503, "UNAVAILABLE"
	case "invalid_request_error":
		return 400, "INVALID_ARGUMENT"
	case "permission_error":
		return 403, "PERMISSION_DENIED"
	case "authentication_error":
		return 401, "UNAUTHENTICATED"
	case "not_found_error":
		return 404, "NOT_FOUND"
	}
	return 500, "INTERNAL"
}

// geminiArrayWriter writes the same chunks as one JSON array, the answer
// of streamGenerateContent without alt=sse: "[" chunk ",\r\n" chunk ... "]".
type geminiArrayWriter struct {
	w       *geminiStreamWriter
	n       int
	scratch []byte
}

// NewGeminiArrayStreamWriter returns a writer of one client stream in the
// JSON-array form (streamGenerateContent without alt=sse) that reports
// model. Its Finish closes the array, so the relay must call it even after
// an error chunk.
func NewGeminiArrayStreamWriter(model string) StreamWriter {
	return &geminiArrayWriter{w: &geminiStreamWriter{model: model}}
}

// Write implements StreamWriter.
func (a *geminiArrayWriter) Write(dst []byte, ev *Event) []byte {
	a.scratch = a.w.Write(a.scratch[:0], ev)
	rest := a.scratch
	for len(rest) > 0 {
		ev, tail, _ := bytes.Cut(rest, []byte("\n\n"))
		rest = tail
		if a.n == 0 {
			dst = append(dst, '[')
		} else {
			dst = append(dst, ",\r\n"...)
		}
		a.n++
		dst = append(dst, bytes.TrimPrefix(ev, []byte("data: "))...)
	}
	return dst
}

// Finish implements StreamWriter: it closes the array.
func (a *geminiArrayWriter) Finish(dst []byte) []byte {
	if a.n == 0 {
		dst = append(dst, '[')
	}
	a.n = 1
	return append(dst, ']')
}
