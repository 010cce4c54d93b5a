package convert

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// chatPayloads returns the data payloads of a Chat SSE stream, failing on
// anything that is not a "data: ...\n\n" event.
func chatPayloads(t testing.TB, out []byte) []string {
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

func TestWriteChat(t *testing.T) {
	usage := provider.Usage{InputTokens: 10, OutputTokens: 5, CacheCreationTokens: 3, CacheReadTokens: 100}
	tests := []struct {
		name  string
		resp  Response
		model string
		want  string
	}{
		{
			name: "text parts concatenated, thinking as reasoning_content, redacted thinking dropped, cache usage",
			resp: Response{ID: "msg_01", Model: "claude-x", Stop: StopEnd, Usage: usage, Parts: []Part{
				{Kind: PartThinking, Text: "Let me think.", Sig: Signature{Origin: OriginAnthropic, Value: "sig"}},
				{Kind: PartText, Text: "Hello, "},
				{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "xxx"}},
				{Kind: PartText, Text: "world <&>"}}},
			want: `{"id":"chatcmpl-msg_01","object":"chat.completion","created":7,"model":"claude-x",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world <&>","reasoning_content":"Let me think."},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":113,"completion_tokens":5,"total_tokens":118,"prompt_tokens_details":{"cached_tokens":100}}}`,
		},
		{
			name:  "tool calls: compact arguments, empty arguments, requested model, chatcmpl id kept",
			model: "gpt-4o",
			resp: Response{ID: "chatcmpl-9", Model: "gpt-5", Stop: StopTool, Parts: []Part{
				{Kind: PartText, Text: "Checking."},
				{Kind: PartToolCall, CallID: "toolu_1", Name: "get_weather", Args: `{"city": "Paris", "days": [1, 2]}`},
				{Kind: PartToolCall, CallID: "call_2", Name: "now"}}},
			want: `{"id":"chatcmpl-9","object":"chat.completion","created":7,"model":"gpt-4o",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","tool_calls":[
					{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":[1,2]}"}},
					{"index":1,"id":"call_2","type":"function","function":{"name":"now","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0}}}`,
		},
		{
			name: "pure custom tool call: null content, raw input wrapped as {input}, reasoning tokens",
			resp: Response{ID: "resp_1", Model: "gpt-5", Stop: StopTool, ReasoningTokens: 4,
				Usage: provider.Usage{InputTokens: 1, OutputTokens: 9}, Parts: []Part{
					{Kind: PartToolCall, CallID: "call_p", Name: "apply_patch", Custom: true, Args: "*** Begin Patch\n\"x\""}}},
			want: `{"id":"chatcmpl-resp_1","object":"chat.completion","created":7,"model":"gpt-5",
				"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
					{"index":0,"id":"call_p","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\\n\\\"x\\\"\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":1,"completion_tokens":9,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":4}}}`,
		},
		{
			name: "max tokens is length, unknown usage is left out",
			resp: Response{ID: "x", Model: "m", Stop: StopMax, UsageUnknown: true, Parts: []Part{{Kind: PartText, Text: "cut"}}},
			want: `{"id":"chatcmpl-x","object":"chat.completion","created":7,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"cut"},"logprobs":null,"finish_reason":"length"}]}`,
		},
		{
			name: "refusal is content_filter, empty answer has empty content",
			resp: Response{ID: "x", Model: "m", Stop: StopRefusal},
			want: `{"id":"chatcmpl-x","object":"chat.completion","created":7,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"content_filter"}],
				"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jsonEqual(t, writeChat(&tt.resp, tt.model, 7), tt.want)
		})
	}
}

func TestWriteChatGeneratesIDs(t *testing.T) {
	before := time.Now().Unix()
	out := WriteChat(&Response{Parts: []Part{{Kind: PartToolCall, Name: "f", Args: "{}"}}}, "m")
	var r struct {
		ID      string
		Created int64
		Choices []struct {
			Message struct {
				ToolCalls []struct{ ID string } `json:"tool_calls"`
			}
		}
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
	if id := r.Choices[0].Message.ToolCalls[0].ID; !strings.HasPrefix(id, "call_") || len(id) < 10 {
		t.Errorf("tool call id = %q, want a generated call_ id", id)
	}
}

func TestChatStreamWriter(t *testing.T) {
	const head = `{"id":"chatcmpl-resp_1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[`
	chunk := func(delta, finish string) string {
		return head + `{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}],"usage":null}`
	}
	evs := []Event{
		{Kind: EventStart, ID: "resp_1", Model: "gpt-5", Usage: provider.Usage{InputTokens: 90}},
		{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
		{Kind: EventDelta, Index: 0, Delta: "hmm"},
		{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginOpenAI, Value: "gAAAA"}},
		{Kind: EventPartStop, Index: 0},
		{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
		{Kind: EventDelta, Index: 1, Delta: "Hi"},
		{Kind: EventDelta, Index: 1, Delta: ""},
		{Kind: EventPartStop, Index: 1},
		{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartToolCall, CallID: "call_a", Name: "f"}},
		{Kind: EventDelta, Index: 2, Delta: `{"a":`},
		{Kind: EventDelta, Index: 2, Delta: `1}`},
		{Kind: EventPartStop, Index: 2},
		{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: "call_p", Name: "apply_patch", Custom: true}},
		{Kind: EventDelta, Index: 3, Delta: "line \"1\"\n"},
		{Kind: EventPartStop, Index: 3},
		{Kind: EventDelta, Index: 9, Delta: "no such part"},
		{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 90, CacheReadTokens: 10, OutputTokens: 7}},
		{Kind: EventDelta, Index: 1, Delta: "after the finish"},
	}
	want := []string{
		chunk(`{"role":"assistant","content":""}`, "null"),
		chunk(`{"reasoning_content":"hmm"}`, "null"),
		chunk(`{"content":"Hi"}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"id":"call_p","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":"line \\\"1\\\"\\n"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":"\"}"}}]}`, "null"),
		chunk(`{}`, `"tool_calls"`),
		head + `],"usage":{"prompt_tokens":100,"completion_tokens":7,"total_tokens":107,"prompt_tokens_details":{"cached_tokens":10}}}`,
		"[DONE]",
	}
	w := newChatStreamWriter("gpt-4o", true, 1)
	got := chatPayloads(t, writeAll(w, evs))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chunks\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	// The custom call's merged arguments are the {input} object.
	var args struct{ Input string }
	if err := json.Unmarshal([]byte(`{"input":"line \"1\"\n"}`), &args); err != nil || args.Input != "line \"1\"\n" {
		t.Fatal("bad expectation")
	}
	if extra := w.Finish(nil); len(extra) != 0 {
		t.Errorf("second Finish appended %q", extra)
	}
	if extra := w.Write(nil, &evs[6]); len(extra) != 0 {
		t.Errorf("Write after Finish appended %q", extra)
	}
}

func TestChatStreamWriterCases(t *testing.T) {
	start := Event{Kind: EventStart, ID: "msg_1", Model: "claude-x"}
	text := []Event{{Kind: EventPartStart, Part: Part{Kind: PartText}}, {Kind: EventDelta, Delta: "x"}}
	tests := []struct {
		name         string
		model        string
		includeUsage bool
		evs          []Event
		want         []string
	}{
		{
			name: "no include_usage: no usage field, model from EventStart",
			evs:  append(append([]Event{start}, text...), Event{Kind: EventFinish, Stop: StopEnd}),
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"claude-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"claude-x","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"claude-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
		},
		{
			name:         "unknown usage: no usage chunk rather than zeros",
			model:        "m",
			includeUsage: true,
			evs:          []Event{start, {Kind: EventFinish, Stop: StopMax, UsageUnknown: true}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}`,
				`[DONE]`,
			},
		},
		{
			name:  "error event, defaults for a bare one",
			model: "m",
			evs:   []Event{start, {Kind: EventError, ErrType: "overloaded_error", Delta: "Overloaded"}, {Kind: EventError}},
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"error":{"message":"Overloaded","type":"overloaded_error"}}`,
				`{"error":{"message":"upstream stream error","type":"api_error"}}`,
				`[DONE]`,
			},
		},
		{
			name:  "a retried attempt's EventStart keeps the id and sends no second role chunk",
			model: "m",
			evs:   append([]Event{start, {Kind: EventStart, ID: "msg_2"}}, append(text, Event{Kind: EventFinish, Stop: StopRefusal})...),
			want: []string{
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
				`{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}`,
				`[DONE]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newChatStreamWriter(tt.model, tt.includeUsage, 1)
			var out []byte
			for i := range tt.evs {
				out = w.Write(out, &tt.evs[i])
			}
			got := chatPayloads(t, w.Finish(out))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("chunks\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestChatStreamWriterWithoutStart(t *testing.T) {
	// A tool call id the upstream did not give is generated; the role chunk
	// still comes first, with one generated completion id throughout.
	w := NewChatStreamWriter("m", false)
	out := w.Write(nil, &Event{Kind: EventPartStart, Part: Part{Kind: PartToolCall, Name: "f"}})
	out = w.Finish(out)
	got := chatPayloads(t, out)
	if len(got) != 3 || !strings.Contains(got[0], `"role":"assistant"`) {
		t.Fatalf("chunks: %v", got)
	}
	var c [2]struct {
		ID      string
		Choices []struct {
			Delta struct {
				ToolCalls []struct{ ID string } `json:"tool_calls"`
			}
		}
	}
	for i := range c {
		if err := json.Unmarshal([]byte(got[i]), &c[i]); err != nil {
			t.Fatal(err)
		}
	}
	if c[0].ID != c[1].ID || !strings.HasPrefix(c[0].ID, "chatcmpl-") {
		t.Errorf("ids %q %q", c[0].ID, c[1].ID)
	}
	if id := c[1].Choices[0].Delta.ToolCalls[0].ID; !strings.HasPrefix(id, "call_") || len(id) < 10 {
		t.Errorf("tool call id %q", id)
	}
}

// chatStreamView is what an OpenAI SDK builds from a chunk stream: the
// message, tool calls merged by index, finish_reason, usage, errors; it
// fails t on a chunk an SDK would reject.
func chatStreamView(t *testing.T, out []byte) string {
	t.Helper()
	var content, reasoning, finish, usage, errs strings.Builder
	type call struct{ id, name, args string }
	var calls []call
	var id string
	payloads := chatPayloads(t, out)
	for _, p := range payloads[:len(payloads)-1] {
		c := gjson.Parse(p)
		if e := c.Get("error"); e.Exists() {
			errs.WriteString(e.Raw)
			continue
		}
		if id == "" {
			id = c.Get("id").String()
		} else if c.Get("id").String() != id {
			t.Fatalf("chunk id changed: %s", p)
		}
		if u := c.Get("usage"); u.IsObject() {
			usage.WriteString(u.Raw)
		}
		d := c.Get("choices.0.delta")
		content.WriteString(d.Get("content").String())
		reasoning.WriteString(d.Get("reasoning_content").String())
		finish.WriteString(c.Get("choices.0.finish_reason").String())
		d.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
			i := int(tc.Get("index").Int())
			if i == len(calls) {
				calls = append(calls, call{id: tc.Get("id").String(), name: tc.Get("function.name").String()})
			}
			if i < 0 || i >= len(calls) {
				t.Fatalf("tool call index %d out of order: %s", i, p)
			}
			calls[i].args += tc.Get("function.arguments").String()
			return true
		})
	}
	if !strings.HasPrefix(id, "chatcmpl-") && id != "" {
		t.Fatalf("id %q", id)
	}
	if strings.HasPrefix(id, "chatcmpl-msg_") {
		id = "chatcmpl-<from upstream>" + id[len("chatcmpl-msg_"):]
	} else if id != "" {
		id = "chatcmpl-<random>"
	}
	return strings.Join([]string{id, content.String(), reasoning.String(), finish.String(), usage.String(), errs.String(), fmt.Sprint(calls)}, " | ")
}

func BenchmarkChatStreamWriter(b *testing.B) {
	evs := []Event{{Kind: EventStart, ID: "msg_1", Model: "m"}, {Kind: EventPartStart, Part: Part{Kind: PartText}}}
	for range 40 {
		evs = append(evs, Event{Kind: EventDelta, Delta: "some streamed text, "})
	}
	evs = append(evs, Event{Kind: EventPartStop},
		Event{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "call_1", Name: "f"}},
		Event{Kind: EventDelta, Index: 1, Delta: `{"path":"/a/b"}`}, Event{Kind: EventPartStop, Index: 1},
		Event{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 10, OutputTokens: 20}})
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		w := newChatStreamWriter("gpt-4o", true, 1)
		buf = buf[:0]
		for i := range evs {
			buf = w.Write(buf, &evs[i])
		}
		buf = w.Finish(buf)
	}
}
