package convert

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// NewChatStreamReader returns the reader of one upstream chat.completion.chunk
// stream (its first choice). Text and reasoning stream as they come;
// <think>...</think> at the start of the content is thinking (a tag split
// across chunks too). Tool calls are buffered and emitted whole when the
// answer finishes, since servers may interleave the argument fragments of
// parallel calls, which Events cannot. The answer finishes at the usage
// chunk after the finish_reason, or at "data: [DONE]"; without any usage in
// the stream, EventFinish has UsageUnknown set.
func NewChatStreamReader() StreamReader {
	return &chatStreamReader{}
}

// chatThinkState is where the content stands with respect to a leading
// <think> block.
type chatThinkState uint8

const (
	chatThinkUndecided chatThinkState = iota // only blanks or a prefix of <think> so far
	chatThinkInside                          // in the think block
	chatThinkAfter                           // just closed: blanks are skipped
	chatThinkNone                            // plain text
)

// chatStreamReader is the StreamReader of the Chat dialect.
type chatStreamReader struct {
	started, finished bool

	// open says part next-1 is open, of kind openKind.
	open     bool
	openKind PartKind
	next     int

	think chatThinkState
	// pending is content held back: blanks or a prefix of <think> while
	// undecided, a possible start of </think> inside the block.
	pending string

	calls []chatStreamCall

	stop      StopReason
	stopSeen  bool
	usage     provider.Usage
	usageSeen bool
	// reasoning is the usage's completion_tokens_details.reasoning_tokens.
	reasoning int64
}

// chatStreamCall is a tool call being buffered.
type chatStreamCall struct {
	index    int64
	id, name string
	args     []byte
}

// Read appends the Events of one upstream SSE event (the name is unused:
// Chat streams have none).
func (r *chatStreamReader) Read(evs []Event, _, data []byte) []Event {
	data = bytes.TrimSpace(data)
	if string(data) == "[DONE]" {
		return r.end(evs)
	}
	if r.finished || !gjson.ValidBytes(data) {
		return evs
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return evs
	}
	// One pass over the chunk's keys, and one over its delta's: a chunk is
	// read for every token.
	var id, model, errv, choices, usage gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "model":
			model = v
		case "error":
			errv = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		}
		return true
	})
	if errv.Exists() && errv.Type != gjson.Null {
		r.finished = true
		msg := errv.Get("message").String()
		if errv.Type == gjson.String {
			msg = errv.Str
		}
		return append(evs, Event{Kind: EventError, ErrType: chatErrorType(errv), Delta: msg})
	}
	if !r.started {
		r.started = true
		evs = append(evs, Event{Kind: EventStart, ID: id.String(), Model: model.String()})
	}
	if ch := chatFirstChoice(choices); ch.Exists() {
		evs = r.choice(evs, ch)
	}
	if u, reasoning, ok := chatReadUsage(usage); ok {
		r.usage.Merge(u)
		r.usageSeen = true
		if reasoning > 0 {
			r.reasoning = reasoning
		}
		if r.stopSeen { // the usage chunk follows the finish_reason
			return r.end(evs)
		}
	}
	return evs
}

// choice reads one chunk's choice: reasoning, then content, then tool
// calls, then the finish_reason.
func (r *chatStreamReader) choice(evs []Event, ch gjson.Result) []Event {
	var delta, finish, reasoningContent, reasoning, content, calls gjson.Result
	ch.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "delta":
			delta = v
		case "finish_reason":
			finish = v
		}
		return true
	})
	delta.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "reasoning_content":
			reasoningContent = v
		case "reasoning":
			reasoning = v
		case "content":
			content = v
		case "tool_calls":
			calls = v
		}
		return true
	})
	if reasoningContent.Type != gjson.String {
		reasoningContent = reasoning
	}
	if reasoningContent.Type == gjson.String {
		evs = r.emit(evs, PartThinking, reasoningContent.Str)
	}
	if content.Exists() {
		evs = r.content(evs, chatText(content))
	}
	calls.ForEach(func(_, tc gjson.Result) bool {
		r.bufferCall(tc)
		return true
	})
	if finish.Type == gjson.String && finish.Str != "" {
		r.stop, r.stopSeen = chatStopReason(finish.Str, false), true
	}
	return evs
}

// emit appends text to the open part of kind, opening one when needed.
func (r *chatStreamReader) emit(evs []Event, kind PartKind, text string) []Event {
	if text == "" {
		return evs
	}
	if !r.open || r.openKind != kind {
		evs = r.closePart(evs)
		evs = append(evs, Event{Kind: EventPartStart, Index: r.next, Part: Part{Kind: kind}})
		r.open, r.openKind = true, kind
		r.next++
	}
	return append(evs, Event{Kind: EventDelta, Index: r.next - 1, Delta: text})
}

// closePart closes the open part; a thinking part gets its origin first
// (OriginChat: the text is the state).
func (r *chatStreamReader) closePart(evs []Event) []Event {
	if !r.open {
		return evs
	}
	r.open = false
	if r.openKind == PartThinking {
		evs = append(evs, Event{Kind: EventSignature, Index: r.next - 1, Sig: Signature{Origin: OriginChat}})
	}
	return append(evs, Event{Kind: EventPartStop, Index: r.next - 1})
}

// content takes a content delta through the <think> detection.
func (r *chatStreamReader) content(evs []Event, s string) []Event {
	switch r.think {
	case chatThinkUndecided:
		r.pending += s
		t := strings.TrimLeft(r.pending, chatSpace)
		switch {
		case strings.HasPrefix(t, chatThinkOpen):
			r.think, r.pending = chatThinkInside, ""
			return r.inside(evs, t[len(chatThinkOpen):])
		case strings.HasPrefix(chatThinkOpen, t): // blanks, or "<thi": wait
			return evs
		}
		r.think = chatThinkNone
		s, r.pending = r.pending, ""
	case chatThinkInside:
		return r.inside(evs, s)
	case chatThinkAfter:
		if s = strings.TrimLeft(s, chatSpace); s == "" {
			return evs
		}
		r.think = chatThinkNone
	}
	return r.emit(evs, PartText, s)
}

// inside takes content within the think block, holding back what may be
// the start of </think>.
func (r *chatStreamReader) inside(evs []Event, s string) []Event {
	buf := r.pending + s
	r.pending = ""
	if i := strings.Index(buf, chatThinkClose); i >= 0 {
		evs = r.emit(evs, PartThinking, buf[:i])
		r.think = chatThinkAfter
		return r.content(evs, buf[i+len(chatThinkClose):])
	}
	keep := 0
	for n := min(len(chatThinkClose)-1, len(buf)); n > 0; n-- {
		if strings.HasSuffix(buf, chatThinkClose[:n]) {
			keep = n
			break
		}
	}
	r.pending = buf[len(buf)-keep:]
	return r.emit(evs, PartThinking, buf[:len(buf)-keep])
}

// bufferCall adds one tool_calls entry of a delta. A fragment names its
// call by index; a new id under a known index (servers that number every
// call 0) starts another call.
func (r *chatStreamReader) bufferCall(tc gjson.Result) {
	id, fn := tc.Get("id").String(), tc.Get("function")
	var c *chatStreamCall
	if idx := tc.Get("index"); idx.Exists() {
		for i := len(r.calls) - 1; i >= 0; i-- {
			if r.calls[i].index == idx.Int() {
				c = &r.calls[i]
				break
			}
		}
		if c != nil && id != "" && c.id != "" && id != c.id {
			c = nil
		}
	} else if n := len(r.calls); n > 0 && id == "" {
		c = &r.calls[n-1] // no index: a fragment of the last call
	}
	if c == nil {
		r.calls = append(r.calls, chatStreamCall{index: tc.Get("index").Int()})
		c = &r.calls[len(r.calls)-1]
	}
	if c.id == "" {
		c.id = id
	}
	if name := fn.Get("name").String(); c.name == "" {
		c.name = name
	}
	if args := fn.Get("arguments"); args.IsObject() {
		c.args = append(c.args, args.Raw...)
	} else {
		c.args = append(c.args, args.String()...)
	}
}

// end finishes the answer: held-back content, the open part, the buffered
// tool calls, EventFinish. Calls after the first append nothing.
func (r *chatStreamReader) end(evs []Event) []Event {
	if r.finished {
		return evs
	}
	r.finished = true
	if !r.started {
		r.started = true
		evs = append(evs, Event{Kind: EventStart})
	}
	switch r.think {
	case chatThinkInside:
		evs = r.emit(evs, PartThinking, r.pending)
	case chatThinkUndecided: // blanks, or a text like "<th"
		evs = r.emit(evs, PartText, r.pending)
	}
	evs = r.closePart(evs)
	for i := range r.calls {
		c := &r.calls[i]
		id, args := c.id, strings.TrimSpace(string(c.args))
		if id == "" {
			id = randomID("call_")
		}
		if args == "" {
			args = "{}"
		}
		evs = append(evs,
			Event{Kind: EventPartStart, Index: r.next, Part: Part{Kind: PartToolCall, CallID: id, Name: c.name}},
			Event{Kind: EventDelta, Index: r.next, Delta: args},
			Event{Kind: EventPartStop, Index: r.next})
		r.next++
	}
	stop := r.stop
	if !r.stopSeen || len(r.calls) > 0 && stop == StopEnd {
		stop = chatStopReason("", len(r.calls) > 0)
	}
	return append(evs, Event{Kind: EventFinish, Stop: stop, Usage: r.usage, UsageUnknown: !r.usageSeen, ReasoningTokens: r.reasoning})
}
