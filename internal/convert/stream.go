package convert

import (
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// ChatStream converts an Anthropic SSE stream, event by event, into
// chat.completion.chunk SSE. It is not safe for concurrent use; one stream
// has one reader.
type ChatStream struct {
	model        string
	includeUsage bool
	created      int64

	// prefix is every chunk's opening up to and including `"choices":[`,
	// built once the message id is known.
	prefix []byte

	roleSent   bool
	finishSent bool
	usageSent  bool
	finished   bool

	// tools maps Anthropic content-block indexes to tool-call ordinals. A
	// slice: a response has a handful of blocks, and indexes come from the
	// wire so they must not size anything.
	tools []toolSlot

	usage provider.Usage
}

type toolSlot struct {
	block   int64
	ordinal int
}

// NewChatStream returns a converter for one response. model is the name to
// report (the message_start model when empty), includeUsage is
// stream_options.include_usage, created the Unix time to stamp on chunks.
func NewChatStream(model string, includeUsage bool, created int64) *ChatStream {
	return &ChatStream{model: model, includeUsage: includeUsage, created: created}
}

// Usage returns the usage seen so far (input from message_start, output
// cumulative from message_delta, cache fields).
func (s *ChatStream) Usage() provider.Usage { return s.usage }

// Event takes one Anthropic SSE event (its event name and its data payload,
// without "data: " prefix) and appends zero or more complete OpenAI SSE
// lines ("data: {...}\n\n") to dst, returning it. Malformed, ping and
// unknown events append nothing.
func (s *ChatStream) Event(dst []byte, event string, data []byte) []byte {
	if s.finished || len(data) == 0 || !gjson.ValidBytes(data) {
		return dst
	}
	typ := event
	if typ == "" { // a relay that dropped the event: line
		typ = gjson.GetBytes(data, "type").String()
	}
	switch typ {
	case "message_start":
		msg := gjson.GetBytes(data, "message")
		s.usage.Merge(readUsage(msg.Get("usage")))
		s.initPrefix(msg.Get("id").String(), msg.Get("model").String())
		dst = s.ensureRole(dst)
	case "content_block_start":
		// Nothing may follow the finish_reason chunk but usage.
		if !s.finishSent {
			dst = s.blockStart(dst, data)
		}
	case "content_block_delta":
		if !s.finishSent {
			dst = s.blockDelta(dst, data)
		}
	case "message_delta":
		s.usage.Merge(readUsage(gjson.GetBytes(data, "usage")))
		if stop := gjson.GetBytes(data, "delta.stop_reason"); stop.Type == gjson.String && stop.Str != "" {
			dst = s.finish(dst, finishReason(stop.Str))
		}
	case "message_stop":
		dst = s.finish(dst, "stop")
		dst = s.appendUsageChunk(dst)
	case "error":
		e := gjson.GetBytes(data, "error")
		msg, etype := e.Get("message").String(), e.Get("type").String()
		if msg == "" {
			msg = "upstream stream error"
		}
		if etype == "" {
			etype = "api_error"
		}
		dst = append(dst, `data: {"error":{"message":`...)
		dst = appendString(dst, msg)
		dst = append(dst, `,"type":`...)
		dst = appendString(dst, etype)
		dst = append(dst, "}}\n\n"...)
	}
	// ping, content_block_stop and unknown events carry nothing for OpenAI
	// clients.
	return dst
}

// Finish appends the trailing chunks (usage chunk when includeUsage and not
// yet sent, then "data: [DONE]\n\n") and returns dst. Calls after the first
// append nothing.
func (s *ChatStream) Finish(dst []byte) []byte {
	if s.finished {
		return dst
	}
	dst = s.appendUsageChunk(dst)
	s.finished = true
	return append(dst, "data: [DONE]\n\n"...)
}

func (s *ChatStream) blockStart(dst, data []byte) []byte {
	r := gjson.GetManyBytes(data, "index", "content_block")
	index, cb := r[0].Int(), r[1]
	switch cb.Get("type").String() {
	case "tool_use":
		ordinal := len(s.tools)
		s.tools = append(s.tools, toolSlot{block: index, ordinal: ordinal})
		// The input arrives as input_json_delta fragments; a non-empty
		// input here comes from proxies that send it whole.
		args := ""
		if in := cb.Get("input"); in.IsObject() && !isEmptyObject(in) {
			args = in.Raw
		}
		dst = s.openChunk(dst)
		dst = append(dst, `{"tool_calls":[`...)
		dst = appendToolCall(dst, ordinal, cb.Get("id").String(), cb.Get("name").String(), args)
		dst = append(dst, "]}"...)
		dst = s.closeChunk(dst, "")
	case "text":
		dst = s.textChunk(dst, `{"content":`, cb.Get("text").String())
	case "thinking":
		dst = s.textChunk(dst, `{"reasoning_content":`, cb.Get("thinking").String())
	}
	return dst
}

func (s *ChatStream) blockDelta(dst, data []byte) []byte {
	r := gjson.GetManyBytes(data, "index", "delta")
	index, d := r[0].Int(), r[1]
	switch d.Get("type").String() {
	case "text_delta":
		dst = s.textChunk(dst, `{"content":`, d.Get("text").String())
	case "thinking_delta":
		dst = s.textChunk(dst, `{"reasoning_content":`, d.Get("thinking").String())
	case "input_json_delta":
		frag := d.Get("partial_json").String()
		if frag == "" {
			return dst
		}
		// Latest block wins should an index ever repeat.
		for i := len(s.tools) - 1; i >= 0; i-- {
			if s.tools[i].block != index {
				continue
			}
			dst = s.openChunk(dst)
			dst = append(dst, `{"tool_calls":[{"index":`...)
			dst = appendInt(dst, int64(s.tools[i].ordinal))
			dst = append(dst, `,"function":{"arguments":`...)
			dst = appendString(dst, frag)
			dst = append(dst, "}}]}"...)
			return s.closeChunk(dst, "")
		}
	}
	// signature_delta and citations_delta have no OpenAI counterpart.
	return dst
}

// textChunk emits a content or reasoning_content delta; empty text emits
// nothing.
func (s *ChatStream) textChunk(dst []byte, open, text string) []byte {
	if text == "" {
		return dst
	}
	dst = s.openChunk(dst)
	dst = append(dst, open...)
	dst = appendString(dst, text)
	dst = append(dst, '}')
	return s.closeChunk(dst, "")
}

func (s *ChatStream) finish(dst []byte, reason string) []byte {
	if s.finishSent {
		return dst
	}
	s.finishSent = true
	dst = s.openChunk(dst)
	dst = append(dst, "{}"...)
	return s.closeChunk(dst, reason)
}

func (s *ChatStream) appendUsageChunk(dst []byte) []byte {
	if !s.includeUsage || s.usageSent {
		return dst
	}
	s.usageSent = true
	s.initPrefix("", "")
	dst = append(dst, "data: "...)
	dst = append(dst, s.prefix...)
	dst = append(dst, `],"usage":`...)
	dst = appendUsage(dst, s.usage)
	return append(dst, "}\n\n"...)
}

// initPrefix fixes the chunk id and model on first use; later calls keep
// them so every chunk of the stream agrees.
func (s *ChatStream) initPrefix(msgID, msgModel string) {
	if s.prefix != nil {
		return
	}
	model := s.model
	if model == "" {
		model = msgModel
	}
	p := make([]byte, 0, 96+len(msgID)+len(model))
	p = append(p, `{"id":`...)
	p = appendString(p, chatID(msgID))
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = appendInt(p, s.created)
	p = append(p, `,"model":`...)
	p = appendString(p, model)
	p = append(p, `,"choices":[`...)
	s.prefix = p
}

// ensureRole sends the opening role chunk once, before any other choice.
func (s *ChatStream) ensureRole(dst []byte) []byte {
	if s.roleSent {
		return dst
	}
	s.roleSent = true
	s.initPrefix("", "")
	dst = s.writeOpen(dst)
	dst = append(dst, `{"role":"assistant","content":""}`...)
	return s.closeChunk(dst, "")
}

// openChunk starts a choice chunk up to `"delta":`, sending the role chunk
// first when message_start was missed.
func (s *ChatStream) openChunk(dst []byte) []byte {
	dst = s.ensureRole(dst)
	return s.writeOpen(dst)
}

func (s *ChatStream) writeOpen(dst []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, s.prefix...)
	return append(dst, `{"index":0,"delta":`...)
}

// closeChunk ends a choice chunk; reason "" is a null finish_reason.
func (s *ChatStream) closeChunk(dst []byte, reason string) []byte {
	dst = append(dst, `,"finish_reason":`...)
	if reason == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, reason)
	}
	dst = append(dst, "}]"...)
	if s.includeUsage {
		dst = append(dst, `,"usage":null`...)
	}
	return append(dst, "}\n\n"...)
}
