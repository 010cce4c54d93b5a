package fakeupstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/tidwall/gjson"
)

func TestCheckStrictMessages(t *testing.T) {
	sig := FakeSignature("I will call the tool.")
	thinking := `{"type":"thinking","thinking":"I will call the tool.","signature":"` + sig + `"}`
	toolUse := `{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}`
	toolResult := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]}`
	on := `,"thinking":{"type":"enabled","budget_tokens":1024}`
	conv := func(assistant string, extra string) string {
		return `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[` + assistant + `]},` + toolResult + `]` + extra + `}`
	}
	tests := []struct {
		name, body, param string // param "" = accepted
		ok                bool
	}{
		{name: "plain request", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"stream":true,"metadata":{"user_id":"u"}}`, ok: true},
		{name: "replayed thinking before the tool call", body: conv(thinking+`,{"type":"redacted_thinking","data":"`+FakeRedactedData(1)+`"},`+toolUse, on), ok: true},
		{name: "tool turn without thinking, thinking off", body: conv(toolUse, ""), ok: true},
		{name: "adaptive thinking with replayed thinking", body: conv(thinking+","+toolUse, `,"thinking":{"type":"adaptive"},"output_config":{"effort":"high"}`), ok: true},
		{name: "unknown top-level field", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high"}`, param: "reasoning_effort"},
		{name: "missing max_tokens", body: `{"model":"claude-x","messages":[{"role":"user","content":"hi"}]}`, param: "max_tokens"},
		{name: "foreign signature", body: conv(`{"type":"thinking","thinking":"I will call the tool.","signature":"gAAAAABforeign"},`+toolUse, on), param: "messages.1.content.0"},
		{name: "signature of other text", body: conv(`{"type":"thinking","thinking":"altered","signature":"`+sig+`"},`+toolUse, on), param: "messages.1.content.0"},
		{name: "foreign signature even with thinking off", body: conv(`{"type":"thinking","thinking":"x","signature":"EqQBforeign"},`+toolUse, ""), param: "messages.1.content.0"},
		{name: "redacted data not issued", body: conv(`{"type":"redacted_thinking","data":"EmwKforeign"},`+toolUse, on), param: "messages.1.content.0"},
		{name: "tool turn without thinking, thinking on", body: conv(`{"type":"text","text":"calling"},`+toolUse, on), param: "messages.1.content.0.type"},
		{name: "budget not below max_tokens", body: `{"model":"claude-x","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]` + on + `}`, param: "max_tokens"},
		{name: "temperature with thinking", body: `{"model":"claude-x","max_tokens":4096,"temperature":0.2,"messages":[{"role":"user","content":"hi"}]` + on + `}`, param: "temperature"},
		{name: "forced tool with thinking", body: `{"model":"claude-x","max_tokens":4096,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"hi"}]` + on + `}`, param: "tool_choice"},
		{name: "empty text block", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, param: "messages.0.content.0.text"},
		{name: "tool id with a dot", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"call.1","name":"f","input":{}}]}]}`, param: "messages.1.content.0.id"},
		{name: "tool call left unanswered", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[` + toolUse + `]},{"role":"user","content":"next"}]}`, param: "messages.2"},
		{name: "tool result for no call", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"x"}]}]}`, param: "messages.2.content.0"},
		{name: "tool name of 128 characters", body: `{"model":"claude-x","max_tokens":5,"tools":[{"name":"` + strings.Repeat("a", 128) + `","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"q"}]}`, ok: true},
		{name: "server tool keeps its name", body: `{"model":"claude-x","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"q"}]}`, ok: true},
		{name: "tool name with a dot", body: `{"model":"claude-x","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"object"}},{"name":"assist.HassTurnOn","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"q"}]}`, param: "tools.1.custom.name"},
		{name: "tool name of 129 characters", body: `{"model":"claude-x","max_tokens":5,"tools":[{"name":"` + strings.Repeat("a", 129) + `","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"q"}]}`, param: "tools.0.custom.name"},
		{name: "unknown block type", body: `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":[{"type":"input_text","text":"x"}]}]}`, param: "messages.0.content.0.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckStrictMessages([]byte(tt.body))
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var se *StrictError
			if !errors.As(err, &se) || se.Param != tt.param {
				t.Fatalf("err = %v, want a refusal of %s", err, tt.param)
			}
		})
	}
}

// TestStrictAnthropicMultiTurn plays a thinking tool conversation with
// anthropic-sdk-go against the strict fake: the first turn streams thinking
// and a tool call, the second replays them (accepted), a third with the
// thinking replaced by a foreign block is refused in Anthropic's shape.
func TestStrictAnthropicMultiTurn(t *testing.T) {
	const thinking = "The user wants the weather; call get_weather."
	fake := &Anthropic{Strict: true, Script: func(n int, r *Recorded) *Reply {
		if n > 0 {
			return nil // the default text answer
		}
		if gjson.GetBytes(r.Body, "stream").Bool() {
			return &Reply{Events: ThinkingToolUseStream("claude-x", thinking, "Checking.", "toolu_01", "get_weather", `{"city":"Paris"}`, 5, 0)}
		}
		return &Reply{Body: ThinkingToolUseJSON("claude-x", thinking, "Checking.", "toolu_01", "get_weather", `{"city":"Paris"}`)}
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(srv.URL), option.WithAPIKey("k"), option.WithMaxRetries(0))
	ctx := context.Background()
	params := anthropic.MessageNewParams{
		Model: "claude-x", MaxTokens: 4096,
		Thinking: anthropic.ThinkingConfigParamOfEnabled(2048),
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))},
	}
	st := c.Messages.NewStreaming(ctx, params)
	var first anthropic.Message
	for st.Next() {
		if err := first.Accumulate(st.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if len(first.Content) != 4 || first.Content[0].Thinking != thinking || first.Content[0].Signature != FakeSignature(thinking) ||
		first.Content[1].Type != "redacted_thinking" || first.Content[3].Name != "get_weather" || string(first.Content[3].Input) != `{"city":"Paris"}` {
		t.Fatalf("first turn: %s", first.RawJSON())
	}

	result := anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_01", "18C", false))
	params.Messages = append(params.Messages, first.ToParam(), result)
	second, err := c.Messages.New(ctx, params)
	if err != nil {
		t.Fatalf("replayed thinking refused: %v", err)
	}
	if len(second.Content) != 1 || second.Content[0].Text == "" {
		t.Errorf("second turn: %s", second.RawJSON())
	}

	// The same conversation with the thinking signed by someone else.
	foreign := first.ToParam()
	foreign.OfAssistant.Content[0].OfThinking.Signature = "gAAAAABforeign-state"
	params.Messages = []anthropic.MessageParam{params.Messages[0], foreign, result}
	_, err = c.Messages.New(ctx, params)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest ||
		!strings.Contains(apiErr.RawJSON(), `"type":"invalid_request_error"`) || !strings.Contains(apiErr.RawJSON(), "Invalid `signature`") {
		t.Fatalf("foreign signature: err = %v", err)
	}
}

func TestStrictAnthropicJSONAnswerAndPassThrough(t *testing.T) {
	fake := &Anthropic{Strict: true, Script: func(int, *Recorded) *Reply {
		return &Reply{Body: ThinkingToolUseJSON("claude-x", "hm", "ok", "toolu_9", "f", `{}`)}
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	post := func(path, body string) (int, string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	content := gjson.Get(body, "content")
	if code != 200 || content.Get("0.signature").Str != FakeSignature("hm") || content.Get("1.data").Str != FakeRedactedData(1) || content.Get("3.id").Str != "toolu_9" {
		t.Fatalf("answer %d: %s", code, body)
	}
	// The answer's content replays as it came.
	next := `{"model":"claude-x","max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":` +
		content.Raw + `},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"done"}]}]}`
	if code, body := post("/v1/messages", next); code != 200 {
		t.Fatalf("replay refused %d: %s", code, body)
	}
	code, body = post("/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"n":2}`)
	if code != 400 || gjson.Get(body, "type").Str != "error" || gjson.Get(body, "error.type").Str != "invalid_request_error" || gjson.Get(body, "error.message").Str != "n: Extra inputs are not permitted" {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	// count_tokens is not a Messages request.
	if code, _ := post("/v1/messages/count_tokens", `{"model":"claude-x","messages":[]}`); code != 200 {
		t.Errorf("count_tokens refused: %d", code)
	}
	// Without Strict the fake takes anything.
	fake.Strict = false
	if code, _ := post("/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"n":2}`); code != 200 {
		t.Errorf("lenient fake refused: %d", code)
	}
}
