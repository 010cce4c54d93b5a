package convert

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzDecodeResponses checks that any body either decodes, and then encodes
// for every upstream as valid JSON, or fails with a *RequestError.
func FuzzDecodeResponses(f *testing.F) {
	if b, err := os.ReadFile("testdata/responses/codex_request.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","input":"hi","max_output_tokens":5,"text":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`))
	f.Add([]byte(`{"input":[{"type":"reasoning","summary":[{"text":"a"}],"encrypted_content":"ccr1.anthropic..YQ.Yg"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,AA=="}]}]}`))
	f.Add([]byte(`{"input":[{"role":"user","content":[{"type":"input_file"}]}],"tool_choice":{"type":"allowed_tools","mode":"required"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeResponses(body)
		if err != nil {
			checkRequestError(t, err)
			return
		}
		out, err := EncodeResponses(r)
		if err != nil {
			t.Fatalf("encode of a decoded request: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("encoded body is not valid JSON: %s", out)
		}
	})
}

// FuzzParseResponses checks that any upstream answer parses or errors, and
// that what parses writes as valid JSON.
func FuzzParseResponses(f *testing.F) {
	f.Add([]byte(responsesToolAnswer))
	f.Add([]byte(`{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}]}`))
	f.Add([]byte(`{"status":"failed","error":{"code":"server_error","message":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkParsedWrites(t, body, ParseResponses, WriteResponses)
	})
}

// FuzzResponsesStreamReader feeds any bytes as an upstream stream: the reader
// never panics, its events keep the ir.go contract, and the Responses
// writer turns them into events whose data is JSON.
func FuzzResponsesStreamReader(f *testing.F) {
	if b, err := os.ReadFile("testdata/responses/stream_tool.sse"); err == nil {
		f.Add(b, uint16(7))
	}
	f.Add([]byte("event: response.output_item.added\ndata: {\"output_index\":1,\"item\":{\"type\":\"reasoning\"}}\n\ndata: {\"type\":\"response.reasoning_text.delta\",\"output_index\":1,\"content_index\":2,\"delta\":\"x\"}\n\ndata: {\"type\":\"error\",\"error\":{\"type\":\"t\"}}\n\n"), uint16(3))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		evs := responsesReadStream(stream, fuzzCuts(stream, cut)...)
		checkEventContract(t, evs)
		out := writeAll(NewResponsesStreamWriter("m"), evs)
		_ = parseResponsesSSE(t, out)
	})
}

// checkEventContract asserts ir.go's stream contract: one EventStart first,
// parts opened in index order and never interleaved, nothing after
// EventFinish or EventError.
func checkEventContract(t *testing.T, evs []Event) {
	t.Helper()
	open, next, ended, started := -1, 0, false, false
	for i, e := range evs {
		if ended {
			t.Fatalf("event %d (%d) after the end", i, e.Kind)
		}
		switch e.Kind {
		case EventStart:
			if started || i != 0 {
				t.Fatalf("EventStart at %d", i)
			}
			started = true
		case EventPartStart:
			if open != -1 || e.Index != next {
				t.Fatalf("part %d starts while %d is open (next %d)", e.Index, open, next)
			}
			open, next = e.Index, next+1
		case EventDelta, EventSignature:
			if e.Index != open {
				t.Fatalf("event %d for part %d while %d is open", e.Kind, e.Index, open)
			}
		case EventPartStop:
			if e.Index != open {
				t.Fatalf("stop of %d while %d is open", e.Index, open)
			}
			open = -1
		case EventFinish:
			if open != -1 || !started {
				t.Fatalf("finish with part %d open (started %v)", open, started)
			}
			ended = true
		case EventError:
			ended = true
		}
	}
}
