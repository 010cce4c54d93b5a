package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

type sseEvent struct{ name, data string }

// fullStream is a complete Anthropic stream: thinking, text, two tool calls
// with split argument fragments, pings, an unknown event and cumulative
// usage.
var fullStream = []sseEvent{
	{"message_start", `{"type":"message_start","message":{"id":"msg_abc","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"output_tokens":1}}}`},
	{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants"}}`},
	{"ping", `{"type": "ping"}`},
	{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" weather."}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":0}`},
	{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me "}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"check \"both\"."}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":1}`},
	{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":2}`},
	{"future_event", `{"type":"future_event","x":1}`},
	{"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"\"Europe/Paris\"}"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":3}`},
	{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"output_tokens":50}}`},
	{"message_stop", `{"type":"message_stop"}`},
}

func runStream(s *ChatStream, events []sseEvent) []byte {
	var out []byte
	for _, e := range events {
		out = s.Event(out, e.name, []byte(e.data))
	}
	return s.Finish(out)
}

// splitSSE returns the data payloads of an OpenAI SSE stream, failing on
// anything that is not a "data: ...\n\n" line.
func splitSSE(t testing.TB, out []byte) []string {
	t.Helper()
	var payloads []string
	rest := string(out)
	for rest != "" {
		line, after, ok := strings.Cut(rest, "\n\n")
		if !ok || !strings.HasPrefix(line, "data: ") || strings.Contains(line, "\n") {
			t.Fatalf("malformed SSE at %q", rest)
		}
		payloads = append(payloads, strings.TrimPrefix(line, "data: "))
		rest = after
	}
	return payloads
}

func TestChatStreamFull(t *testing.T) {
	const head = `{"id":"chatcmpl-msg_abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[`
	chunk := func(delta, finish string) string {
		return head + `{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}],"usage":null}`
	}
	want := []string{
		chunk(`{"role":"assistant","content":""}`, "null"),
		chunk(`{"reasoning_content":"The user wants"}`, "null"),
		chunk(`{"reasoning_content":" weather."}`, "null"),
		chunk(`{"content":"Let me "}`, "null"),
		chunk(`{"content":"check \"both\"."}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Pa"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"id":"toolu_02","type":"function","function":{"name":"get_time","arguments":""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":"\"Europe/Paris\"}"}}]}`, "null"),
		chunk(`{}`, `"tool_calls"`),
		head + `],"usage":{"prompt_tokens":125,"completion_tokens":50,"total_tokens":175,"prompt_tokens_details":{"cached_tokens":20}}}`,
		"[DONE]",
	}

	s := NewChatStream("gpt-4o", true, 1700000000)
	got := splitSSE(t, runStream(s, fullStream))
	if len(got) != len(want) {
		t.Fatalf("got %d chunks, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("chunk %d\n got: %s\nwant: %s", i, got[i], want[i])
		}
	}

	// The client-side view: merge tool-call fragments by index, as the
	// OpenAI SDKs do, and check each argument string parses.
	args := map[int]string{}
	for _, p := range got[:len(got)-1] {
		var c struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int
						Function struct{ Arguments string }
					} `json:"tool_calls"`
				}
			}
		}
		if err := json.Unmarshal([]byte(p), &c); err != nil {
			t.Fatalf("chunk is not JSON: %v: %s", err, p)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				args[tc.Index] += tc.Function.Arguments
			}
		}
	}
	wantArgs := map[int]map[string]string{0: {"city": "Paris"}, 1: {"tz": "Europe/Paris"}}
	for i, w := range wantArgs {
		var v map[string]string
		if err := json.Unmarshal([]byte(args[i]), &v); err != nil {
			t.Fatalf("tool call %d arguments %q do not parse: %v", i, args[i], err)
		}
		if len(v) != len(w) || v[keyOf(w)] != w[keyOf(w)] {
			t.Errorf("tool call %d arguments = %v, want %v", i, v, w)
		}
	}

	wantUsage := provider.Usage{InputTokens: 100, OutputTokens: 50, CacheCreationTokens: 5, CacheReadTokens: 20}
	if u := s.Usage(); u != wantUsage {
		t.Errorf("Usage() = %+v, want %+v", u, wantUsage)
	}
	if extra := s.Finish(nil); len(extra) != 0 {
		t.Errorf("second Finish appended %q", extra)
	}
	if extra := s.Event(nil, "content_block_delta", []byte(fullStream[8].data)); len(extra) != 0 {
		t.Errorf("Event after Finish appended %q", extra)
	}
}

func keyOf(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestChatStreamCases(t *testing.T) {
	const msgStart = `{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":3,"output_tokens":1}}}`
	tests := []struct {
		name         string
		model        string
		includeUsage bool
		events       []sseEvent
		want         []string
	}{
		{
			name:   "text only without usage, model from message_start",
			events: []sseEvent{{"message_start", msgStart}, {"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`}, {"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi <b>"}}`}, {"content_block_stop", `{"type":"content_block_stop","index":0}`}, {"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`}, {"message_stop", `{"type":"message_stop"}`}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"claude-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"claude-x","choices":[{"index":0,"delta":{"content":"Hi <b>"},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"claude-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
		},
		{
			name:         "max_tokens maps to length, event name taken from data when missing",
			model:        "m",
			includeUsage: true,
			events:       []sseEvent{{"", msgStart}, {"", `{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9}}`}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0}}}`,
				`[DONE]`,
			},
		},
		{
			name:   "error event mid-stream",
			model:  "m",
			events: []sseEvent{{"message_start", msgStart}, {"ping", `{"type":"ping"}`}, {"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"error":{"message":"Overloaded","type":"overloaded_error"}}`,
				`[DONE]`,
			},
		},
		{
			name:   "refusal maps to content_filter, message_stop does not repeat the finish",
			model:  "m",
			events: []sseEvent{{"message_start", msgStart}, {"message_delta", `{"type":"message_delta","delta":{"stop_reason":"refusal"}}`}, {"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`}, {"message_stop", `{}`}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "malformed and unknown events are ignored, deltas for unknown blocks dropped",
			model:  "m",
			events: []sseEvent{{"message_start", msgStart}, {"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_del`}, {"content_block_delta", `{"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta","partial_json":"{}"}}`}, {"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}`}, {"whatever", `{}`}, {"content_block_delta", ``}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "tool input sent whole in content_block_start",
			model:  "m",
			events: []sseEvent{{"message_start", msgStart}, {"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"f","input":{"a":1}}}`}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_9","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewChatStream(tt.model, tt.includeUsage, 1)
			got := splitSSE(t, runStream(s, tt.events))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("chunks\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestChatStreamWithoutMessageStart(t *testing.T) {
	// A stream that starts mid-way still opens with the role chunk and keeps
	// one id throughout.
	s := NewChatStream("m", true, 1)
	out := s.Event(nil, "content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`))
	out = s.Finish(out)
	got := splitSSE(t, out)
	if len(got) != 4 {
		t.Fatalf("got %d chunks: %v", len(got), got)
	}
	var ids []string
	for _, p := range got[:3] {
		var c struct {
			ID      string
			Choices []struct{ Delta map[string]any }
		}
		if err := json.Unmarshal([]byte(p), &c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] || !strings.HasPrefix(ids[0], "chatcmpl-") {
		t.Errorf("ids not one chatcmpl- id: %v", ids)
	}
	if !strings.Contains(got[0], `"role":"assistant"`) {
		t.Errorf("first chunk is not the role chunk: %s", got[0])
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"q\"b\\", `"q\"b\\"`},
		{"\n\r\t\x01", `"\n\r\t\u0001"`},
		{"<&>", `"<&>"`},
		{"é日本", `"é日本"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
	}
	for _, tt := range tests {
		got := string(appendString(nil, tt.in))
		if got != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("appendString(%q) is not valid JSON", tt.in)
		}
	}
}

func BenchmarkChatStream(b *testing.B) {
	events := make([][]byte, len(fullStream))
	for i, e := range fullStream {
		events[i] = []byte(e.data)
	}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		s := NewChatStream("gpt-4o", true, 1)
		buf = buf[:0]
		for i, e := range fullStream {
			buf = s.Event(buf, e.name, events[i])
		}
		buf = s.Finish(buf)
	}
}
