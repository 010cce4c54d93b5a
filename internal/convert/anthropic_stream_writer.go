package convert

import (
	"github.com/ccrelay/ccrelay/internal/provider"
)

// messagesStreamWriter turns Events into a Messages client's SSE.
type messagesStreamWriter struct {
	model         string
	started, done bool
	usage         provider.Usage

	next int // the next client block index
	open bool
	cur  writerPart
}

// writerPart is the block open in the client's stream.
type writerPart struct {
	evIndex, index int
	kind           PartKind
	custom         bool
	redacted       bool // sent as redacted_thinking: no deltas
	sig            Signature
	text           []byte // the thinking text, for WrapSignature
}

// NewMessagesStreamWriter returns a writer for one client Messages stream
// that reports model. It writes message_start (id "msg_" + the upstream id,
// usage so far), then per part content_block_start, its deltas and
// content_block_stop, then message_delta (stop_reason, stop_sequence,
// usage) and message_stop; EventError becomes an `event: error`. Block
// indexes are the writer's own, so a stream the relay retried on another
// account after message_start continues without a gap; a second EventStart
// writes nothing. Thinking from another provider gets, as a signature_delta
// just before its content_block_stop, WrapSignature of its state and the
// whole text; a custom tool call's raw input is streamed as the string
// value of {"input": ...}.
func NewMessagesStreamWriter(model string) StreamWriter {
	return &messagesStreamWriter{model: model}
}

// Write implements StreamWriter.
func (w *messagesStreamWriter) Write(dst []byte, ev *Event) []byte {
	if w.done {
		return dst
	}
	switch ev.Kind {
	case EventStart:
		if w.started {
			return w.closeBlock(dst) // a retried attempt: one message
		}
		w.usage = ev.Usage
		return w.messageStart(dst, ev.ID)
	case EventPartStart:
		dst = w.closeBlock(w.ensureStart(dst))
		return w.blockStart(dst, ev)
	case EventDelta:
		if w.open && ev.Index == w.cur.evIndex && ev.Delta != "" {
			dst = w.blockDelta(dst, ev.Delta)
		}
	case EventSignature:
		if w.open && ev.Index == w.cur.evIndex && w.cur.kind == PartThinking {
			w.cur.sig = ev.Sig
		}
	case EventPartStop:
		if w.open && ev.Index == w.cur.evIndex {
			dst = w.closeBlock(dst)
		}
	case EventFinish:
		dst = w.closeBlock(w.ensureStart(dst))
		w.usage.Merge(ev.Usage)
		w.done = true
		return w.messageEnd(dst, ev)
	case EventError:
		w.done = true
		return appendMessagesError(dst, ev.ErrType, ev.Delta)
	}
	return dst
}

// Finish implements StreamWriter: a Messages stream ends with message_stop,
// which EventFinish wrote.
func (w *messagesStreamWriter) Finish(dst []byte) []byte { return dst }

func (w *messagesStreamWriter) ensureStart(dst []byte) []byte {
	if w.started {
		return dst
	}
	return w.messageStart(dst, "")
}

func (w *messagesStreamWriter) messageStart(dst []byte, id string) []byte {
	w.started = true
	dst = append(dst, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	dst = appendString(dst, messageID(id))
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, w.model)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	dst = appendMessagesUsage(dst, w.usage)
	return append(dst, "}}\n\n"...)
}

func (w *messagesStreamWriter) blockStart(dst []byte, ev *Event) []byte {
	p := &ev.Part
	cur := writerPart{evIndex: ev.Index, index: w.next, kind: p.Kind, custom: p.Custom, sig: p.Sig}
	var block []byte
	switch p.Kind {
	case PartText:
		block = []byte(`{"type":"text","text":""}`)
	case PartThinking:
		if p.Redacted && p.Sig.Origin == OriginAnthropic {
			cur.redacted = true
			block = appendString(append(block, `{"type":"redacted_thinking","data":`...), p.Sig.Value)
			block = append(block, '}')
		} else {
			block = []byte(`{"type":"thinking","thinking":"","signature":""}`)
		}
	case PartToolCall:
		block = appendString(append(block, `{"type":"tool_use","id":`...), p.CallID)
		block = appendString(append(block, `,"name":`...), p.Name)
		block = append(block, `,"input":{}}`...)
	default:
		return dst // nothing a Messages stream can show
	}
	w.next++
	w.open, w.cur = true, cur
	dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	dst = appendInt(dst, int64(cur.index))
	dst = append(dst, `,"content_block":`...)
	dst = append(dst, block...)
	dst = append(dst, "}\n\n"...)
	if cur.custom {
		dst = w.rawDelta(dst, `"input_json_delta","partial_json":`, `{\"input\":\"`)
	}
	return dst
}

func (w *messagesStreamWriter) blockDelta(dst []byte, delta string) []byte {
	switch w.cur.kind {
	case PartText:
		return w.delta(dst, `"text_delta","text":`, delta)
	case PartThinking:
		if w.cur.redacted {
			return dst
		}
		w.cur.text = append(w.cur.text, delta...)
		return w.delta(dst, `"thinking_delta","thinking":`, delta)
	case PartToolCall:
		if w.cur.custom {
			// The raw input is the value of a JSON string: each fragment
			// escaped alone concatenates to the whole escaped.
			esc := appendString(nil, delta)
			esc = appendString(nil, string(esc[1:len(esc)-1]))
			return w.rawDelta(dst, `"input_json_delta","partial_json":`, string(esc[1:len(esc)-1]))
		}
		return w.delta(dst, `"input_json_delta","partial_json":`, delta)
	}
	return dst
}

// delta writes a content_block_delta whose field (after the delta type)
// is the JSON string s.
func (w *messagesStreamWriter) delta(dst []byte, typeAndField, s string) []byte {
	dst = w.deltaOpen(dst, typeAndField)
	dst = appendString(dst, s)
	return append(dst, "}}\n\n"...)
}

// rawDelta writes a content_block_delta whose field is the already
// escaped string content esc.
func (w *messagesStreamWriter) rawDelta(dst []byte, typeAndField, esc string) []byte {
	dst = w.deltaOpen(dst, typeAndField)
	dst = append(dst, '"')
	dst = append(dst, esc...)
	return append(dst, "\"}}\n\n"...)
}

func (w *messagesStreamWriter) deltaOpen(dst []byte, typeAndField string) []byte {
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = appendInt(dst, int64(w.cur.index))
	dst = append(dst, `,"delta":{"type":`...)
	return append(dst, typeAndField...)
}

// closeBlock ends the open block: a thinking block gets its signature, a
// custom call the end of its {"input": ...}.
func (w *messagesStreamWriter) closeBlock(dst []byte) []byte {
	if !w.open {
		return dst
	}
	w.open = false
	switch {
	case w.cur.kind == PartThinking && !w.cur.redacted && w.cur.sig.Origin != "":
		dst = w.delta(dst, `"signature_delta","signature":`, clientSignature(w.cur.sig, string(w.cur.text)))
	case w.cur.custom:
		dst = w.rawDelta(dst, `"input_json_delta","partial_json":`, `\"}`)
	}
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = appendInt(dst, int64(w.cur.index))
	return append(dst, "}\n\n"...)
}

func (w *messagesStreamWriter) messageEnd(dst []byte, ev *Event) []byte {
	stop := ev.Stop
	if stop == "" {
		stop = StopEnd
	}
	dst = append(dst, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"...)
	dst = appendString(dst, string(stop))
	dst = append(dst, `,"stop_sequence":`...)
	if ev.StopSequence != "" {
		dst = appendString(dst, ev.StopSequence)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `},"usage":`...)
	dst = appendMessagesUsage(dst, w.usage)
	dst = append(dst, "}\n\n"...)
	return append(dst, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// appendMessagesError writes an Anthropic error event.
func appendMessagesError(dst []byte, typ, msg string) []byte {
	if typ == "" {
		typ = "api_error"
	}
	if msg == "" {
		msg = "upstream stream error"
	}
	dst = append(dst, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	return append(dst, "}}\n\n"...)
}
