package convert

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeMessages checks that any body either decodes or fails with a
// *RequestError, and that a decoded request encodes into valid JSON (or a
// *RequestError) with thinking only ever sent with a signed first block.
func FuzzDecodeMessages(f *testing.F) {
	f.Add([]byte(claudeCodeRequest))
	f.Add([]byte(`{"model":"m","max_tokens":5,"system":"s","messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":2000},"temperature":1}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"` + WrapSignature(Signature{Origin: OriginOpenAI, Value: "gA"}, "t") + `"},{"type":"tool_use","id":"a.b","name":"f","input":{}}]},{"role":"user","content":[{"type":"text","text":"x"},{"type":"tool_result","tool_use_id":"a.b","content":"r"}]}],"thinking":{"type":"adaptive"},"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"any"}}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"redacted_thinking","data":"x"},{"type":"image","source":{"type":"url","url":"data:image/png;base64,"}}]}],"stop_sequences":[" "],"top_k":3}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeMessages(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("DecodeMessages error is not a *RequestError: %v", err)
			}
			return
		}
		r.Model = "claude-x"
		out, err := EncodeMessages(r)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("EncodeMessages error is not a *RequestError: %v", err)
			}
			return
		}
		checkEncodedMessages(t, out)
	})
}

// checkEncodedMessages asserts the shape rules Anthropic enforces on what
// EncodeMessages writes.
func checkEncodedMessages(t *testing.T, out []byte) {
	t.Helper()
	var req struct {
		MaxTokens int64 `json:"max_tokens"`
		Messages  []struct {
			Role    string
			Content []struct {
				Type      string
				ID        string
				ToolUseID string `json:"tool_use_id"`
				Input     json.RawMessage
				Text      *string
			}
		}
		Thinking *struct {
			Type         string
			BudgetTokens int64 `json:"budget_tokens"`
		}
	}
	if !json.Valid(out) {
		t.Fatalf("EncodeMessages wrote invalid JSON: %s", out)
	}
	if err := json.Unmarshal(out, &req); err != nil {
		t.Fatalf("EncodeMessages output does not decode: %v: %s", err, out)
	}
	if req.MaxTokens <= 0 || len(req.Messages) == 0 {
		t.Fatalf("no max_tokens or messages: %s", out)
	}
	for i, m := range req.Messages {
		if i > 0 && m.Role == req.Messages[i-1].Role {
			t.Fatalf("two %s turns in a row: %s", m.Role, out)
		}
		if len(m.Content) == 0 {
			t.Fatalf("empty turn %d: %s", i, out)
		}
		seenOther := false
		for _, b := range m.Content {
			switch b.Type {
			case "tool_result":
				if seenOther {
					t.Fatalf("tool_result after other blocks in turn %d: %s", i, out)
				}
			case "tool_use":
				if !json.Valid(b.Input) || !strings.HasPrefix(string(b.Input), "{") {
					t.Fatalf("tool_use input not an object: %s", out)
				}
			case "text":
				if b.Text == nil || *b.Text == "" {
					t.Fatalf("empty text block: %s", out)
				}
			case "thinking", "redacted_thinking":
				if req.Thinking == nil || m.Role != "assistant" {
					t.Fatalf("thinking block without thinking or outside an assistant turn: %s", out)
				}
			}
			seenOther = seenOther || b.Type != "tool_result"
			for _, id := range []string{b.ID, b.ToolUseID} {
				if SanitizeCallID(id) != id {
					t.Fatalf("unsanitized id %q: %s", id, out)
				}
			}
		}
	}
	if th := req.Thinking; th != nil && th.Type == "enabled" && th.BudgetTokens >= req.MaxTokens {
		t.Fatalf("budget_tokens %d not below max_tokens %d", th.BudgetTokens, req.MaxTokens)
	}
}

// FuzzParseMessages checks that any upstream body either fails cleanly or
// parses into a response WriteMessages writes as a valid Messages answer.
func FuzzParseMessages(f *testing.F) {
	f.Add([]byte(anthropicAnswer))
	f.Add([]byte(`{"content":[{"type":"tool_use","input":"str"},{"type":"thinking"}],"usage":{"input_tokens":-5},"stop_reason":7}`))
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Add([]byte(`{"id":"","content":[{"type":"text","text":"\ud800"}],"stop_sequence":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := ParseMessages(body)
		if err != nil {
			return
		}
		out := WriteMessages(resp, "claude-x")
		checkWrittenMessages(t, out)
	})
}

// checkWrittenMessages asserts what a Messages client relies on in a whole
// answer.
func checkWrittenMessages(t *testing.T, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("WriteMessages wrote invalid JSON: %s", out)
	}
	var m struct {
		ID, Type, Role string
		Content        []struct {
			Type  string
			Input json.RawMessage
		}
		StopReason string `json:"stop_reason"`
		Usage      struct {
			InputTokens *int64 `json:"input_tokens"`
		}
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("answer does not decode: %v: %s", err, out)
	}
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.StopReason == "" || m.Usage.InputTokens == nil || m.Content == nil {
		t.Fatalf("malformed answer: %s", out)
	}
	for _, b := range m.Content {
		if b.Type == "tool_use" && !strings.HasPrefix(string(b.Input), "{") {
			t.Fatalf("tool_use input not an object: %s", out)
		}
	}
}

// FuzzMessagesStreamReader feeds arbitrary event sequences (split on blank
// lines; an event's first line is its name, one letter of messagesEventNames
// or spelled out, the rest its data) to the reader, checks the Events keep
// their contract, and writes them to a Messages client: valid SSE that
// anthropic-sdk-go's accumulator takes.
func FuzzMessagesStreamReader(f *testing.F) {
	f.Add([]byte("s\n{\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}\n\nb\n{\"index\":0,\"content_block\":{\"type\":\"thinking\"}}\n\nd\n{\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"s\"}}\n\nb\n{\"index\":1,\"content_block\":{\"type\":\"text\"}}\n\nd\n{\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nm\n{\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nx\n{}"))
	f.Add([]byte("b\n{\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{\"a\":1}}}\n\nd\n{\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}\n\nb\n{\"index\":2,\"content_block\":{\"type\":\"server_tool_use\"}}\n\nd\n{\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"x\"}}\n\ne\n{\"index\":1}"))
	f.Add([]byte("b\n{\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"r\"}}\n\nr\n{\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}\n\nx\n{}"))
	f.Fuzz(func(t *testing.T, input []byte) {
		r := NewMessagesStreamReader()
		var evs []Event
		eachFuzzEvent(input, func(name, data []byte) {
			evs = r.Read(evs, name, data)
		})
		checkEvents(t, evs)
		out := writeAll(NewMessagesStreamWriter("m"), evs)
		accumulate(t, out)
	})
}

// checkEvents asserts the Event contract of ir.go: one EventStart first,
// parts numbered from 0 without gaps, never interleaved, then one
// EventFinish last, or an EventError ending the stream anywhere.
func checkEvents(t *testing.T, evs []Event) {
	t.Helper()
	open, next := -1, 0
	for i, ev := range evs {
		if (i == 0) != (ev.Kind == EventStart) && ev.Kind != EventError {
			t.Fatalf("event %d: kind %d (start must come first, once): %+v", i, ev.Kind, evs)
		}
		if (ev.Kind == EventFinish || ev.Kind == EventError) && i != len(evs)-1 {
			t.Fatalf("event %d ends the stream but more follow: %+v", i, evs)
		}
		switch ev.Kind {
		case EventPartStart:
			if open >= 0 || ev.Index != next {
				t.Fatalf("event %d starts part %d (open %d, next %d): %+v", i, ev.Index, open, next, evs)
			}
			open, next = ev.Index, next+1
		case EventDelta, EventSignature:
			if ev.Index != open {
				t.Fatalf("event %d for part %d, open %d: %+v", i, ev.Index, open, evs)
			}
		case EventPartStop:
			if ev.Index != open {
				t.Fatalf("event %d stops part %d, open %d: %+v", i, ev.Index, open, evs)
			}
			open = -1
		case EventFinish:
			if open >= 0 {
				t.Fatalf("finish with part %d open: %+v", open, evs)
			}
		}
	}
}
