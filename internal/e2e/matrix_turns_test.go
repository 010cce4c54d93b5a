package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// Multi-turn tool conversations across the protocol matrix (PRODUCT.md §7),
// with the official SDKs as clients and strict fakes as upstreams: a fake
// refuses a turn that loses the reasoning chain, carries a foreign
// signature or answers a call it never made, so a passing test is a chain
// that held end to end.

const shellArgs = `{"cmd":"echo hello"}`

// reasoningSummary is the summary the strict OpenAI fakes' ReasoningToolCall
// thinks aloud before calling name.
func reasoningSummary(name string) string {
	return "**Planning the call**\n\nI will call " + name + "."
}

func shellTool() anthropic.ToolUnionParam {
	return anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "run_shell",
		Description: anthropic.String("Run a shell command"),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"cmd": map[string]any{"type": "string"}}, Required: []string{"cmd"}},
	}}
}

// thinkingToolParams is a Claude Code turn: thinking on, one tool, msgs.
func thinkingToolParams(model string, msgs ...anthropic.MessageParam) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 8192,
		System:    []anthropic.TextBlockParam{{Text: "You are Claude Code."}},
		Thinking:  anthropic.ThinkingConfigParamOfEnabled(2048),
		Tools:     []anthropic.ToolUnionParam{shellTool()},
		Messages:  msgs,
	}
}

// reasoningThenText scripts a strict OpenAI fake: a reasoning item and a
// call of run_shell (callID) to a turn without that call's output, else the
// default text answer.
func reasoningThenText(call func(*fakeupstream.Recorded, string, string, string) *fakeupstream.Reply, callID string) func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
	return func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		if gjson.GetBytes(rec.Body, `input.#(call_id=="`+callID+`")#|#(type=="function_call_output")`).Exists() {
			return nil
		}
		return call(rec, callID, "run_shell", shellArgs)
	}
}

// claudeTurn sends p as Claude Code does, streamed or not, and returns the
// message and (streamed) the event and delta types seen.
func claudeTurn(t *testing.T, c anthropic.Client, p anthropic.MessageNewParams, stream bool, opts ...option.RequestOption) (anthropic.Message, []string) {
	t.Helper()
	if !stream {
		msg, err := c.Messages.New(context.Background(), p, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return *msg, nil
	}
	s := c.Messages.NewStreaming(context.Background(), p, opts...)
	var acc anthropic.Message
	var types []string
	for s.Next() {
		ev := s.Current()
		typ := ev.Type
		if ev.Type == "content_block_delta" {
			typ = ev.Delta.Type
		}
		types = append(types, typ)
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return acc, types
}

// wantWrappedThinking checks a thinking block handed to an Anthropic client
// from origin's reasoning: the text, and a signature the relay wrapped
// around origin's state. It returns that state.
func wantWrappedThinking(t *testing.T, b anthropic.ContentBlockUnion, origin, text string) string {
	t.Helper()
	sig, txt, ok := convert.UnwrapSignature(b.Signature)
	if b.Type != "thinking" || b.Thinking != text || !ok || sig.Origin != origin || txt != text || sig.Value == "" {
		t.Fatalf("thinking block %s (unwrapped %+v %q %v)", b.RawJSON(), sig, txt, ok)
	}
	return sig.Value
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// claudeCodeToolConversation runs Claude Code's two turns (thinking + tool
// call, then the tool's result) on a relay whose OpenAI fake is fake (the
// strict OpenAI or ChatGPT one, scripted by reasoningThenText for
// call_fake01), and checks both sides of the wire.
func claudeCodeToolConversation(t *testing.T, r *relayUT, fake interface {
	Requests() []*fakeupstream.Recorded
	Refused() []string
}, stream bool) {
	t.Helper()
	client := r.anthropicClient()
	ask := anthropic.NewUserMessage(anthropic.NewTextBlock("what does echo hello print?"))
	msg, types := claudeTurn(t, client, thinkingToolParams("gpt-5", ask), stream)
	if msg.StopReason != "tool_use" || msg.Model != "gpt-5" || len(msg.Content) != 2 {
		t.Fatalf("turn 1: %s", msg.RawJSON())
	}
	enc := wantWrappedThinking(t, msg.Content[0], convert.OriginOpenAI, reasoningSummary("run_shell"))
	if tu := msg.Content[1]; tu.Type != "tool_use" || tu.ID != "call_fake01" || tu.Name != "run_shell" || string(tu.Input) != shellArgs {
		t.Fatalf("turn 1 tool_use %s", tu.RawJSON())
	}
	if msg.Usage.InputTokens != 12 || msg.Usage.CacheReadInputTokens != 8 || msg.Usage.OutputTokens != 9 {
		t.Fatalf("turn 1 usage %+v", msg.Usage)
	}
	if stream && (!contains(types, "input_json_delta") || !contains(types, "thinking_delta") || !contains(types, "signature_delta")) {
		t.Fatalf("turn 1 stream events %v", types)
	}
	first := fake.Requests()[len(fake.Requests())-1]
	if b := gjson.ParseBytes(first.Body); b.Get("model").Str != "gpt-5" || b.Get("reasoning.effort").Str == "" ||
		!strings.Contains(b.Get("include").Raw, "reasoning.encrypted_content") {
		t.Fatalf("turn 1 upstream body %s", first.Body)
	}

	// Turn 2: the assistant turn as the client holds it, and the result.
	result := anthropic.NewUserMessage(anthropic.NewToolResultBlock("call_fake01", "hello", false))
	msg2, _ := claudeTurn(t, client, thinkingToolParams("gpt-5", ask, msg.ToParam(), result), stream)
	if msg2.StopReason != "end_turn" || len(msg2.Content) != 1 || msg2.Content[0].Text != "The command printed hello." {
		t.Fatalf("turn 2: %s (fake refused %q)", msg2.RawJSON(), fake.Refused())
	}
	second := gjson.ParseBytes(fake.Requests()[len(fake.Requests())-1].Body)
	rs := second.Get(`input.#(type=="reasoning")`)
	call := second.Get(`input.#(type=="function_call")`)
	out := second.Get(`input.#(type=="function_call_output")`)
	if rs.Get("encrypted_content").Str != enc || call.Get("call_id").Str != "call_fake01" || call.Get("arguments").Str != shellArgs ||
		out.Get("call_id").Str != "call_fake01" || !strings.Contains(out.Get("output").Raw, "hello") {
		t.Fatalf("turn 2 upstream input %s", second.Get("input").Raw)
	}
	if len(fake.Refused()) != 0 {
		t.Fatalf("the strict fake refused %q", fake.Refused())
	}
}

// 1. Claude Code's dialect on an openai-responses account, two turns with
// thinking and a tool: the reasoning item's encrypted_content goes to the
// client wrapped in the thinking block's signature and comes back to
// OpenAI as the reasoning item the strict fake requires with its call.
func TestMatrixClaudeCodeToolTurnsOnOpenAI(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			fake := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true, Text: "The command printed hello."}
			fake.Script = reasoningThenText(fake.ReasoningToolCall, "call_fake01")
			up := upstream(t, fake)
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", up.URL+"/v1", "sk-openai", 100))
			claudeCodeToolConversation(t, r, fake, stream)
			for _, u := range waitUsage(t, r, 2) {
				if u.AccountID != "oa" || u.Platform != "openai" || u.Model != "gpt-5" || u.Status != 200 || u.Stream != stream {
					t.Fatalf("usage %+v", u)
				}
			}
		})
	}
}

// 2. The same conversation on a codex-oauth account: the ChatGPT backend
// only streams, so a non-stream client gets the stream aggregated.
func TestMatrixClaudeCodeToolTurnsOnCodexOAuth(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			o := &fakeupstream.OAuth{}
			tokens := upstream(t, o)
			fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
			fake.Strict, fake.Text = true, "The command printed hello."
			fake.Script = reasoningThenText(fake.ReasoningToolCall, "call_fake01")
			api := upstream(t, fake).URL + "/backend-api/codex"
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codexAccount("cx", api, tokens.URL, o.Issue(), "ws-1", 100))
			claudeCodeToolConversation(t, r, fake, stream)
			for _, rec := range fake.Requests() {
				b := gjson.ParseBytes(rec.Body)
				if rec.Path != "/backend-api/codex/responses" || b.Get("store").Type != gjson.False || !b.Get("stream").Bool() || b.Get("max_output_tokens").Exists() {
					t.Fatalf("backend request %s %s", rec.Path, rec.Body)
				}
			}
			for _, u := range waitUsage(t, r, 2) {
				if u.AccountID != "cx" || u.Platform != "openai" || u.Model != "gpt-5" || u.Status != 200 || u.OutputTokens != 9 || u.CacheReadTokens != 8 {
					t.Fatalf("usage %+v", u)
				}
			}
		})
	}
}

const (
	applyPatch = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
	// claudeThinking is what the strict Anthropic fake thinks (and signs)
	// before it calls a tool.
	claudeThinking = "The user wants a file; apply_patch adds it."
)

// codexTools are Codex's: the freeform apply_patch (a grammar) and a
// function tool.
func codexTools() []responses.ToolUnionParam {
	return []responses.ToolUnionParam{
		{OfCustom: &responses.CustomToolParam{
			Name:        "apply_patch",
			Description: openai.String("Use the `apply_patch` tool to edit files."),
			Format:      shared.CustomToolInputFormatParamOfGrammar("start: begin_patch hunk+ end_patch", "lark"),
		}},
		{OfFunction: &responses.FunctionToolParam{
			Name:       "shell",
			Parameters: map[string]any{"type": "object", "properties": map[string]any{"command": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}},
			Strict:     openai.Bool(false),
		}},
	}
}

// codexParams is a Codex turn on model with input.
func codexParams(model string, input responses.ResponseInputParam) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:             shared.ResponsesModel(model),
		Instructions:      openai.String("You are Codex."),
		Input:             responses.ResponseNewParamsInputUnion{OfInputItemList: input},
		Tools:             codexTools(),
		Include:           []responses.ResponseIncludable{responses.ResponseIncludableReasoningEncryptedContent},
		Reasoning:         shared.ReasoningParam{Effort: shared.ReasoningEffortMedium, Summary: shared.ReasoningSummaryAuto},
		Store:             openai.Bool(false),
		ParallelToolCalls: openai.Bool(false),
		PromptCacheKey:    openai.String("codex-thread-1"),
	}
}

// codexTurn sends p as Codex does, streamed or not, and returns the
// response (streamed: response.completed's) and the stream's event types.
func codexTurn(t *testing.T, c openai.Client, p responses.ResponseNewParams, stream bool) (*responses.Response, []string) {
	t.Helper()
	if !stream {
		resp, err := c.Responses.New(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return resp, nil
	}
	types, _, final := readResponsesStream(t, c, p)
	return &final, types
}

// replay is the input item a stateless client sends back for an output
// item: the item as it came.
func replay(raw string) responses.ResponseInputItemUnionParam {
	return param.Override[responses.ResponseInputItemUnionParam](json.RawMessage(raw))
}

// thinkingApplyPatch scripts the strict Anthropic fake: thinking, a
// redacted block, text and an apply_patch call (its input as EncodeMessages
// asks Claude for it) to a turn without a tool_result, else the default
// text.
func thinkingApplyPatch(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
	if strings.Contains(string(rec.Body), `"tool_result"`) {
		return nil
	}
	model := gjson.GetBytes(rec.Body, "model").Str
	input, _ := json.Marshal(map[string]string{"input": applyPatch})
	if gjson.GetBytes(rec.Body, "stream").Bool() {
		return &fakeupstream.Reply{Events: fakeupstream.ThinkingToolUseStream(model, claudeThinking, "Adding the file.", "toolu_01A", "apply_patch", string(input), 16, 0)}
	}
	return &fakeupstream.Reply{Body: fakeupstream.ThinkingToolUseJSON(model, claudeThinking, "Adding the file.", "toolu_01A", "apply_patch", string(input))}
}

// 3. Codex's dialect on a Claude account: thinking and Codex's freeform
// apply_patch. Claude's signed and redacted thinking reach Codex as
// reasoning items (encrypted_content wrapped), the call as a
// custom_tool_call with the raw patch; Codex's next turn sends them back
// and the strict Anthropic fake gets its own signature on its own text,
// the tool_use and the tool_result.
func TestMatrixCodexToolTurnsOnClaude(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true, Script: thinkingApplyPatch}
			up := upstream(t, fake)
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", up.URL, "sk-ant", 100))
			c := r.openaiClient("/v1")
			ask := responses.ResponseInputItemParamOfMessage("add hello.txt", responses.EasyInputMessageRoleUser)
			resp, types := codexTurn(t, c, codexParams("claude-sonnet-4-5", responses.ResponseInputParam{ask}), stream)
			var kinds []string
			for _, it := range resp.Output {
				kinds = append(kinds, it.Type)
			}
			if resp.Status != "completed" || strings.Join(kinds, " ") != "reasoning reasoning message custom_tool_call" {
				t.Fatalf("turn 1 (%v): %s", kinds, resp.RawJSON())
			}
			sig, text, ok := convert.UnwrapSignature(resp.Output[0].EncryptedContent)
			if !ok || sig.Origin != convert.OriginAnthropic || sig.Value != fakeupstream.FakeSignature(claudeThinking) || text != claudeThinking {
				t.Fatalf("reasoning item %s", resp.Output[0].RawJSON())
			}
			call := resp.Output[3]
			if call.Name != "apply_patch" || call.Input != applyPatch || call.CallID != "toolu_01A" {
				t.Fatalf("custom_tool_call %s", call.RawJSON())
			}
			if resp.Usage.InputTokens != 40 || resp.Usage.OutputTokens != 25 {
				t.Fatalf("usage %+v", resp.Usage)
			}
			if stream && !contains(types, "response.custom_tool_call_input.delta") {
				t.Fatalf("stream events %v", types)
			}
			up1 := gjson.ParseBytes(fake.Requests()[0].Body)
			if up1.Get("thinking.type").Str != "enabled" || up1.Get(`tools.#(name=="apply_patch").input_schema.properties.input.type`).Str != "string" {
				t.Fatalf("turn 1 upstream %s", fake.Requests()[0].Body)
			}

			// Turn 2: Codex sends the output back with the patch's result.
			input := responses.ResponseInputParam{ask}
			for _, it := range resp.Output {
				input = append(input, replay(it.RawJSON()))
			}
			input = append(input, replay(`{"type":"custom_tool_call_output","call_id":"toolu_01A","output":"Success. Updated the following files:\nA hello.txt\n"}`))
			resp2, _ := codexTurn(t, c, codexParams("claude-sonnet-4-5", input), stream)
			if resp2.Status != "completed" || resp2.OutputText() != "Hello from fake upstream" {
				t.Fatalf("turn 2: %s", resp2.RawJSON())
			}
			got := fake.Requests()[1]
			b := gjson.ParseBytes(got.Body)
			as := b.Get("messages.1.content")
			if b.Get("thinking.type").Str != "enabled" || as.Get("0.type").Str != "thinking" || as.Get("0.signature").Str != fakeupstream.FakeSignature(claudeThinking) ||
				as.Get("1.type").Str != "redacted_thinking" || as.Get(`#(type=="tool_use").id`).Str != "toolu_01A" ||
				as.Get(`#(type=="tool_use").input.input`).Str != applyPatch ||
				b.Get(`messages.2.content.#(type=="tool_result").tool_use_id`).Str != "toolu_01A" {
				t.Fatalf("turn 2 upstream body %s", got.Body)
			}
			for _, u := range waitUsage(t, r, 2) {
				if u.AccountID != "ca" || u.Platform != "claude" || u.Model != "claude-sonnet-4-5" || u.Status != 200 {
					t.Fatalf("usage %+v", u)
				}
			}
		})
	}
}

// A client that switches models mid-conversation (Claude Code's /model,
// Codex's /model) moves between pools without a route: the turn that comes
// back to the client's own API passes through, and the reasoning state the
// relay wrapped for the converted turns must not reach the provider (the
// strict fakes refuse state they did not issue).
func TestMatrixModelSwitchBackToOwnAPI(t *testing.T) {
	t.Run("claude code: gpt-5 then claude", func(t *testing.T) {
		ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true}
		oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true}
		oa.Script = reasoningThenText(oa.ReasoningToolCall, "call_fake01")
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
			openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100))
		client := r.anthropicClient()
		ask := anthropic.NewUserMessage(anthropic.NewTextBlock("what does echo hello print?"))
		m1, _ := claudeTurn(t, client, thinkingToolParams("gpt-5", ask), false)
		wantWrappedThinking(t, m1.Content[0], convert.OriginOpenAI, reasoningSummary("run_shell"))
		// The tool turn OpenAI made is the final one: without its thinking
		// (which Anthropic cannot read) the turn goes without thinking.
		result := anthropic.NewUserMessage(anthropic.NewToolResultBlock("call_fake01", "hello", false))
		m2, _ := claudeTurn(t, client, thinkingToolParams("claude-sonnet-4-5", ask, m1.ToParam(), result), true)
		if m2.StopReason != "end_turn" || m2.Content[0].Text != "Hello from fake upstream" {
			t.Fatalf("turn 2: %s", m2.RawJSON())
		}
		// The passthrough goes as the client sent it; Anthropic refuses the
		// wrapped state, and the relay sends it again without it.
		reqs := ant.Requests()
		if len(reqs) != 2 || !strings.Contains(string(reqs[0].Body), "ccr1.") {
			t.Fatalf("Anthropic saw %d requests; want the client's, refused, then the scrubbed one", len(reqs))
		}
		b := gjson.ParseBytes(reqs[1].Body)
		if strings.Contains(b.Raw, "ccr1.") || b.Get("thinking").Exists() || b.Get("messages.1.content.0.type").Str != "tool_use" ||
			b.Get("system.0.text").Str != "You are Claude Code." {
			t.Fatalf("turn 2 reached Anthropic as %s", b.Raw)
		}
	})
	t.Run("codex: claude then gpt-5", func(t *testing.T) {
		ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true, Script: thinkingApplyPatch}
		oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true}
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
			openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100))
		c := r.openaiClient("/v1")
		ask := responses.ResponseInputItemParamOfMessage("add hello.txt", responses.EasyInputMessageRoleUser)
		resp, _ := codexTurn(t, c, codexParams("claude-sonnet-4-5", responses.ResponseInputParam{ask}), false)
		input := responses.ResponseInputParam{ask}
		for _, it := range resp.Output {
			input = append(input, replay(it.RawJSON()))
		}
		input = append(input, replay(`{"type":"custom_tool_call_output","call_id":"toolu_01A","output":"Done"}`))
		resp2, _ := codexTurn(t, c, codexParams("gpt-5", input), true)
		// Refused once for the wrapped state, then served scrubbed.
		if resp2.Status != "completed" || resp2.OutputText() != "Hello from fake upstream" || len(oa.Refused()) != 1 || len(oa.Requests()) != 2 {
			t.Fatalf("turn 2: %s (refused %q)", resp2.RawJSON(), oa.Refused())
		}
		b := gjson.ParseBytes(oa.Requests()[1].Body)
		if strings.Contains(b.Raw, "ccr1.") || b.Get(`input.#(type=="reasoning")`).Exists() || b.Get(`input.#(type=="custom_tool_call").call_id`).Str != "toolu_01A" {
			t.Fatalf("turn 2 reached OpenAI as %s", b.Raw)
		}
	})
}

// functionCallReply answers a Responses request with one run_shell call
// (no reasoning), as a stream or JSON as the request asked.
func functionCallReply(rec *fakeupstream.Recorded) *fakeupstream.Reply {
	ev := fakeupstream.ResponseFunctionCallStream("gpt-5", "call_fake01", "run_shell", shellArgs)
	if gjson.GetBytes(rec.Body, "stream").Bool() {
		return &fakeupstream.Reply{Events: ev}
	}
	return &fakeupstream.Reply{Body: gjson.Get(ev[len(ev)-1].Data, "response").Raw}
}

// 6. Chat Completions with gpt-5 on an openai-responses account: a tool
// round trip, streamed with include_usage and not.
func TestMatrixChatToolTurnsOnOpenAI(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			fake := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true, Text: "The command printed hello."}
			fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
				if gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")`).Exists() {
					return nil
				}
				return functionCallReply(rec)
			}
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", upstream(t, fake).URL+"/v1", "sk-openai", 100))
			c := r.openaiClient("/openai/v1")
			params := func(msgs ...openai.ChatCompletionMessageParamUnion) openai.ChatCompletionNewParams {
				p := openai.ChatCompletionNewParams{Model: "gpt-5", Messages: msgs, Tools: []openai.ChatCompletionToolUnionParam{
					openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "run_shell",
						Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"cmd": map[string]any{"type": "string"}}}}),
				}}
				if stream {
					p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				}
				return p
			}
			turn := func(p openai.ChatCompletionNewParams) openai.ChatCompletion {
				t.Helper()
				if !stream {
					comp, err := c.Chat.Completions.New(context.Background(), p)
					if err != nil {
						t.Fatal(err)
					}
					return *comp
				}
				s := c.Chat.Completions.NewStreaming(context.Background(), p)
				var acc openai.ChatCompletionAccumulator
				for s.Next() {
					acc.AddChunk(s.Current())
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				return acc.ChatCompletion
			}
			ask := openai.UserMessage("what does echo hello print?")
			c1 := turn(params(openai.SystemMessage("You are terse."), ask))
			if len(c1.Choices) != 1 || c1.Choices[0].FinishReason != "tool_calls" || len(c1.Choices[0].Message.ToolCalls) != 1 || c1.Model != "gpt-5" {
				t.Fatalf("turn 1: %+v", c1)
			}
			tc := c1.Choices[0].Message.ToolCalls[0]
			if tc.ID != "call_fake01" || tc.Function.Name != "run_shell" || tc.Function.Arguments != shellArgs {
				t.Fatalf("tool call %+v", tc)
			}
			if c1.Usage.PromptTokens != 20 || c1.Usage.PromptTokensDetails.CachedTokens != 8 || c1.Usage.CompletionTokens != 9 {
				t.Fatalf("usage %+v", c1.Usage)
			}
			up1 := gjson.ParseBytes(fake.Requests()[0].Body)
			if up1.Get("model").Str != "gpt-5" || !strings.Contains(up1.Get("instructions").Str+up1.Get("input").Raw, "You are terse.") ||
				up1.Get(`tools.0.name`).Str != "run_shell" || up1.Get("stream").Bool() != stream {
				t.Fatalf("turn 1 upstream %s", up1.Raw)
			}
			c2 := turn(params(openai.SystemMessage("You are terse."), ask, c1.Choices[0].Message.ToParam(), openai.ToolMessage("hello", "call_fake01")))
			if len(c2.Choices) != 1 || c2.Choices[0].FinishReason != "stop" || c2.Choices[0].Message.Content != "The command printed hello." {
				t.Fatalf("turn 2: %+v (refused %q)", c2, fake.Refused())
			}
			up2 := gjson.ParseBytes(fake.Requests()[1].Body)
			if up2.Get(`input.#(type=="function_call").call_id`).Str != "call_fake01" || up2.Get(`input.#(type=="function_call_output").call_id`).Str != "call_fake01" {
				t.Fatalf("turn 2 upstream %s", up2.Raw)
			}
			for _, u := range waitUsage(t, r, 2) {
				if u.AccountID != "oa" || u.Platform != "openai" || u.Model != "gpt-5" || u.OutputTokens != 9 || u.CacheReadTokens != 8 {
					t.Fatalf("usage %+v", u)
				}
			}
		})
	}
}

// 7. A client's mistake on a converted route is a 400 in the client's
// shape and cools no account: refused by the conversion before any account
// (thinking with temperature 0.5 for Claude, from a Responses client), or
// by the upstream (a tool result for a call that was never made, from a
// Messages client on OpenAI).
func TestMatrixClientMistakeOnConvertedRoute(t *testing.T) {
	ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true}
	oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
		openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100))

	p := codexParams("claude-sonnet-4-5", responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("hi", responses.EasyInputMessageRoleUser)})
	p.Temperature = openai.Float(0.5)
	oc := r.openaiClient("/v1")
	_, err := oc.Responses.New(context.Background(), p)
	var oaErr *openai.Error
	if !errors.As(err, &oaErr) || oaErr.StatusCode != 400 || oaErr.Param != "temperature" || !strings.Contains(oaErr.Message, "thinking") {
		t.Fatalf("thinking with temperature 0.5: %v %s", err, oaErr.RawJSON())
	}
	if ant.Count() != 0 {
		t.Fatal("the refused request reached Anthropic")
	}

	orphan := anthropic.NewUserMessage(anthropic.NewToolResultBlock("call_never", "hello", false))
	ac := r.anthropicClient()
	_, err = ac.Messages.New(context.Background(), thinkingToolParams("gpt-5", anthropic.NewUserMessage(anthropic.NewTextBlock("hi")), orphan))
	var antErr *anthropic.Error
	if !errors.As(err, &antErr) || antErr.StatusCode != 400 || gjson.Get(antErr.RawJSON(), "error.type").Str != "invalid_request_error" ||
		!strings.Contains(gjson.Get(antErr.RawJSON(), "error.message").Str, "call_never") {
		t.Fatalf("an orphan tool result: %v", err)
	}
	if oa.Count() != 1 {
		t.Fatalf("OpenAI got %d requests", oa.Count())
	}
	for _, id := range []string{"ca", "oa"} {
		if cd := cooldownOf(t, r, id); cd.Kind != "" {
			t.Fatalf("a client's mistake cooled %s: %+v", id, cd)
		}
	}
}
