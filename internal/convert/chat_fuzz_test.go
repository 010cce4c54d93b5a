package convert

import (
	"bytes"
	"encoding/json"
	"strings"
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
			checkRequestError(t, err)
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

// FuzzParseChat checks that any upstream body either fails or parses into
// a Response that WriteChat renders as a valid chat.completion.
func FuzzParseChat(f *testing.F) {
	f.Add([]byte(`{"id":"chatcmpl-1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"<think>a</think>b","reasoning_content":"r","tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"function":{"name":"g","arguments":{"b":2}}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":9},"prompt_cache_hit_tokens":1}}`))
	f.Add([]byte(`{"choices":[{"message":{"content":[{"type":"text","text":"x"}],"refusal":"no","function_call":{"name":"f"}},"finish_reason":"length"}]}`))
	f.Add([]byte(`{"error":{"message":"bad","type":"invalid_request_error"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseChat(body)
		if err != nil {
			return
		}
		for _, p := range r.Parts {
			if p.Kind == PartToolCall && (p.CallID == "" || p.Args == "") {
				t.Fatalf("tool call without id or arguments: %+v", p)
			}
		}
		if u := r.Usage; u.InputTokens < 0 || u.CacheReadTokens < 0 || u.OutputTokens < 0 {
			t.Fatalf("negative usage %+v", u)
		}
		out := WriteChat(r, "m")
		if !json.Valid(out) {
			t.Fatalf("WriteChat output is not JSON: %s", out)
		}
		if _, err := EncodeChat(&Request{Model: "m", Messages: []Message{{Role: RoleAssistant, Parts: r.Parts}}}); err != nil {
			t.Fatalf("EncodeChat of the parsed answer: %v", err)
		}
	})
}

// FuzzChatStreamReader feeds arbitrary upstream events (the input split
// on blank lines, each piece one event's data) and checks the Events keep
// their contract and that the Chat writer turns them into valid chunks.
func FuzzChatStreamReader(f *testing.F) {
	for _, stream := range chatStreamFixtures {
		var datas []string
		for _, ev := range strings.Split(strings.TrimSpace(stream), "\n\n") {
			datas = append(datas, strings.TrimPrefix(ev, "data: "))
		}
		f.Add([]byte(strings.Join(datas, "\n\n")))
	}
	f.Add([]byte("{\"choices\":[{\"delta\":{\"content\":\" <think>x</th\"}}]}\n\n{\"choices\":[{\"delta\":{\"content\":\"ink>y\",\"tool_calls\":[{\"function\":{\"arguments\":\"{\"}}]}}]}\n\n[DONE]"))
	f.Fuzz(func(t *testing.T, input []byte) {
		r := NewChatStreamReader()
		var evs []Event
		for _, data := range bytes.Split(input, []byte("\n\n")) {
			evs = r.Read(evs, nil, data)
		}
		checkEvents(t, evs)
		for _, p := range chatPayloads(t, writeAll(NewChatStreamWriter("m", true), evs)) {
			if p != "[DONE]" && !json.Valid([]byte(p)) {
				t.Fatalf("chunk is not JSON: %s", p)
			}
		}
	})
}
