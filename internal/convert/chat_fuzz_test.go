package convert

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeChat checks that any body either decodes into a well-formed
// Request or fails with a *RequestError, never a panic.
func FuzzDecodeChat(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}},{"type":"file","file":{"file_data":"data:text/plain;base64,aGk="}}]}],"max_tokens":10,"stop":["x"],"stream":true,"stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":"y"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","parallel_tool_calls":false}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"developer","content":"d"},{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":100,"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"}}}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"robot","content":"x"}],"n":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeChat(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("error %v (%T), want a *RequestError with a message", err, err)
			}
			return
		}
		checkDecodedChat(t, r)
	})
}

// checkDecodedChat asserts what encoders rely on in a decoded request.
func checkDecodedChat(t *testing.T, r *Request) {
	t.Helper()
	if r.Model == "" || len(r.Messages) == 0 || r.IncludeUsage && !r.Stream {
		t.Fatalf("malformed request %+v", r)
	}
	for i, m := range r.Messages {
		if m.Role != RoleUser && m.Role != RoleAssistant || len(m.Parts) == 0 {
			t.Fatalf("message %d: %+v", i, m)
		}
		if i > 0 && r.Messages[i-1].Role == m.Role {
			t.Fatalf("messages %d and %d share role %q", i-1, i, m.Role)
		}
		for _, p := range m.Parts {
			switch p.Kind {
			case PartText:
				if p.Text == "" {
					t.Fatalf("empty text in message %d", i)
				}
			case PartToolCall:
				var obj map[string]json.RawMessage
				if p.CallID == "" || p.Name == "" || json.Unmarshal([]byte(p.Args), &obj) != nil || obj == nil {
					t.Fatalf("tool call %+v", p)
				}
			case PartToolResult:
				if p.CallID == "" {
					t.Fatalf("tool result without id in message %d", i)
				}
			}
		}
	}
	for _, tl := range r.Tools {
		var obj map[string]json.RawMessage
		if tl.Name == "" || json.Unmarshal(tl.Schema, &obj) != nil || obj == nil {
			t.Fatalf("tool %+v", tl)
		}
	}
}
