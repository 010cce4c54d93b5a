package convert

import (
	"fmt"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// reasoningUpstream is one upstream's answer, whole and streamed, with the
// output and reasoning counts its usage says (the stream's in [1]).
type reasoningUpstream struct {
	name              string
	whole             func(t *testing.T) []byte
	stream            func(t *testing.T) []byte
	parse             func([]byte) (*Response, error)
	reader            func() StreamReader
	output, reasoning [2]int64
}

func reasoningUpstreams() []reasoningUpstream {
	chatUsage := `"usage":{"prompt_tokens":20,"completion_tokens":50,"total_tokens":70,"completion_tokens_details":{"reasoning_tokens":30}}`
	return []reasoningUpstream{
		{
			// Gemini bills thoughts as output; candidatesTokenCount (40)
			// excludes them (75).
			name:  "gemini",
			whole: func(t *testing.T) []byte { return geminiFixture(t, "response_tool.json") },
			stream: func(t *testing.T) []byte {
				return geminiFixture(t, "stream_tool.sse")
			},
			parse: ParseGemini, reader: NewGeminiStreamReader, output: [2]int64{115, 115}, reasoning: [2]int64{75, 75},
		},
		{
			name:  "responses",
			whole: func(t *testing.T) []byte { return []byte(responsesToolAnswer) },
			stream: func(t *testing.T) []byte {
				return responsesFixtureStream(t)
			},
			parse: ParseResponses, reader: NewResponsesStreamReader, output: [2]int64{90, 120}, reasoning: [2]int64{64, 80},
		},
		{
			name: "chat",
			whole: func(*testing.T) []byte {
				return []byte(`{"id":"c1","object":"chat.completion","model":"deepseek-reasoner","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"hm","content":"ok"},"finish_reason":"stop"}],` + chatUsage + `}`)
			},
			stream: func(*testing.T) []byte {
				return []byte(chatChunks(
					`{"id":"c1","object":"chat.completion.chunk","model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hm"},"finish_reason":null}]}`,
					`{"id":"c1","object":"chat.completion.chunk","model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}`,
					`{"id":"c1","object":"chat.completion.chunk","model":"deepseek-reasoner","choices":[],`+chatUsage+`}`,
				) + "data: [DONE]\n\n")
			},
			parse: ParseChat, reader: NewChatStreamReader, output: [2]int64{50, 50}, reasoning: [2]int64{30, 30},
		},
		{
			// Claude reports no thinking count: 0, never made up.
			name: "anthropic",
			whole: func(*testing.T) []byte {
				return []byte(fakeupstream.ToolUseJSON("claude-x", "hi", "toolu_1", "f", `{}`))
			},
			stream: func(*testing.T) []byte {
				return fakeSSE(fakeupstream.ToolUseStream("claude-x", "hi", "toolu_1", "f", `{}`, 0, 0))
			},
			parse: ParseMessages, reader: NewMessagesStreamReader, output: [2]int64{15, 15}, reasoning: [2]int64{0, 0},
		},
	}
}

func responsesFixtureStream(t *testing.T) []byte { return responsesFixture(t, "stream_tool.sse") }

// sseData is the data of each event of a client stream.
func sseData(out []byte) []string {
	var p sse.Parser
	var data []string
	p.Feed(out, func(ev *sse.Event) bool {
		data = append(data, string(ev.Data))
		return true
	})
	return data
}

// clientCounts reads the output and reasoning counts a client of each
// dialect gets, whole (body) or streamed (the final usage of the SSE).
var clientCounts = []struct {
	name   string
	whole  func(*Response) []byte
	writer func() StreamWriter
	counts func(t *testing.T, out []byte, stream bool) (output, reasoning int64)
}{
	{"responses", func(r *Response) []byte { return WriteResponses(r, "m") }, func() StreamWriter { return NewResponsesStreamWriter("m") },
		func(t *testing.T, out []byte, stream bool) (int64, int64) {
			u := gjson.GetBytes(out, "usage")
			if stream {
				for _, d := range sseData(out) {
					if gjson.Get(d, "type").Str == "response.completed" {
						u = gjson.Get(d, "response.usage")
					}
				}
			}
			return u.Get("output_tokens").Int(), u.Get("output_tokens_details.reasoning_tokens").Int()
		}},
	{"chat", func(r *Response) []byte { return WriteChat(r, "m") }, func() StreamWriter { return NewChatStreamWriter("m", true) },
		func(t *testing.T, out []byte, stream bool) (int64, int64) {
			u := gjson.GetBytes(out, "usage")
			if stream {
				for _, d := range sseData(out) {
					if v := gjson.Get(d, "usage"); v.IsObject() {
						u = v
					}
				}
			}
			return u.Get("completion_tokens").Int(), u.Get("completion_tokens_details.reasoning_tokens").Int()
		}},
	{"gemini", func(r *Response) []byte { return WriteGemini(r, "m") }, func() StreamWriter { return NewGeminiStreamWriter("m") },
		func(t *testing.T, out []byte, stream bool) (int64, int64) {
			u := gjson.GetBytes(out, "usageMetadata")
			if stream {
				for _, d := range sseData(out) {
					if v := gjson.Get(d, "usageMetadata"); v.IsObject() {
						u = v
					}
				}
			}
			thoughts := u.Get("thoughtsTokenCount").Int()
			return u.Get("candidatesTokenCount").Int() + thoughts, thoughts
		}},
}

// The reasoning count an upstream gives (OpenAI's reasoning_tokens,
// Gemini's thoughtsTokenCount) reaches a Responses, Chat or Gemini client,
// whole and streamed, within an output that counts it; Claude's answers,
// which give none, report 0.
func TestReasoningTokensAcrossDialects(t *testing.T) {
	for _, up := range reasoningUpstreams() {
		for _, cl := range clientCounts {
			t.Run(up.name+"->"+cl.name, func(t *testing.T) {
				resp, err := up.parse(up.whole(t))
				if err != nil {
					t.Fatal(err)
				}
				if resp.Usage.OutputTokens != up.output[0] || resp.ReasoningTokens != up.reasoning[0] {
					t.Fatalf("parsed output %d reasoning %d, want %d %d", resp.Usage.OutputTokens, resp.ReasoningTokens, up.output[0], up.reasoning[0])
				}
				if out, reasoning := cl.counts(t, cl.whole(resp), false); out != up.output[0] || reasoning != up.reasoning[0] {
					t.Fatalf("whole: client got output %d reasoning %d, want %d %d", out, reasoning, up.output[0], up.reasoning[0])
				}
				evs := feedSSE(up.reader(), up.stream(t))
				out := writeAll(cl.writer(), evs)
				if o, reasoning := cl.counts(t, out, true); o != up.output[1] || reasoning != up.reasoning[1] {
					t.Fatalf("stream: client got output %d reasoning %d, want %d %d\n%s", o, reasoning, up.output[1], up.reasoning[1], out)
				}
			})
		}
	}
}

// The stream readers put the count on EventFinish.
func TestStreamReadersReasoningTokens(t *testing.T) {
	for _, up := range reasoningUpstreams() {
		t.Run(up.name, func(t *testing.T) {
			evs := feedSSE(up.reader(), up.stream(t))
			last := evs[len(evs)-1]
			if last.Kind != EventFinish || last.Usage.OutputTokens != up.output[1] || last.ReasoningTokens != up.reasoning[1] {
				t.Fatalf("last event %s", fmt.Sprintf("%+v", last))
			}
		})
	}
}
