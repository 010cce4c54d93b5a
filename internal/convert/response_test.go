package convert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMessagesToChat(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		model string
		want  string
	}{
		{
			name: "all text blocks concatenated, thinking as reasoning_content, cache usage",
			body: `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
				"content":[
					{"type":"thinking","thinking":"Let me think.","signature":"sig"},
					{"type":"text","text":"Hello, "},
					{"type":"redacted_thinking","data":"xxx"},
					{"type":"text","text":"world <&>"}],
				"stop_reason":"end_turn","stop_sequence":null,
				"usage":{"input_tokens":10,"output_tokens":5,"cache_creation_input_tokens":3,"cache_read_input_tokens":100,"service_tier":"standard"}}`,
			want: `{"id":"chatcmpl-msg_01","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-5",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world <&>","reasoning_content":"Let me think."},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":113,"completion_tokens":5,"total_tokens":118,"prompt_tokens_details":{"cached_tokens":100}}}`,
		},
		{
			name:  "tool calls with JSON-string arguments, requested model reported",
			model: "gpt-4o",
			body: `{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5",
				"content":[
					{"type":"text","text":"Checking."},
					{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Paris", "days": [1, 2]}},
					{"type":"tool_use","id":"toolu_2","name":"now","input":{}}],
				"stop_reason":"tool_use","usage":{"input_tokens":7,"output_tokens":9}}`,
			want: `{"id":"chatcmpl-msg_02","object":"chat.completion","created":1700000000,"model":"gpt-4o",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","tool_calls":[
					{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":[1,2]}"}},
					{"index":1,"id":"toolu_2","type":"function","function":{"name":"now","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":0}}}`,
		},
		{
			name: "pure tool call has null content",
			body: `{"id":"msg_03","model":"c","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}`,
			want: `{"id":"chatcmpl-msg_03","object":"chat.completion","created":1700000000,"model":"c",
				"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
					{"index":0,"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0}}}`,
		},
		{
			name: "empty content and no usage",
			body: `{"id":"msg_04","model":"c","content":[],"stop_reason":"max_tokens"}`,
			want: `{"id":"chatcmpl-msg_04","object":"chat.completion","created":1700000000,"model":"c",
				"choices":[{"index":0,"message":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"length"}],
				"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := messagesToChat([]byte(tt.body), tt.model, 1700000000)
			if err != nil {
				t.Fatalf("messagesToChat: %v", err)
			}
			jsonEqual(t, got, tt.want)
		})
	}
}

func TestFinishReason(t *testing.T) {
	tests := []struct{ stop, want string }{
		{"end_turn", "stop"},
		{"stop_sequence", "stop"},
		{"max_tokens", "length"},
		{"model_context_window_exceeded", "length"},
		{"tool_use", "tool_calls"},
		{"refusal", "content_filter"},
		{"pause_turn", "stop"},
		{"", "stop"},
		{"something_new", "stop"},
	}
	for _, tt := range tests {
		t.Run(tt.stop, func(t *testing.T) {
			if got := finishReason(tt.stop); got != tt.want {
				t.Errorf("finishReason(%q) = %q, want %q", tt.stop, got, tt.want)
			}
			body := `{"id":"msg_1","model":"c","content":[{"type":"text","text":"x"}],"stop_reason":"` + tt.stop + `"}`
			out, err := MessagesToChat([]byte(body), "")
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Choices []struct {
					FinishReason string `json:"finish_reason"`
				}
			}
			if err := json.Unmarshal(out, &r); err != nil || len(r.Choices) != 1 || r.Choices[0].FinishReason != tt.want {
				t.Errorf("response finish_reason: %s (err %v)", out, err)
			}
		})
	}
}

func TestMessagesToChatCreatedAndID(t *testing.T) {
	before := time.Now().Unix()
	out, err := MessagesToChat([]byte(`{"model":"c","content":[{"type":"text","text":"x"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ID      string
		Created int64
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Created < before || r.Created > time.Now().Unix() {
		t.Errorf("created = %d, want now", r.Created)
	}
	if !strings.HasPrefix(r.ID, "chatcmpl-") || len(r.ID) < len("chatcmpl-")+10 {
		t.Errorf("id = %q, want a generated chatcmpl- id", r.ID)
	}
}

func TestMessagesToChatErrors(t *testing.T) {
	tests := []struct{ name, body string }{
		{"invalid JSON", `{"id":`},
		{"not an object", `"text"`},
		{"error body", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := MessagesToChat([]byte(tt.body), "m"); err == nil {
				t.Errorf("want error, got %s", out)
			}
		})
	}
}
