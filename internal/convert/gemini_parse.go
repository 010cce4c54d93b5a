package convert

import (
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
)

// This file reads an upstream GenerateContentResponse (or Code Assist's
// {"response": ...}, or the JSON array a stream without alt=sse answers)
// into the neutral Response, by the stream reader's rules (see
// gemini_stream_reader.go), so whole and streamed answers agree.

// ErrGeminiAnswer is what ParseGemini returns for an answer that is an
// error object; the error's text carries Google's status and message.
var ErrGeminiAnswer = errors.New("upstream gemini error")

// ParseGemini reads an upstream Gemini answer.
func ParseGemini(body []byte) (*Response, error) {
	if !gjson.ValidBytes(body) {
		return nil, errors.New("parse gemini answer: not valid JSON")
	}
	root := gjson.ParseBytes(body)
	chunks := []gjson.Result{root}
	switch {
	case root.IsArray():
		chunks = root.Array()
	case !root.IsObject():
		return nil, errors.New("parse gemini answer: not a JSON object")
	}
	s := newGeminiReader()
	var evs []Event
	for _, c := range chunks {
		if !c.IsObject() {
			return nil, errors.New("parse gemini answer: a chunk is not a JSON object")
		}
		if e := c.Get("error"); e.IsObject() {
			return nil, fmt.Errorf("%w: %s: %s", ErrGeminiAnswer, e.Get("status").String(), e.Get("message").String())
		}
		evs = s.chunk(evs, c)
	}
	if !s.ended {
		evs = s.finish(s.start(evs, root), StopEnd)
	}
	return collectEvents(evs), nil
}

// collectEvents assembles a reader's events into a whole Response.
func collectEvents(evs []Event) *Response {
	resp := &Response{}
	byIndex := map[int]int{}
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case EventStart:
			resp.ID, resp.Model = ev.ID, ev.Model
			resp.Usage.Merge(ev.Usage)
		case EventPartStart:
			byIndex[ev.Index] = len(resp.Parts)
			resp.Parts = append(resp.Parts, ev.Part)
		case EventDelta:
			if j, ok := byIndex[ev.Index]; ok {
				p := &resp.Parts[j]
				if p.Kind == PartToolCall {
					p.Args += ev.Delta
				} else {
					p.Text += ev.Delta
				}
			}
		case EventSignature:
			if j, ok := byIndex[ev.Index]; ok {
				resp.Parts[j].Sig = ev.Sig
			}
		case EventFinish:
			resp.Stop, resp.StopSequence = ev.Stop, ev.StopSequence
			resp.Usage.Merge(ev.Usage)
			resp.UsageUnknown = ev.UsageUnknown
			resp.ReasoningTokens = ev.ReasoningTokens
		}
	}
	return resp
}
