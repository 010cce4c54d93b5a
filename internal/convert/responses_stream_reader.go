package convert

import (
	"github.com/tidwall/gjson"
)

// This file turns an upstream Responses SSE stream into Events.
//
// Each output item the neutral form knows (message, function_call,
// custom_tool_call, reasoning) is one part: it opens at
// response.output_item.added, takes its deltas (output_text and refusal,
// function_call_arguments, custom_tool_call_input, reasoning_summary_text
// and reasoning_text; a reasoning item's several summaries are one thinking
// part, joined by a blank line as ParseResponses joins them) and closes at
// response.output_item.done, which also carries a reasoning item's
// encrypted_content (EventSignature). An item whose deltas never came is
// emitted whole from its done event; items the upstream interleaves are
// emitted whole, in order, after the open one closes; items that only the
// final response lists are emitted before EventFinish. Hosted tool items
// are dropped.

// responsesStreamReader keeps one upstream stream's state.
type responsesStreamReader struct {
	started, ended bool
	// next is the next part's index.
	next int
	cur  *readerItem
	// queue holds done items that arrived while another part was open.
	queue []gjson.Result
	// seen are the output indexes already turned into parts (or queued).
	seen          map[int64]bool
	tool, refusal bool
}

// readerItem is the part being streamed.
type readerItem struct {
	index   int
	outIdx  int64
	kind    PartKind
	emitted bool
	// seg is the last reasoning segment seen ("s0", "c1"...), so a new
	// summary starts after a blank line.
	seg string
}

// NewResponsesStreamReader returns a reader for one upstream Responses SSE
// stream.
func NewResponsesStreamReader() StreamReader {
	return &responsesStreamReader{seen: map[int64]bool{}}
}

// Read implements StreamReader.
func (s *responsesStreamReader) Read(evs []Event, name, data []byte) []Event {
	if s.ended {
		return evs
	}
	typ := string(name)
	if typ == "" || typ == "message" {
		typ = gjson.GetBytes(data, "type").Str
	}
	switch typ {
	case "response.output_text.delta", "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
		// The bulk of a stream: read in place, without a copy of the event.
		return s.delta(evs, data, "")
	case "response.refusal.delta":
		s.refusal = true
		return s.delta(evs, data, "")
	}
	switch typ {
	case "response.created", "response.in_progress", "response.output_item.added", "response.output_item.done",
		"response.reasoning_summary_text.delta", "response.reasoning_text.delta",
		"response.completed", "response.incomplete", "response.failed", "error":
	default:
		// Events that carry nothing new (output_text.done and
		// content_part.done repeat the whole text): not copied.
		return evs
	}
	// A copy of the event: what is read from it may be kept (queued items).
	d := gjson.ParseBytes(data)
	switch typ {
	case "response.created", "response.in_progress":
		return s.start(evs, d.Get("response"))
	case "response.output_item.added":
		evs = s.start(evs, gjson.Result{})
		if s.cur == nil && !s.seen[d.Get("output_index").Int()] {
			evs = s.open(evs, d.Get("item"), d.Get("output_index").Int())
		}
	case "response.output_item.done":
		evs = s.start(evs, gjson.Result{})
		return s.itemDone(evs, d.Get("item"), d.Get("output_index").Int())
	case "response.reasoning_summary_text.delta":
		return s.delta(evs, data, "s"+d.Get("summary_index").Raw)
	case "response.reasoning_text.delta":
		return s.delta(evs, data, "c"+d.Get("content_index").Raw)
	case "response.completed", "response.incomplete":
		return s.finish(evs, d.Get("response"))
	case "response.failed":
		e := d.Get("response.error")
		return s.fail(evs, e.Get("code").String(), e.Get("message").String())
	case "error":
		e := d
		if d.Get("error").IsObject() {
			e = d.Get("error")
		}
		code := e.Get("code").String()
		if code == "" {
			code = e.Get("type").String()
		}
		return s.fail(evs, code, e.Get("message").String())
	}
	return evs
}

// start emits EventStart once, from response.created when it comes first.
func (s *responsesStreamReader) start(evs []Event, resp gjson.Result) []Event {
	if s.started {
		return evs
	}
	s.started = true
	id := resp.Get("id").String()
	if id == "" {
		id = randomID("resp_")
	}
	u, _ := responsesUsageOf(resp.Get("usage"))
	return append(evs, Event{Kind: EventStart, ID: id, Model: resp.Get("model").String(), Usage: u})
}

// partOf is the part an item opens as; ok is false for items with none.
func partOf(item gjson.Result) (p Part, ok bool) {
	switch item.Get("type").Str {
	case "message":
		return Part{Kind: PartText}, true
	case "function_call":
		return Part{Kind: PartToolCall, CallID: item.Get("call_id").String(), Name: callName(item)}, true
	case "custom_tool_call":
		return Part{Kind: PartToolCall, CallID: item.Get("call_id").String(), Name: callName(item), Custom: true}, true
	case "reasoning":
		return Part{Kind: PartThinking}, true
	}
	return Part{}, false
}

func (s *responsesStreamReader) open(evs []Event, item gjson.Result, outIdx int64) []Event {
	p, ok := partOf(item)
	if !ok {
		return evs
	}
	s.seen[outIdx] = true
	s.tool = s.tool || p.Kind == PartToolCall
	s.cur = &readerItem{index: s.next, outIdx: outIdx, kind: p.Kind}
	s.next++
	return append(evs, Event{Kind: EventPartStart, Index: s.cur.index, Part: p})
}

// responsesDeltaMembers are the members of a delta event delta reads.
var responsesDeltaMembers = [...]string{"output_index", "delta"}

// delta reads a delta event's data in one scan that skips what it does not
// read (gjson in place for an event scanMembers does not read), copying only
// the text it keeps.
func (s *responsesStreamReader) delta(evs []Event, data []byte, seg string) []Event {
	c := s.cur
	if c == nil {
		return evs
	}
	var m [len(responsesDeltaMembers)][]byte
	if !scanMembers(data, responsesDeltaMembers[:], m[:]) {
		ev := gjson.Parse(view(data))
		m[0], m[1] = []byte(ev.Get("output_index").Raw), []byte(ev.Get("delta").Raw)
	}
	if gjson.Parse(view(m[0])).Int() != c.outIdx {
		return evs
	}
	text := rawString(m[1])
	if text == "" {
		return evs
	}
	if c.kind == PartThinking {
		if c.seg != "" && seg != c.seg {
			text = "\n\n" + text
		}
		c.seg = seg
	}
	c.emitted = true
	return append(evs, Event{Kind: EventDelta, Index: c.index, Delta: text})
}

// itemDone closes the open part with its done item, or queues the item.
func (s *responsesStreamReader) itemDone(evs []Event, item gjson.Result, outIdx int64) []Event {
	switch {
	case s.cur != nil && outIdx == s.cur.outIdx:
		evs = s.close(evs, item)
		return s.flush(evs)
	case s.cur != nil:
		if !s.seen[outIdx] {
			s.seen[outIdx] = true
			s.queue = append(s.queue, item)
		}
		return evs
	case s.seen[outIdx]:
		return evs
	}
	evs = s.open(evs, item, outIdx)
	if s.cur == nil {
		return evs
	}
	return s.close(evs, item)
}

// close ends the open part: the content its deltas did not carry, a
// reasoning item's state, EventPartStop.
func (s *responsesStreamReader) close(evs []Event, item gjson.Result) []Event {
	c := s.cur
	s.cur = nil
	if !c.emitted {
		if text := itemText(item); text != "" {
			evs = append(evs, Event{Kind: EventDelta, Index: c.index, Delta: text})
		}
	}
	if item.Get("type").Str == "message" {
		item.Get("content").ForEach(func(_, p gjson.Result) bool {
			s.refusal = s.refusal || p.Get("type").Str == "refusal"
			return true
		})
	}
	if c.kind == PartThinking {
		if sig := openAISig(item); sig.Origin != "" {
			evs = append(evs, Event{Kind: EventSignature, Index: c.index, Sig: sig})
		}
	}
	return append(evs, Event{Kind: EventPartStop, Index: c.index})
}

// itemText is a done item's whole content, as ParseResponses reads it.
func itemText(item gjson.Result) string {
	p, ok, _ := parseOutputItem(item)
	if !ok {
		return ""
	}
	if p.Kind == PartToolCall {
		return p.Args
	}
	return p.Text
}

// flush emits the queued items whole, in order.
func (s *responsesStreamReader) flush(evs []Event) []Event {
	for len(s.queue) > 0 {
		item := s.queue[0]
		s.queue = s.queue[1:]
		if evs = s.open(evs, item, -1); s.cur != nil {
			evs = s.close(evs, item)
		}
	}
	return evs
}

// finish closes what is open, emits the items only the final response
// lists, and EventFinish.
func (s *responsesStreamReader) finish(evs []Event, resp gjson.Result) []Event {
	evs = s.start(evs, resp)
	if s.cur != nil {
		c := s.cur
		s.cur = nil
		evs = append(evs, Event{Kind: EventPartStop, Index: c.index})
	}
	evs = s.flush(evs)
	var i int64
	resp.Get("output").ForEach(func(_, item gjson.Result) bool {
		if !s.seen[i] {
			s.seen[i] = true
			if evs = s.open(evs, item, i); s.cur != nil {
				evs = s.close(evs, item)
			}
		}
		i++
		return true
	})
	u, reasoning := responsesUsageOf(resp.Get("usage"))
	s.ended = true
	return append(evs, Event{Kind: EventFinish, Stop: stopOf(resp, s.tool, s.refusal), Usage: u, ReasoningTokens: reasoning})
}

func (s *responsesStreamReader) fail(evs []Event, code, message string) []Event {
	s.ended = true
	if code == "" {
		code = "server_error"
	}
	return append(evs, Event{Kind: EventError, ErrType: code, Delta: message})
}
