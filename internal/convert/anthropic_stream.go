package convert

import (
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// messagesStreamReader turns an upstream Anthropic Messages SSE stream into
// Events. Anthropic sends content blocks one after the other, so a block
// starting while another is open closes the open one.
type messagesStreamReader struct {
	started, done bool
	id, model     string
	usage         provider.Usage
	stop          StopReason
	stopSeq       string

	next    int   // the next Event part index
	open    bool  // a part is open
	openUp  int64 // its upstream block index
	openIdx int   // its Event index
}

// NewMessagesStreamReader returns a reader for one upstream Messages stream.
// It reads text, thinking (thinking_delta; signature_delta is an
// EventSignature of origin OriginAnthropic), redacted_thinking (its data is
// the Sig of EventPartStart), tool_use (input_json_delta fragments are the
// call's argument deltas), usage (message_start, then the cumulative
// message_delta), stop_reason, stop_sequence and error events. Server-tool
// blocks (server_tool_use, web_search_tool_result...) and citations_delta
// have no neutral form and are dropped with their deltas; parts are
// numbered without gaps. EventFinish comes with message_stop; nothing is
// read after it or after an error.
func NewMessagesStreamReader() StreamReader { return &messagesStreamReader{} }

// Read implements StreamReader.
func (s *messagesStreamReader) Read(evs []Event, name, data []byte) []Event {
	if s.done || len(data) == 0 || !gjson.ValidBytes(data) {
		return evs
	}
	typ := string(name)
	if typ == "" || typ == "message" { // a relay that dropped the event: line
		typ = gjson.GetBytes(data, "type").Str
	}
	switch typ {
	case "message_start":
		msg := gjson.GetBytes(data, "message")
		s.usage.Merge(readUsage(msg.Get("usage")))
		if !s.started {
			s.id, s.model = msg.Get("id").String(), msg.Get("model").String()
		}
		evs = s.ensureStart(evs)
	case "content_block_start":
		evs = s.blockStart(s.ensureStart(evs), data)
	case "content_block_delta":
		evs = s.blockDelta(evs, data)
	case "content_block_stop":
		if s.open && gjson.GetBytes(data, "index").Int() == s.openUp {
			evs = s.closePart(evs)
		}
	case "message_delta":
		s.usage.Merge(readUsage(gjson.GetBytes(data, "usage")))
		if r := gjson.GetBytes(data, "delta.stop_reason"); r.Type == gjson.String && r.Str != "" {
			s.stop = stopReason(r.Str)
		}
		if q := gjson.GetBytes(data, "delta.stop_sequence"); q.Type == gjson.String {
			s.stopSeq = q.Str
		}
	case "message_stop":
		evs = s.closePart(s.ensureStart(evs))
		stop := s.stop
		if stop == "" {
			stop = StopEnd
		}
		s.done = true
		evs = append(evs, Event{Kind: EventFinish, Stop: stop, StopSequence: s.stopSeq, Usage: s.usage})
	case "error":
		e := gjson.GetBytes(data, "error")
		s.done = true
		evs = append(evs, Event{Kind: EventError, ErrType: e.Get("type").String(), Delta: e.Get("message").String()})
	}
	// ping and unknown events carry nothing.
	return evs
}

func (s *messagesStreamReader) ensureStart(evs []Event) []Event {
	if s.started {
		return evs
	}
	s.started = true
	return append(evs, Event{Kind: EventStart, ID: s.id, Model: s.model, Usage: s.usage})
}

func (s *messagesStreamReader) closePart(evs []Event) []Event {
	if !s.open {
		return evs
	}
	s.open = false
	return append(evs, Event{Kind: EventPartStop, Index: s.openIdx})
}

func (s *messagesStreamReader) blockStart(evs []Event, data []byte) []Event {
	r := gjson.GetManyBytes(data, "index", "content_block")
	up, cb := r[0].Int(), r[1]
	evs = s.closePart(evs)
	var (
		p      Part
		deltas []string
		sig    string
	)
	switch cb.Get("type").Str {
	case "text":
		p.Kind = PartText
		deltas = append(deltas, cb.Get("text").String())
	case "thinking":
		p.Kind = PartThinking
		deltas = append(deltas, cb.Get("thinking").String())
		sig = cb.Get("signature").String()
	case "redacted_thinking":
		p = Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: cb.Get("data").String()}}
	case "tool_use":
		p = Part{Kind: PartToolCall, CallID: cb.Get("id").String(), Name: cb.Get("name").String()}
		// The input arrives as input_json_delta fragments; a whole input
		// here comes from proxies that send it at once.
		if in := cb.Get("input"); in.IsObject() && !isEmptyObject(in) {
			deltas = append(deltas, in.Raw)
		}
	default:
		return evs // a server-tool block: dropped with its deltas
	}
	s.open, s.openUp, s.openIdx = true, up, s.next
	s.next++
	evs = append(evs, Event{Kind: EventPartStart, Index: s.openIdx, Part: p})
	for _, d := range deltas {
		if d != "" {
			evs = append(evs, Event{Kind: EventDelta, Index: s.openIdx, Delta: d})
		}
	}
	if sig != "" {
		evs = append(evs, Event{Kind: EventSignature, Index: s.openIdx, Sig: Signature{Origin: OriginAnthropic, Value: sig}})
	}
	return evs
}

// The members blockDelta reads: of the event, of its delta.
var (
	deltaEventMembers = [...]string{"index", "delta"}
	deltaMembers      = [...]string{"type", "text", "thinking", "partial_json", "signature"}
)

// blockDelta reads a content_block_delta, the bulk of a stream: one scan of
// the event and one of its delta that skip what they do not read, copying
// only the text kept.
func (s *messagesStreamReader) blockDelta(evs []Event, data []byte) []Event {
	if !s.open {
		return evs
	}
	var top [len(deltaEventMembers)][]byte
	var d [len(deltaMembers)][]byte
	if !scanMembers(data, deltaEventMembers[:], top[:]) || !scanMembers(top[1], deltaMembers[:], d[:]) {
		return s.blockDeltaGJSON(evs, data)
	}
	if gjson.Parse(view(top[0])).Int() != s.openUp {
		return evs // a dropped block's delta, or one for no open block
	}
	var text string
	switch gjson.Parse(view(d[0])).Str {
	case "text_delta":
		text = rawString(d[1])
	case "thinking_delta":
		text = rawString(d[2])
	case "input_json_delta":
		text = rawString(d[3])
	case "signature_delta":
		if sig := rawString(d[4]); sig != "" {
			evs = append(evs, Event{Kind: EventSignature, Index: s.openIdx, Sig: Signature{Origin: OriginAnthropic, Value: sig}})
		}
		return evs
	}
	// citations_delta and future deltas have no neutral form.
	if text == "" {
		return evs
	}
	return append(evs, Event{Kind: EventDelta, Index: s.openIdx, Delta: text})
}

// blockDeltaGJSON is blockDelta with gjson, in place (view), for an event
// scanMembers does not read (an escaped key, a delta that is no object).
func (s *messagesStreamReader) blockDeltaGJSON(evs []Event, data []byte) []Event {
	var index, delta gjson.Result
	gjson.Parse(view(data)).ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "index" && !index.Exists():
			index = v
		case k.Str == "delta" && !delta.Exists():
			delta = v
		}
		return true
	})
	if index.Int() != s.openUp {
		return evs // a dropped block's delta, or one for no open block
	}
	// The members a delta of each type carries its content in.
	var typ string
	var fields [4]gjson.Result // text, thinking, partial_json, signature
	delta.ForEach(func(k, v gjson.Result) bool {
		n := -1
		switch k.Str {
		case "type":
			if typ == "" {
				typ = v.Str
			}
		case "text":
			n = 0
		case "thinking":
			n = 1
		case "partial_json":
			n = 2
		case "signature":
			n = 3
		}
		if n >= 0 && !fields[n].Exists() {
			fields[n] = v
		}
		return true
	})
	var text string
	switch typ {
	case "text_delta":
		text = fields[0].String()
	case "thinking_delta":
		text = fields[1].String()
	case "input_json_delta":
		text = fields[2].String()
	case "signature_delta":
		if sig := fields[3].String(); sig != "" {
			evs = append(evs, Event{Kind: EventSignature, Index: s.openIdx, Sig: Signature{Origin: OriginAnthropic, Value: own(sig, data)}})
		}
		return evs
	}
	// citations_delta and future deltas have no neutral form.
	if text == "" {
		return evs
	}
	return append(evs, Event{Kind: EventDelta, Index: s.openIdx, Delta: own(text, data)})
}

// UncustomStream wraps a reader of an Anthropic stream (which cannot know
// which tools were custom) so that calls of the custom tools of tools come
// out as EncodeMessages sent them in: EventPartStart marked Custom, and the
// {"input": ...} argument fragments replaced, at EventPartStop, by one
// EventDelta holding the raw input. See UncustomCalls for whole answers.
func UncustomStream(r StreamReader, tools []Tool) StreamReader {
	return &uncustomReader{inner: r, tools: tools}
}

type uncustomReader struct {
	inner   StreamReader
	tools   []Tool
	scratch []Event
	custom  bool // the open part is a custom call
	index   int
	args    []byte
}

// Read implements StreamReader.
func (u *uncustomReader) Read(evs []Event, name, data []byte) []Event {
	n := len(evs)
	evs = u.inner.Read(evs, name, data)
	if len(evs) == n {
		return evs
	}
	u.scratch = append(u.scratch[:0], evs[n:]...)
	evs = evs[:n]
	for _, ev := range u.scratch {
		switch {
		case ev.Kind == EventPartStart && ev.Part.Kind == PartToolCall && isCustomTool(u.tools, ev.Part.Name):
			ev.Part.Custom = true
			u.custom, u.index, u.args = true, ev.Index, u.args[:0]
		case u.custom && ev.Index == u.index && ev.Kind == EventDelta:
			u.args = append(u.args, ev.Delta...)
			continue
		case u.custom && ev.Index == u.index && ev.Kind == EventPartStop:
			u.custom = false
			if in := customInput(string(u.args)); in != "" {
				evs = append(evs, Event{Kind: EventDelta, Index: ev.Index, Delta: in})
			}
		}
		evs = append(evs, ev)
	}
	return evs
}
