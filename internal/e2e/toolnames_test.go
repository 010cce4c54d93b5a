package e2e

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// Tool names an upstream refuses (docs/matrix.md, "Tool names"): a Claude
// Code MCP tool name of 76 characters, which Anthropic takes and OpenAI
// refuses (at most 64), served by a strict OpenAI account. The upstream
// sees a name it takes, the client sees its own back, whole and streamed,
// and the next turn's history maps the same way.
func TestToolNameOpenAIRefusesServedToAnthropicSDK(t *testing.T) {
	const mcpName = "mcp__plugin_chrome-devtools-mcp_chrome-devtools__performance_analyze_insight"
	openaiName := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			fake := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true, Text: "The trace is fast."}
			fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
				if gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")`).Exists() {
					return nil // the text answer
				}
				// The model calls the tool by the name it was given.
				name := gjson.GetBytes(rec.Body, "tools.0.name").Str
				ev := fakeupstream.ResponseFunctionCallStream("gpt-5", "call_mcp01", name, `{"insightName":"LCPBreakdown"}`)
				if gjson.GetBytes(rec.Body, "stream").Bool() {
					return &fakeupstream.Reply{Events: ev}
				}
				return &fakeupstream.Reply{Body: gjson.Get(ev[len(ev)-1].Data, "response").Raw}
			}
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", upstream(t, fake).URL+"/v1", "sk-openai", 100))
			client := r.anthropicClient()
			p := newParams("gpt-5")
			p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("why is the page slow?"))}
			p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: mcpName, Description: anthropic.String("Explain a performance insight"),
				InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"insightName": map[string]any{"type": "string"}}, Required: []string{"insightName"}}}}}

			msg, _ := claudeTurn(t, client, p, stream)
			var use anthropic.ToolUseBlock
			for _, b := range msg.Content {
				if b.Type == "tool_use" {
					use = b.AsToolUse()
				}
			}
			if msg.StopReason != "tool_use" || use.Name != mcpName || use.ID != "call_mcp01" || string(use.Input) != `{"insightName":"LCPBreakdown"}` {
				t.Fatalf("turn one: stop %s, call %+v (the upstream refused %q)", msg.StopReason, use, fake.Refused())
			}
			sent := gjson.GetBytes(fake.Requests()[0].Body, "tools.0.name").Str
			if !openaiName.MatchString(sent) {
				t.Fatalf("OpenAI got the tool as %q", sent)
			}

			p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "LCP is 1.2 s", false)))
			msg, _ = claudeTurn(t, client, p, stream)
			if msg.StopReason != "end_turn" || msg.Content[len(msg.Content)-1].Text != "The trace is fast." {
				t.Fatalf("turn two: stop %s, content %+v (the upstream refused %q)", msg.StopReason, msg.Content, fake.Refused())
			}
			second := gjson.ParseBytes(fake.Requests()[1].Body)
			if call := second.Get(`input.#(type=="function_call")`); call.Get("name").Str != sent || call.Get("call_id").Str != "call_mcp01" {
				t.Fatalf("turn two's history reached OpenAI as %s", second.Get("input").Raw)
			}
			if len(fake.Refused()) > 0 {
				t.Fatalf("the upstream refused %q", fake.Refused())
			}
		})
	}
}
