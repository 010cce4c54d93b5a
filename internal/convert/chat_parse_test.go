package convert

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

func TestParseChat(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Response
	}{
		{
			name: "OpenAI: text, cached tokens split out, reasoning tokens",
			body: `{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hello <b>there</b>","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},
					"completion_tokens_details":{"reasoning_tokens":12,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}`,
			want: Response{ID: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", Model: "gpt-4o-2024-08-06", Stop: StopEnd, ReasoningTokens: 12,
				Parts: []Part{{Kind: PartText, Text: "Hello <b>there</b>"}},
				Usage: provider.Usage{InputTokens: 93, CacheReadTokens: 1024, OutputTokens: 46}},
		},
		{
			name: "DeepSeek reasoner: reasoning_content, tool call, prompt_cache_hit_tokens",
			body: `{"id":"5d9a3c1e","object":"chat.completion","created":1,"model":"deepseek-reasoner",
				"choices":[{"index":0,"message":{"role":"assistant","content":"","reasoning_content":"The user wants the weather.",
					"tool_calls":[{"index":0,"id":"call_00_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
					"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":300,"completion_tokens":50,"total_tokens":350,"prompt_tokens_details":{"cached_tokens":0},
					"prompt_cache_hit_tokens":256,"prompt_cache_miss_tokens":44,"completion_tokens_details":{"reasoning_tokens":30}}}`,
			want: Response{ID: "5d9a3c1e", Model: "deepseek-reasoner", Stop: StopTool, ReasoningTokens: 30,
				Parts: []Part{{Kind: PartThinking, Text: "The user wants the weather.", Sig: Signature{Origin: OriginChat}},
					{Kind: PartToolCall, CallID: "call_00_abc", Name: "get_weather", Args: `{"city":"Paris"}`}},
				Usage: provider.Usage{InputTokens: 44, CacheReadTokens: 256, OutputTokens: 50}},
		},
		{
			name: "raw reasoning model: <think> at the start of content, no usage, tool call stop said as stop, object arguments",
			body: `{"id":"chatcmpl-1","model":"qwq","choices":[{"index":0,"message":{"role":"assistant","content":"\n<think>\nLet me see.\n</think>\n\nCalling it.",
				"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":{"a":1}}}]},"finish_reason":"stop"}]}`,
			want: Response{ID: "chatcmpl-1", Model: "qwq", Stop: StopTool, UsageUnknown: true,
				Parts: []Part{{Kind: PartThinking, Text: "\nLet me see.\n", Sig: Signature{Origin: OriginChat}}, {Kind: PartText, Text: "Calling it."},
					{Kind: PartToolCall, CallID: "c1", Name: "f", Args: `{"a":1}`}}},
		},
		{
			name: "OpenRouter reasoning field, Kimi cached_tokens, length, content parts",
			body: `{"id":"gen-1","model":"moonshotai/kimi-k2","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"reasoning":"r"},"finish_reason":"length"}],
				"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"cached_tokens":4}}`,
			want: Response{ID: "gen-1", Model: "moonshotai/kimi-k2", Stop: StopMax,
				Parts: []Part{{Kind: PartThinking, Text: "r", Sig: Signature{Origin: OriginChat}}, {Kind: PartText, Text: "ab"}},
				Usage: provider.Usage{InputTokens: 6, CacheReadTokens: 4, OutputTokens: 2}},
		},
		{
			name: "refusal, content_filter, unclosed <think>",
			body: `{"id":"x","model":"m","choices":[{"index":1,"message":{"content":"other choice"},"finish_reason":"stop"},{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":-1}}`,
			want: Response{ID: "x", Model: "m", Stop: StopRefusal,
				Parts: []Part{{Kind: PartText, Text: "I can't help with that."}},
				Usage: provider.Usage{InputTokens: 3}},
		},
		{
			name: "cut inside <think>, content_filter",
			body: `{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"<think>half a thou"},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":9}}}`,
			want: Response{ID: "x", Model: "m", Stop: StopRefusal,
				Parts: []Part{{Kind: PartThinking, Text: "half a thou", Sig: Signature{Origin: OriginChat}}},
				Usage: provider.Usage{CacheReadTokens: 3, OutputTokens: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChat([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseChat: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseChatGeneratesCallIDs(t *testing.T) {
	got, err := ParseChat([]byte(`{"choices":[{"message":{"tool_calls":[{"type":"function","function":{"name":"f","arguments":""}}],"function_call":{"name":"g","arguments":"{}"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 2 || got.Stop != StopTool {
		t.Fatalf("got %+v", got)
	}
	for _, p := range got.Parts {
		if !strings.HasPrefix(p.CallID, "call_") || len(p.CallID) < 10 || p.Args != "{}" && p.Name == "f" {
			t.Errorf("call %+v", p)
		}
	}
	if got.Parts[0].CallID == got.Parts[1].CallID {
		t.Error("generated ids collide")
	}
}

func TestParseChatErrors(t *testing.T) {
	for _, body := range []string{
		`{"id":`, `[1]`, `{"id":"x","choices":[]}`, `{"id":"x"}`,
		`{"error":{"message":"Model not found","type":"invalid_request_error","code":"model_not_found"}}`,
	} {
		if got, err := ParseChat([]byte(body)); err == nil {
			t.Errorf("ParseChat(%s) = %+v, want an error", body, got)
		}
	}
}

// chatChunks frames payloads as the upstream's SSE bytes.
func chatChunks(payloads ...string) string {
	var b strings.Builder
	for _, p := range payloads {
		b.WriteString("data: " + p + "\n\n")
	}
	return b.String()
}

// readChatStream runs stream through internal/sse's parser, cut into
// pieces at the given offsets, and a fresh reader.
func readChatStream(stream string, cuts ...int) []Event {
	return feedSSE(NewChatStreamReader(), []byte(stream), cuts...)
}

// chatStreamFixtures are upstream streams as servers send them.
var chatStreamFixtures = map[string]string{
	// OpenAI with include_usage: text, two tool calls, the usage chunk.
	"openai": chatChunks(
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Checking é"},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":1,"delta":{"content":"another choice"},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Pa"}}]},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}`,
		`{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":64}}}`,
		`[DONE]`),
	// DeepSeek reasoner: reasoning_content, then content; usage on the
	// finish chunk.
	"deepseek": chatChunks(
		`{"id":"d1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"finish_reason":null}]}`,
		`{"id":"d1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Think"},"finish_reason":null}]}`,
		`{"id":"d1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"ing."},"finish_reason":null}]}`,
		`{"id":"d1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"Answer","reasoning_content":null},"finish_reason":null}]}`,
		`{"id":"d1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"finish_reason":"length"}],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}`,
		`[DONE]`),
	// A local server: <think> in the content split across chunks, a call
	// without an id, no usage.
	"local": chatChunks(
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{"role":"assistant","content":"\n<thi"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{"content":"nk>Hmm </"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{"content":"b> ok</th"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{"content":"ink>\n\n"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{"content":"Done."},"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"","type":"function","function":{"name":"ls","arguments":"{\"d\":1}"}}]},"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen3","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`[DONE]`),
	// A server that numbers every call 0, each with its own id.
	"zero-indexed": chatChunks(
		`{"id":"z","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}}]},"finish_reason":null}]}`,
		`{"id":"z","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_2","type":"function","function":{"name":"b","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"id":"z","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6}}`),
	// An error mid-stream.
	"error": chatChunks(
		`{"id":"e","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}`,
		`{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}`,
		`[DONE]`),
}

func TestChatStreamReader(t *testing.T) {
	const generated = "<generated>"
	want := map[string][]Event{
		"openai": {
			{Kind: EventStart, ID: "chatcmpl-A1", Model: "gpt-4o"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 0, Delta: "Checking é"},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "call_a", Name: "get_weather"}},
			{Kind: EventDelta, Index: 1, Delta: `{"city": "Paris"}`},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartToolCall, CallID: "call_b", Name: "get_time"}},
			{Kind: EventDelta, Index: 2, Delta: `{}`},
			{Kind: EventPartStop, Index: 2},
			{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 36, CacheReadTokens: 64, OutputTokens: 20}},
		},
		"deepseek": {
			{Kind: EventStart, ID: "d1", Model: "deepseek-reasoner"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
			{Kind: EventDelta, Index: 0, Delta: "Think"},
			{Kind: EventDelta, Index: 0, Delta: "ing."},
			{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginChat}},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 1, Delta: "Answer"},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventFinish, Stop: StopMax, Usage: provider.Usage{InputTokens: 4, CacheReadTokens: 16, OutputTokens: 9}},
		},
		"local": {
			{Kind: EventStart, ID: "chatcmpl-l", Model: "qwen3"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
			{Kind: EventDelta, Index: 0, Delta: "Hmm "},
			{Kind: EventDelta, Index: 0, Delta: "</b> ok"},
			{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginChat}},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 1, Delta: "Done."},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartToolCall, CallID: generated, Name: "ls"}},
			{Kind: EventDelta, Index: 2, Delta: `{"d":1}`},
			{Kind: EventPartStop, Index: 2},
			{Kind: EventFinish, Stop: StopTool, UsageUnknown: true},
		},
		"zero-indexed": {
			{Kind: EventStart, ID: "z", Model: "m"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartToolCall, CallID: "call_1", Name: "a"}},
			{Kind: EventDelta, Index: 0, Delta: `{"x":1}`},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "call_2", Name: "b"}},
			{Kind: EventDelta, Index: 1, Delta: `{}`},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 5, OutputTokens: 6}},
		},
		"error": {
			{Kind: EventStart, ID: "e", Model: "m"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 0, Delta: "par"},
			{Kind: EventError, ErrType: "rate_limit_error", Delta: "Rate limit reached"},
		},
	}
	for name, stream := range chatStreamFixtures {
		t.Run(name, func(t *testing.T) {
			got := readChatStream(stream)
			for i := range got {
				if id := got[i].Part.CallID; strings.HasPrefix(id, "call_") && len(id) == len("call_")+24 {
					got[i].Part.CallID = generated
				}
			}
			if !reflect.DeepEqual(got, want[name]) {
				t.Errorf("events\n got: %+v\nwant: %+v", got, want[name])
			}
		})
	}
}

// TestChatStreamReaderCutAtEveryByte: the upstream's bytes, split at any
// offset, read to the same events.
func TestChatStreamReaderCutAtEveryByte(t *testing.T) {
	for name, stream := range chatStreamFixtures {
		t.Run(name, func(t *testing.T) {
			read := func(cuts ...int) []Event { return chatEventsSansIDs(readChatStream(stream, cuts...)) }
			checkEveryCut(t, []byte(stream), read, read())
		})
	}
}

// chatEventsSansIDs blanks generated tool call ids, which differ per read.
func chatEventsSansIDs(evs []Event) []Event {
	for i := range evs {
		if id := evs[i].Part.CallID; strings.HasPrefix(id, "call_") && len(id) == len("call_")+24 {
			evs[i].Part.CallID = "call_<generated>"
		}
	}
	return evs
}

// TestChatThinkAnySplit: the stream reader's <think> detection agrees with
// ParseChat's wherever the content is cut into deltas.
func TestChatThinkAnySplit(t *testing.T) {
	for _, content := range []string{
		"<think>a</think>b", "  \n<think>\nplan é\n</think>\n\nanswer </think> x", "<think>never closed </thin",
		"no think <think>x</think>", "<thinking>is not it</thinking>", "<", "  ", "<think></think>", "</think>",
	} {
		body, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": content}}}})
		whole, err := ParseChat(body)
		if err != nil {
			t.Fatal(err)
		}
		want := chatPartsText(whole.Parts)
		for i := 0; i <= len(content); i++ {
			for j := i; j <= len(content); j++ {
				if !utf8.RuneStart(safeByte(content, i)) || !utf8.RuneStart(safeByte(content, j)) {
					continue
				}
				var chunks []string
				for _, c := range []string{content[:i], content[i:j], content[j:]} {
					d, _ := json.Marshal(c)
					chunks = append(chunks, `{"choices":[{"index":0,"delta":{"content":`+string(d)+`}}]}`)
				}
				evs := readChatStream(chatChunks(append(chunks, "[DONE]")...))
				if got := chatEventsText(evs); got != want {
					t.Fatalf("%q cut at %d,%d: %s, ParseChat %s", content, i, j, got, want)
				}
			}
		}
	}
}

func safeByte(s string, i int) byte {
	if i >= len(s) {
		return 0
	}
	return s[i]
}

func chatPartsText(parts []Part) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "[%d %q]", p.Kind, p.Text)
	}
	return b.String()
}

// chatEventsText joins each text or thinking part's deltas.
func chatEventsText(evs []Event) string {
	var parts []Part
	for _, ev := range evs {
		switch ev.Kind {
		case EventPartStart:
			parts = append(parts, Part{Kind: ev.Part.Kind})
		case EventDelta:
			parts[len(parts)-1].Text += ev.Delta
		}
	}
	return chatPartsText(parts)
}

// A Chat upstream's stream re-written for a Chat client (through the
// neutral form) carries what the upstream said.
func TestChatStreamReaderToWriter(t *testing.T) {
	w := newChatStreamWriter("gpt-4o", true, 1)
	var out []byte
	for _, ev := range readChatStream(chatStreamFixtures["openai"]) {
		out = w.Write(out, &ev)
	}
	got := chatStreamView(t, w.Finish(out))
	want := `chatcmpl-<random> | Checking é |  | tool_calls | {"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":64}} |  | [{call_a get_weather {"city": "Paris"}} {call_b get_time {}}]`
	if got != want {
		t.Errorf("view\n got: %s\nwant: %s", got, want)
	}
}

func BenchmarkChatStreamReader(b *testing.B) {
	var datas [][]byte
	var p sse.Parser
	p.Feed([]byte(chatStreamFixtures["openai"]), func(ev *sse.Event) bool {
		datas = append(datas, append([]byte(nil), ev.Data...))
		return true
	})
	evs := make([]Event, 0, 32)
	b.ReportAllocs()
	for b.Loop() {
		r := NewChatStreamReader()
		evs = evs[:0]
		for _, d := range datas {
			evs = r.Read(evs, nil, d)
		}
	}
}
