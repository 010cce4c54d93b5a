package convert

import (
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// NewChatStreamWriter returns the writer of one client's chat.completion.chunk
// stream. model is the model the client asked for (the EventStart model
// when empty); includeUsage is the client's stream_options.include_usage
// (Request.IncludeUsage): every chunk then carries "usage":null and a final
// chunk with no choices carries the usage, before "data: [DONE]".
func NewChatStreamWriter(model string, includeUsage bool) StreamWriter {
	return newChatStreamWriter(model, includeUsage, time.Now().Unix())
}

func newChatStreamWriter(model string, includeUsage bool, created int64) *chatStreamWriter {
	return &chatStreamWriter{model: model, includeUsage: includeUsage, created: created}
}

// chatStreamWriter is the StreamWriter of the Chat dialect. One stream has
// one writer; it is not safe for concurrent use.
type chatStreamWriter struct {
	model        string
	includeUsage bool
	created      int64

	// prefix is every chunk's opening up to and including `"choices":[`,
	// built once: a retried attempt's EventStart keeps the first id.
	prefix []byte

	roleSent   bool
	finishSent bool
	usageSent  bool
	done       bool

	// parts are the open attempt's parts by Event.Index; a slice, as an
	// answer has a handful and indexes must not size anything.
	parts []chatWriterPart
	// calls counts the tool calls sent: their ordinals (tool_calls[].index)
	// only grow, across attempts too.
	calls int

	usage        provider.Usage
	usageUnknown bool
	// reasoning is EventFinish's ReasoningTokens.
	reasoning int64
}

type chatWriterPart struct {
	index   int
	kind    PartKind
	ordinal int // a tool call's tool_calls[].index
	custom  bool
}

// Write appends the chunks ev stands for. Parts and deltas after the
// finish_reason chunk are dropped: only usage may follow it.
func (w *chatStreamWriter) Write(dst []byte, ev *Event) []byte {
	if w.done {
		return dst
	}
	switch ev.Kind {
	case EventStart:
		w.initPrefix(ev.ID, ev.Model)
		w.usage.Merge(ev.Usage)
		w.parts = w.parts[:0]
		dst = w.ensureRole(dst)
	case EventPartStart:
		if !w.finishSent {
			dst = w.partStart(dst, ev)
		}
	case EventDelta:
		if !w.finishSent {
			dst = w.delta(dst, ev)
		}
	case EventPartStop:
		// A custom call's {"input":"... string is closed here.
		if p := w.part(ev.Index); p != nil && p.custom && !w.finishSent {
			dst = w.argsChunk(dst, p.ordinal, `"}`)
		}
	case EventFinish:
		w.usage.Merge(ev.Usage)
		w.usageUnknown, w.reasoning = ev.UsageUnknown, ev.ReasoningTokens
		dst = w.finish(dst, chatFinishReason(ev.Stop))
		dst = w.usageChunk(dst)
	case EventError:
		msg, typ := ev.Delta, ev.ErrType
		if msg == "" {
			msg = "upstream stream error"
		}
		if typ == "" {
			typ = "api_error"
		}
		dst = append(dst, `data: {"error":{"message":`...)
		dst = appendString(dst, msg)
		dst = append(dst, `,"type":`...)
		dst = appendString(dst, typ)
		dst = append(dst, "}}\n\n"...)
	}
	// EventSignature has no Chat counterpart.
	return dst
}

// Finish appends the usage chunk (when asked for and not sent yet) and
// "data: [DONE]". Calls after the first append nothing.
func (w *chatStreamWriter) Finish(dst []byte) []byte {
	if w.done {
		return dst
	}
	dst = w.usageChunk(dst)
	w.done = true
	return append(dst, "data: [DONE]\n\n"...)
}

func (w *chatStreamWriter) part(index int) *chatWriterPart {
	for i := len(w.parts) - 1; i >= 0; i-- {
		if w.parts[i].index == index {
			return &w.parts[i]
		}
	}
	return nil
}

func (w *chatStreamWriter) partStart(dst []byte, ev *Event) []byte {
	p := chatWriterPart{index: ev.Index, kind: ev.Part.Kind}
	if p.kind != PartToolCall {
		w.parts = append(w.parts, p)
		return dst // its text arrives in deltas
	}
	p.ordinal, p.custom = w.calls, ev.Part.Custom
	w.calls++
	w.parts = append(w.parts, p)
	id := ev.Part.CallID
	if id == "" {
		id = randomID("call_")
	}
	args := ""
	if p.custom {
		args = `{"input":"`
	}
	dst = w.openChunk(dst)
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = appendInt(dst, int64(p.ordinal))
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"type":"function","function":{"name":`...)
	dst = appendString(dst, ev.Part.Name)
	dst = append(dst, `,"arguments":`...)
	dst = appendString(dst, args)
	dst = append(dst, "}}]}"...)
	return w.closeChunk(dst, "")
}

func (w *chatStreamWriter) delta(dst []byte, ev *Event) []byte {
	p := w.part(ev.Index)
	if p == nil || ev.Delta == "" {
		return dst
	}
	switch p.kind {
	case PartText:
		return w.textChunk(dst, `{"content":`, ev.Delta)
	case PartThinking:
		return w.textChunk(dst, `{"reasoning_content":`, ev.Delta)
	case PartToolCall:
		frag := ev.Delta
		if p.custom {
			// The raw input is the content of a JSON string.
			s := appendString(nil, frag)
			frag = string(s[1 : len(s)-1])
		}
		return w.argsChunk(dst, p.ordinal, frag)
	}
	return dst
}

func (w *chatStreamWriter) argsChunk(dst []byte, ordinal int, frag string) []byte {
	dst = w.openChunk(dst)
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = appendInt(dst, int64(ordinal))
	dst = append(dst, `,"function":{"arguments":`...)
	dst = appendString(dst, frag)
	dst = append(dst, "}}]}"...)
	return w.closeChunk(dst, "")
}

func (w *chatStreamWriter) textChunk(dst []byte, open, text string) []byte {
	dst = w.openChunk(dst)
	dst = append(dst, open...)
	dst = appendString(dst, text)
	dst = append(dst, '}')
	return w.closeChunk(dst, "")
}

func (w *chatStreamWriter) finish(dst []byte, reason string) []byte {
	if w.finishSent {
		return dst
	}
	w.finishSent = true
	dst = w.openChunk(dst)
	dst = append(dst, "{}"...)
	return w.closeChunk(dst, reason)
}

// usageChunk is the include_usage chunk: no choices, the usage. When the
// upstream reported none it is left out rather than made up.
func (w *chatStreamWriter) usageChunk(dst []byte) []byte {
	if !w.includeUsage || w.usageSent || w.usageUnknown {
		return dst
	}
	w.usageSent = true
	w.initPrefix("", "")
	dst = append(dst, "data: "...)
	dst = append(dst, w.prefix...)
	dst = append(dst, `],"usage":`...)
	dst = chatAppendUsage(dst, w.usage, w.reasoning)
	return append(dst, "}\n\n"...)
}

// initPrefix fixes the chunk id and model on first use; later calls keep
// them so every chunk of the stream agrees.
func (w *chatStreamWriter) initPrefix(id, model string) {
	if w.prefix != nil {
		return
	}
	if w.model != "" {
		model = w.model
	}
	p := make([]byte, 0, 96+len(id)+len(model))
	p = append(p, `{"id":`...)
	p = appendString(p, chatCompletionID(id))
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = appendInt(p, w.created)
	p = append(p, `,"model":`...)
	p = appendString(p, model)
	p = append(p, `,"choices":[`...)
	w.prefix = p
}

// ensureRole sends the opening role chunk once, before any other choice.
func (w *chatStreamWriter) ensureRole(dst []byte) []byte {
	if w.roleSent {
		return dst
	}
	w.roleSent = true
	w.initPrefix("", "")
	dst = w.writeOpen(dst)
	dst = append(dst, `{"role":"assistant","content":""}`...)
	return w.closeChunk(dst, "")
}

// openChunk starts a choice chunk up to `"delta":`, sending the role chunk
// first when the stream had no EventStart.
func (w *chatStreamWriter) openChunk(dst []byte) []byte {
	dst = w.ensureRole(dst)
	return w.writeOpen(dst)
}

func (w *chatStreamWriter) writeOpen(dst []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, w.prefix...)
	return append(dst, `{"index":0,"delta":`...)
}

// closeChunk ends a choice chunk; reason "" is a null finish_reason.
func (w *chatStreamWriter) closeChunk(dst []byte, reason string) []byte {
	dst = append(dst, `,"finish_reason":`...)
	if reason == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, reason)
	}
	dst = append(dst, "}]"...)
	if w.includeUsage {
		dst = append(dst, `,"usage":null`...)
	}
	return append(dst, "}\n\n"...)
}
