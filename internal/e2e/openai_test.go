package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/usage"
)

func openaiAccount(id, url, key string, priority int) string {
	return fmt.Sprintf("[[accounts]]\ntype = \"openai-responses\"\nid = %q\napi_key = %q\napi_url = %q\npriority = %d\n", id, key, url, priority)
}

// openaiClient is the official SDK pointed at the relay; base is the path
// prefix ("/openai/v1" or "/v1").
func (r *relayUT) openaiClient(base string, opts ...option.RequestOption) openai.Client {
	o := []option.RequestOption{option.WithBaseURL(r.URL + base), option.WithAPIKey(relayKey), option.WithMaxRetries(0)}
	return openai.NewClient(append(o, opts...)...)
}

const chatModels = "\n[models]\n\"gpt-4o\" = \"claude-sonnet-5\"\n"

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: shared.ChatModel(model),
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are terse."),
			openai.UserMessage("say hi"),
		},
	}
}

func TestChatCompletionsEndToEnd(t *testing.T) {
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant-account-1"}}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)+chatModels)

	c := r.openaiClient("/openai/v1")
	comp, err := c.Chat.Completions.New(context.Background(), chatParams("gpt-4o"))
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 1 || comp.Choices[0].Message.Content != "Hello from fake upstream" || comp.Choices[0].FinishReason != "stop" {
		t.Fatalf("completion %+v", comp.Choices)
	}
	// Prompt tokens are Anthropic's input + cache write + cache read (12+3+5).
	if comp.Model != "gpt-4o" || comp.Usage.PromptTokens != 20 || comp.Usage.CompletionTokens != 7 || comp.Usage.TotalTokens != 27 || comp.Usage.PromptTokensDetails.CachedTokens != 5 {
		t.Fatalf("model %q usage %+v", comp.Model, comp.Usage)
	}
	got := fake.Requests()[0]
	if got.Path != "/v1/messages" || gjson.GetBytes(got.Body, "model").Str != "claude-sonnet-5" || gjson.GetBytes(got.Body, "system.0.text").Str != "You are terse." {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	if strings.Contains(strings.Join(flatten(got.Header), "\n"), relayKey) {
		t.Fatal("relay key reached the upstream")
	}
	rows := r.usageRows(1)
	want := usageRow{Account: "acct-1", Model: "gpt-4o", Status: 200, In: 12, Out: 7, CacheWrite: 3, CacheRead: 5, KeyHash: usage.HashKey(relayKey)}
	if rows[0] != want {
		t.Fatalf("usage row %+v, want %+v", rows[0], want)
	}
}

func TestChatCompletionsStreamEndToEnd(t *testing.T) {
	fake := &fakeupstream.Anthropic{Text: "streamed answer text", StreamEvents: 4, EventGap: 2 * time.Millisecond}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("acct-1", up.URL, "k", 100)+chatModels)

	c := r.openaiClient("/openai/v1")
	p := chatParams("gpt-4o")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(context.Background(), p)
	var acc openai.ChatCompletionAccumulator
	chunks, finished := 0, ""
	for stream.Next() {
		chunks++
		if !acc.AddChunk(stream.Current()) {
			t.Fatalf("accumulator refused chunk %d: %s", chunks, stream.Current().RawJSON())
		}
		if s, ok := acc.JustFinishedContent(); ok {
			finished = s
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// role + 4 text deltas + finish + usage.
	if chunks != 7 || finished != "streamed answer text" || acc.Choices[0].Message.Content != "streamed answer text" || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("%d chunks, finished %q, %+v", chunks, finished, acc.Choices)
	}
	if acc.Usage.PromptTokens != 20 || acc.Usage.CompletionTokens != 7 || acc.Model != "gpt-4o" {
		t.Fatalf("usage %+v model %q", acc.Usage, acc.Model)
	}
	if !gjson.GetBytes(fake.Requests()[0].Body, "stream").Bool() {
		t.Fatal("upstream request not streamed")
	}
	rows := r.usageRows(1)
	if rows[0].Model != "gpt-4o" || !rows[0].Stream || rows[0].In != 12 || rows[0].Out != 7 || rows[0].CacheRead != 5 || rows[0].Status != 200 {
		t.Fatalf("usage %+v", rows[0])
	}
}

// toolScript answers with a get_weather call until the conversation holds
// its result, then with the final text.
func toolScript(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
	body := gjson.ParseBytes(rec.Body)
	model := body.Get("model").Str
	msgs := body.Get("messages").Array()
	last := msgs[len(msgs)-1]
	if last.Get(`content.#(type=="tool_result")`).Exists() {
		if body.Get("stream").Bool() {
			return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, "It is 21 degrees in Paris.", 2, 0)}
		}
		return &fakeupstream.Reply{Body: fakeupstream.MessageJSON(model, "It is 21 degrees in Paris.")}
	}
	const input = `{"city":"Paris","unit":"celsius"}`
	if body.Get("stream").Bool() {
		return &fakeupstream.Reply{Events: fakeupstream.ToolUseStream(model, "Let me check.", "toolu_01Weather", "get_weather", input, 7, 0)}
	}
	return &fakeupstream.Reply{Body: fakeupstream.ToolUseJSON(model, "Let me check.", "toolu_01Weather", "get_weather", input)}
}

// A full tool round trip: tools declared, the assistant's tool call, the
// tool's answer, the final text — plain and streamed, through the SDK's own
// types (ToParam, ToolMessage) so the converter meets what real clients send.
func TestChatToolRoundTrip(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			fake := &fakeupstream.Anthropic{Script: toolScript}
			up := upstream(t, fake)
			r := startRelay(t, claudeAPIAccount("a", up.URL, "k", 100)+chatModels)
			c := r.openaiClient("/openai/v1")
			p := chatParams("gpt-4o")
			p.Messages[1] = openai.UserMessage("What is the weather in Paris?")
			p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
				Name:        "get_weather",
				Description: openai.String("Current weather of a city"),
				Parameters: shared.FunctionParameters{
					"type":       "object",
					"properties": map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}},
					"required":   []string{"city"},
				},
			})}

			call := func(p openai.ChatCompletionNewParams) openai.ChatCompletionMessage {
				t.Helper()
				if !stream {
					comp, err := c.Chat.Completions.New(context.Background(), p)
					if err != nil {
						t.Fatal(err)
					}
					m := comp.Choices[0].Message
					if len(m.ToolCalls) > 0 && comp.Choices[0].FinishReason != "tool_calls" {
						t.Errorf("finish_reason %q with tool calls", comp.Choices[0].FinishReason)
					}
					return m
				}
				s := c.Chat.Completions.NewStreaming(context.Background(), p)
				var acc openai.ChatCompletionAccumulator
				var done []openai.FinishedChatCompletionToolCall
				for s.Next() {
					acc.AddChunk(s.Current())
					if tc, ok := acc.JustFinishedToolCall(); ok {
						done = append(done, tc)
					}
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				m := acc.Choices[0].Message
				if len(m.ToolCalls) > 0 {
					if acc.Choices[0].FinishReason != "tool_calls" || len(done) != len(m.ToolCalls) {
						t.Errorf("finish_reason %q, %d finished tool calls of %d", acc.Choices[0].FinishReason, len(done), len(m.ToolCalls))
					}
				}
				return m
			}

			m := call(p)
			if len(m.ToolCalls) != 1 || m.Content != "Let me check." {
				t.Fatalf("first answer %+v", m)
			}
			tc := m.ToolCalls[0]
			if tc.ID != "toolu_01Weather" || tc.Function.Name != "get_weather" || gjson.Get(tc.Function.Arguments, "city").Str != "Paris" || gjson.Get(tc.Function.Arguments, "unit").Str != "celsius" {
				t.Fatalf("tool call %+v", tc)
			}

			p.Messages = append(p.Messages, m.ToParam(), openai.ToolMessage("21C, sunny", tc.ID))
			m = call(p)
			if m.Content != "It is 21 degrees in Paris." || len(m.ToolCalls) != 0 {
				t.Fatalf("final answer %+v", m)
			}

			reqs := fake.Requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests", len(reqs))
			}
			first, second := gjson.ParseBytes(reqs[0].Body), gjson.ParseBytes(reqs[1].Body)
			if first.Get("tools.0.name").Str != "get_weather" || first.Get("tools.0.input_schema.required.0").Str != "city" {
				t.Fatalf("tools upstream: %s", first.Get("tools").Raw)
			}
			asst, res := second.Get("messages.1"), second.Get("messages.2")
			use := asst.Get(`content.#(type=="tool_use")`)
			if asst.Get("role").Str != "assistant" || use.Get("id").Str != "toolu_01Weather" || use.Get("input.city").Str != "Paris" {
				t.Fatalf("assistant turn upstream: %s", asst.Raw)
			}
			result := res.Get(`content.#(type=="tool_result")`)
			if res.Get("role").Str != "user" || result.Get("tool_use_id").Str != "toolu_01Weather" || !strings.Contains(result.Get("content").Raw, "21C, sunny") {
				t.Fatalf("tool result upstream: %s", res.Raw)
			}
			// A stream's record is written after its last byte reached the
			// client, which may already have sent the next turn: the rows of
			// the two calls can land in either order.
			rows := r.usageRows(2)
			found := false
			for _, row := range rows {
				found = found || (row.In == 30 && row.Out == 15 && row.Model == "gpt-4o")
			}
			if !found {
				t.Fatalf("no usage row for the tool call (30 in, 15 out): %+v", rows)
			}
		})
	}
}

// A 429 on the first account moves the chat request to the second, which
// answers; the first cools down until the time the upstream named.
func TestChatFailover(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			limited := &fakeupstream.Anthropic{Script: fail(429, map[string]string{"Retry-After": "120"}, fakeupstream.AnthropicError("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"))}
			ok := &fakeupstream.Anthropic{Text: "answer from the second account"}
			u1, u2 := upstream(t, limited), upstream(t, ok)
			r := startRelay(t, claudeAPIAccount("first", u1.URL, "k1", 200)+claudeAPIAccount("second", u2.URL, "k2", 100))
			c := r.openaiClient("/openai/v1")
			var text string
			if stream {
				s := c.Chat.Completions.NewStreaming(context.Background(), chatParams("claude-opus-4-8"))
				var acc openai.ChatCompletionAccumulator
				for s.Next() {
					acc.AddChunk(s.Current())
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				text = acc.Choices[0].Message.Content
			} else {
				comp, err := c.Chat.Completions.New(context.Background(), chatParams("claude-opus-4-8"))
				if err != nil {
					t.Fatal(err)
				}
				text = comp.Choices[0].Message.Content
			}
			if text != "answer from the second account" || limited.Count() != 1 || ok.Count() != 1 {
				t.Fatalf("text %q, upstream counts %d/%d", text, limited.Count(), ok.Count())
			}
			cd := cooldownOf(t, r, "first")
			if d := time.Until(cd.Until); d < 100*time.Second || d > 125*time.Second {
				t.Fatalf("cooldown of first: %+v", cd)
			}
			rows := r.usageRows(1)
			if rows[0].Account != "second" || rows[0].Status != 200 || rows[0].Out != 7 || rows[0].Stream != stream {
				t.Fatalf("usage %+v", rows[0])
			}
		})
	}
}

// Errors reach OpenAI clients in OpenAI's shape, which the SDK parses.
func TestChatErrorShapes(t *testing.T) {
	badRequest := &fakeupstream.Anthropic{Script: fail(400, nil, fakeupstream.AnthropicError("invalid_request_error", "max_tokens: 999999 > 64000, which is the maximum allowed"))}
	up := upstream(t, badRequest)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", up.URL, "k", 100))
	empty := startRelay(t, "")

	n2 := chatParams("m")
	n2.N = openai.Int(2)
	tests := []struct {
		name      string
		client    openai.Client
		params    openai.ChatCompletionNewParams
		status    int
		typ       string
		param     string
		msgSubstr string
	}{
		{"converter rejects n=2", r.openaiClient("/openai/v1"), n2, 400, "invalid_request_error", "n", "single choice"},
		{"wrong relay key", r.openaiClient("/openai/v1", option.WithAPIKey("wrong")), chatParams("m"), 401, "authentication_error", "", "relay API key"},
		{"anthropic error passed on", r.openaiClient("/openai/v1"), chatParams("m"), 400, "invalid_request_error", "", "maximum allowed"},
		{"no accounts", empty.openaiClient("/openai/v1"), chatParams("m"), 503, "server_error", "", "no claude accounts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Chat.Completions.New(context.Background(), tt.params)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("want *openai.Error, got %v", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Type != tt.typ || apiErr.Param != tt.param || !strings.Contains(apiErr.Message, tt.msgSubstr) {
				t.Fatalf("status %d type %q param %q message %q", apiErr.StatusCode, apiErr.Type, apiErr.Param, apiErr.Message)
			}
		})
	}
	if badRequest.Count() != 1 {
		t.Fatalf("upstream got %d requests; only the pass-through case should reach it", badRequest.Count())
	}
}

func responsesParams(model string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:        shared.ResponsesModel(model),
		Instructions: openai.String("You are terse."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("say hi")},
		Store:        openai.Bool(false),
	}
}

func TestResponsesEndToEnd(t *testing.T) {
	for _, base := range []string{"/openai/v1", "/v1"} {
		t.Run(base, func(t *testing.T) {
			fake := &fakeupstream.OpenAI{Keys: []string{"sk-openai-account"}}
			up := upstream(t, fake)
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", up.URL+"/v1", "sk-openai-account", 100))
			c := r.openaiClient(base, option.WithHeader("session_id", "thread-1"), option.WithHeader("originator", "codex_exec"))
			resp, err := c.Responses.New(context.Background(), responsesParams("gpt-fake-1"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.OutputText() != "Hello from fake upstream" || resp.Usage.InputTokens != 20 || resp.Usage.OutputTokens != 9 || resp.Status != "completed" {
				t.Fatalf("response %q %+v", resp.OutputText(), resp.Usage)
			}
			got := fake.Requests()[0]
			if got.Path != "/v1/responses" || got.Header.Get("Authorization") != "Bearer sk-openai-account" {
				t.Fatalf("upstream path %s auth %q", got.Path, got.Header.Get("Authorization"))
			}
			if got.Header.Get("Session_id") != "thread-1" || got.Header.Get("Originator") != "codex_exec" {
				t.Fatalf("codex headers not passed on: %v", got.Header)
			}
			if strings.Contains(strings.Join(flatten(got.Header), "\n"), relayKey) {
				t.Fatal("relay key reached the upstream")
			}
			// Responses' input_tokens include the cached ones; the row splits them.
			rows := r.usageRows(1)
			want := usageRow{Account: "oa", Model: "gpt-fake-1", Status: 200, In: 12, Out: 9, CacheRead: 8, KeyHash: usage.HashKey(relayKey)}
			if rows[0] != want {
				t.Fatalf("usage row %+v, want %+v", rows[0], want)
			}
			if b := r.App.Sched.Sessions(); len(b) != 1 || b[0].Key != "openai:thread-1" || b[0].AccountID != "oa" {
				t.Fatalf("session bindings %+v", b)
			}
		})
	}
}

// readResponsesStream drains a Responses stream: the event types in order and
// the text of the output_text deltas.
func readResponsesStream(t *testing.T, c openai.Client, p responses.ResponseNewParams) ([]string, string, responses.Response) {
	t.Helper()
	s := c.Responses.NewStreaming(context.Background(), p)
	var types []string
	var text strings.Builder
	var final responses.Response
	for s.Next() {
		ev := s.Current()
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed", "response.failed":
			final = ev.Response
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return types, text.String(), final
}

func TestResponsesStreamEndToEnd(t *testing.T) {
	fake := &fakeupstream.OpenAI{Text: "streamed responses text", StreamEvents: 4, EventGap: 2 * time.Millisecond}
	up := upstream(t, fake)
	r := startRelay(t, openaiAccount("oa", up.URL+"/v1", "k", 100))
	types, text, final := readResponsesStream(t, r.openaiClient("/v1"), responsesParams("gpt-fake-1"))
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		strings.Repeat("response.output_text.delta ", 4) +
		"response.output_text.done response.content_part.done response.output_item.done response.completed"
	if strings.Join(types, " ") != want || text != "streamed responses text" {
		t.Fatalf("events %v text %q", types, text)
	}
	if final.ID != "resp_fake01" || final.Usage.InputTokens != 20 || final.Usage.InputTokensDetails.CachedTokens != 8 {
		t.Fatalf("completed %+v", final.Usage)
	}
	rows := r.usageRows(1)
	if !rows[0].Stream || rows[0].In != 12 || rows[0].CacheRead != 8 || rows[0].Out != 9 || rows[0].Status != 200 || rows[0].Model != "gpt-fake-1" {
		t.Fatalf("usage %+v", rows[0])
	}
}

// The first account fails before any content in each of the ways the
// Responses API fails; the second answers; the client sees one stream.
func TestResponsesFailover(t *testing.T) {
	created := fakeupstream.ResponseStream("gpt-fake-1", "", 1, 0)[:2] // response.created, response.in_progress
	reset := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	tests := []struct {
		name       string
		stream     bool
		reply      *fakeupstream.Reply
		wantKind   string
		wantUntil  time.Time     // exact, when set
		wantWithin time.Duration // else: until ~ now + this
	}{
		{name: "429 with retry-after", reply: fakeupstream.OpenAIRateLimited(90), wantKind: "rate_limited", wantWithin: 90 * time.Second},
		{name: "429 in a stream request", stream: true, reply: fakeupstream.OpenAIRateLimited(90), wantKind: "rate_limited", wantWithin: 90 * time.Second},
		{name: "codex usage limit", stream: true, reply: fakeupstream.CodexUsageLimit(reset), wantKind: "quota_exhausted", wantUntil: reset},
		{name: "response.failed before content", stream: true, wantKind: "server_error",
			reply: &fakeupstream.Reply{Events: append(append([]fakeupstream.Event{}, created...), fakeupstream.ResponseFailedEvent("gpt-fake-1", "server_error", "The server had an error processing your request."))}},
		{name: "error event before content", stream: true, wantKind: "rate_limited",
			reply: &fakeupstream.Reply{Events: append(append([]fakeupstream.Event{}, created...), fakeupstream.Event{Name: "error", Data: `{"type":"error","sequence_number":2,"code":"rate_limit_exceeded","message":"Rate limit reached. Please try again in 20s.","param":null}`})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := &fakeupstream.OpenAI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply { return tt.reply }}
			good := &fakeupstream.OpenAI{Text: "answer from the second account"}
			u1, u2 := upstream(t, bad), upstream(t, good)
			r := startRelay(t, openaiAccount("first", u1.URL+"/v1", "k1", 200)+openaiAccount("second", u2.URL+"/v1", "k2", 100))
			c := r.openaiClient("/openai/v1")
			if tt.stream {
				types, text, final := readResponsesStream(t, c, responsesParams("gpt-fake-1"))
				if text != "answer from the second account" || final.Status != "completed" {
					t.Fatalf("text %q final %q", text, final.Status)
				}
				n := 0
				for _, ty := range types {
					if ty == "response.created" {
						n++
					}
					if ty == "error" || ty == "response.failed" {
						t.Fatalf("the failed attempt leaked into the stream: %v", types)
					}
				}
				if n != 1 {
					t.Fatalf("%d response.created events: %v", n, types)
				}
			} else {
				resp, err := c.Responses.New(context.Background(), responsesParams("gpt-fake-1"))
				if err != nil {
					t.Fatal(err)
				}
				if resp.OutputText() != "answer from the second account" {
					t.Fatalf("text %q", resp.OutputText())
				}
			}
			cd := cooldownOf(t, r, "first")
			if cd.Kind != tt.wantKind {
				t.Fatalf("cooldown %+v, want kind %s", cd, tt.wantKind)
			}
			if !tt.wantUntil.IsZero() && !cd.Until.Equal(tt.wantUntil) {
				t.Fatalf("cooldown until %v, want %v", cd.Until, tt.wantUntil)
			}
			if tt.wantWithin > 0 {
				if d := time.Until(cd.Until); d < tt.wantWithin-15*time.Second || d > tt.wantWithin+5*time.Second {
					t.Fatalf("cooldown until %v (in %v), want about %v", cd.Until, d, tt.wantWithin)
				}
			}
			rows := r.usageRows(1)
			if rows[0].Account != "second" || rows[0].Status != 200 || rows[0].Out != 9 {
				t.Fatalf("usage %+v", rows[0])
			}
		})
	}
}

// A stream that breaks after content ends with a response.failed event (what
// Codex acts on), and the request is recorded as failed.
func TestResponsesStreamCutAfterContent(t *testing.T) {
	fake := &fakeupstream.OpenAI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Events: fakeupstream.ResponseStream("gpt-fake-1", "partial text here", 3, 0), CutAfter: 6}
	}}
	up := upstream(t, fake)
	r := startRelay(t, openaiAccount("oa", up.URL+"/v1", "k", 100))
	types, text, final := readResponsesStream(t, r.openaiClient("/v1"), responsesParams("gpt-fake-1"))
	if len(types) == 0 || types[len(types)-1] != "response.failed" || text == "" {
		t.Fatalf("events %v text %q", types, text)
	}
	if final.Status != "failed" || final.Error.Code != "server_error" || !strings.Contains(final.Error.Message, "incomplete") {
		t.Fatalf("response.failed %+v", final.Error)
	}
	rows := r.usageRows(1)
	if rows[0].Status != http.StatusBadGateway {
		t.Fatalf("usage %+v", rows[0])
	}
}

// Upstream error bodies reach the client unmodified; relay errors use
// OpenAI's shape. The SDK parses both.
func TestResponsesErrorShapes(t *testing.T) {
	body := fakeupstream.OpenAIError("Unsupported parameter: 'temperature' is not supported with this model.", "invalid_request_error", "temperature", "unsupported_parameter")
	bad := &fakeupstream.OpenAI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 400, Body: body}
	}}
	up := upstream(t, bad)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("a", up.URL+"/v1", "k", 200)+openaiAccount("b", up.URL+"/v1", "k", 100))
	empty := startRelay(t, "")
	tests := []struct {
		name   string
		client openai.Client
		status int
		typ    string
		param  string
		code   string
	}{
		{"upstream 400 passed on", r.openaiClient("/v1"), 400, "invalid_request_error", "temperature", "unsupported_parameter"},
		{"wrong relay key", r.openaiClient("/v1", option.WithAPIKey("nope")), 401, "authentication_error", "", ""},
		{"no openai accounts", empty.openaiClient("/openai/v1"), 503, "server_error", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Responses.New(context.Background(), responsesParams("gpt-fake-1"))
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("want *openai.Error, got %v", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Type != tt.typ || apiErr.Param != tt.param || apiErr.Code != tt.code || apiErr.Message == "" {
				t.Fatalf("status %d type %q param %q code %q message %q", apiErr.StatusCode, apiErr.Type, apiErr.Param, apiErr.Code, apiErr.Message)
			}
		})
	}
	if bad.Count() != 1 {
		t.Fatalf("a client error was retried: %d upstream requests", bad.Count())
	}
}

// One Codex thread (session_id header) stays on its account.
func TestResponsesStickySession(t *testing.T) {
	first := &fakeupstream.OpenAI{Script: func(n int, _ *fakeupstream.Recorded) *fakeupstream.Reply {
		if n == 0 {
			return &fakeupstream.Reply{Status: 500, Body: fakeupstream.OpenAIError("boom", "server_error", "", "")}
		}
		return nil
	}}
	second := &fakeupstream.OpenAI{}
	u1, u2 := upstream(t, first), upstream(t, second)
	r := startRelay(t, openaiAccount("first", u1.URL+"/v1", "k", 200)+openaiAccount("second", u2.URL+"/v1", "k", 100))
	c := r.openaiClient("/v1", option.WithHeader("session_id", "thread-7"))
	for turn := range 2 {
		if _, err := c.Responses.New(context.Background(), responsesParams("gpt-fake-1")); err != nil {
			t.Fatalf("turn %d: %v", turn, err)
		}
		r.App.Sched.Reset("first") // free again: only the binding keeps the thread off it
	}
	if second.Count() != 2 {
		t.Fatalf("second served %d of 2 turns", second.Count())
	}
	// Another thread goes to the free higher-priority account.
	other := r.openaiClient("/v1", option.WithHeader("session_id", "thread-8"))
	if _, err := other.Responses.New(context.Background(), responsesParams("gpt-fake-1")); err != nil || first.Count() != 2 {
		t.Fatalf("new thread: %v, first count %d", err, first.Count())
	}
}

func TestOpenAIModels(t *testing.T) {
	fake := &fakeupstream.OpenAI{}
	up := upstream(t, fake)
	r := startRelay(t, openaiAccount("oa", up.URL+"/v1", "k", 100))
	c := r.openaiClient("/openai/v1")
	page, err := c.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != "gpt-fake-1" {
		t.Fatalf("models %+v", page.Data)
	}
	if got := fake.Requests()[0]; got.Method != "GET" || got.Path != "/v1/models" || got.Header.Get("Authorization") != "Bearer k" {
		t.Fatalf("upstream got %s %s", got.Method, got.Path)
	}
}

// Codex's built-in provider first asks for a WebSocket on GET /v1/responses.
// A 426 makes it fall back to HTTP at once (other statuses cost ~7 s of
// retries), so the relay refuses the upgrade with exactly that.
func TestResponsesPlainGETNeedsUpgrade(t *testing.T) {
	// GET /v1/responses is Codex's WebSocket (codex_ws_test.go); a plain GET
	// is told to upgrade, in OpenAI's shape, at once.
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/v1/responses", "/openai/v1/responses"} {
		req, _ := http.NewRequest(http.MethodGet, r.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+relayKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || gjson.GetBytes(b, "error.message").Str == "" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}
