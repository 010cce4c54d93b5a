package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// Conversations that move between pools by [[routes]] fallback.

// claudeRateLimited is the 429 Anthropic sends for a rate limit, asking for
// a retry after one second.
func claudeRateLimited() *fakeupstream.Reply {
	return &fakeupstream.Reply{Status: 429, Header: map[string]string{"Retry-After": "1"},
		Body: `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`}
}

// thinkingShellCall scripts the strict Anthropic fake for Claude Code: a
// signed thinking block, a redacted one, text and a run_shell call to a
// turn without a tool_result, else the default text.
func thinkingShellCall(rec *fakeupstream.Recorded) *fakeupstream.Reply {
	if strings.Contains(string(rec.Body), `"tool_result"`) {
		return nil
	}
	model := gjson.GetBytes(rec.Body, "model").Str
	if gjson.GetBytes(rec.Body, "stream").Bool() {
		return &fakeupstream.Reply{Events: fakeupstream.ThinkingToolUseStream(model, claudeThinking, "Running it.", "toolu_01A", "run_shell", shellArgs, 8, 0)}
	}
	return &fakeupstream.Reply{Body: fakeupstream.ThinkingToolUseJSON(model, claudeThinking, "Running it.", "toolu_01A", "run_shell", shellArgs)}
}

// 4. A Claude Code conversation with thinking and tools that moves between
// pools under a route claude -> openai:gpt-5-codex:
//   - turn 1 on Claude (passthrough, thinking signed by Anthropic);
//   - Claude rate-limits turn 2, which falls back to OpenAI before a byte
//     reached the client: the Anthropic thinking is not sent to OpenAI;
//   - turn 3, with Claude available again, stays on OpenAI (the
//     conversation stays on the target that served it while it works) and
//     carries OpenAI's reasoning chain;
//   - OpenAI rate-limits turn 4, which returns to Claude: OpenAI's wrapped
//     reasoning state is not sent to Anthropic (the strict fake refuses a
//     signature it did not issue), Claude's own thinking of turn 1 is.
//
// Usage rows and the request log say which target served each turn, the
// model asked and served, and why a target was passed over.
func TestRouteFallbackConversationAcrossPools(t *testing.T) {
	var claudeDown, openaiDown atomic.Bool
	ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true}
	ant.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		if claudeDown.Load() {
			return claudeRateLimited()
		}
		return thinkingShellCall(rec)
	}
	oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true, Text: "Both commands printed hello."}
	toolTurn := reasoningThenText(oa.ReasoningToolCall, "call_oa1")
	oa.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		if openaiDown.Load() {
			return fakeupstream.OpenAIRateLimited(1)
		}
		return toolTurn(n, rec)
	}
	antURL, oaURL := upstream(t, ant).URL, upstream(t, oa).URL+"/v1"
	r := startRelay(t, fmt.Sprintf("admin_keys = [%q]\napi_keys = [%q]\n", e2eAdminKey, relayKey)+
		claudeAPIAccount("ca", antURL, "sk-ant", 100)+openaiAccount("oa", oaURL, "sk-openai", 100)+
		"[[routes]]\nmodels = [\"claude-*\"]\nto = [\"claude\", \"openai:gpt-5-codex\"]\n")
	client := r.anthropicClient(option.WithHeader("X-Claude-Code-Session-Id", "conv-1"))
	const model = "claude-sonnet-4-5"

	// Turn 1: Claude.
	ask := anthropic.NewUserMessage(anthropic.NewTextBlock("run echo hello twice"))
	msgs := []anthropic.MessageParam{ask}
	m1, _ := claudeTurn(t, client, thinkingToolParams(model, msgs...), false)
	if m1.StopReason != "tool_use" || len(m1.Content) != 4 || m1.Content[0].Signature != fakeupstream.FakeSignature(claudeThinking) || m1.Content[3].ID != "toolu_01A" {
		t.Fatalf("turn 1: %s", m1.RawJSON())
	}
	msgs = append(msgs, m1.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_01A", "hello", false)))

	// Turn 2: Claude answers 429; OpenAI serves, streamed.
	claudeDown.Store(true)
	m2, _ := claudeTurn(t, client, thinkingToolParams(model, msgs...), true)
	if m2.StopReason != "tool_use" || m2.Model != model || len(m2.Content) != 2 || m2.Content[1].ID != "call_oa1" {
		t.Fatalf("turn 2: %s (openai refused %q)", m2.RawJSON(), oa.Refused())
	}
	wantWrappedThinking(t, m2.Content[0], convert.OriginOpenAI, reasoningSummary("run_shell"))
	up2 := oa.Requests()[0].Body
	if gjson.GetBytes(up2, "model").Str != "gpt-5-codex" || strings.Contains(string(up2), "fakesig1") || strings.Contains(string(up2), "fakeredacted1") ||
		gjson.GetBytes(up2, `input.#(type=="reasoning")`).Exists() || gjson.GetBytes(up2, `input.#(type=="function_call_output").call_id`).Str != "toolu_01A" {
		t.Fatalf("turn 2 reached OpenAI as %s", up2)
	}
	if cd := cooldownOf(t, r, "ca"); cd.Kind != "rate_limited" {
		t.Fatalf("claude cooldown %+v", cd)
	}
	msgs = append(msgs, m2.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock("call_oa1", "hello", false)))

	// Turn 3: Claude is back, the conversation stays on OpenAI.
	claudeDown.Store(false)
	if st, raw := adminCall(t, r, "POST", "accounts/ca/reset", "", nil); st != 200 {
		t.Fatalf("reset: %d %s", st, raw)
	}
	claudeCalls := ant.Count()
	m3, _ := claudeTurn(t, client, thinkingToolParams(model, msgs...), false)
	if m3.StopReason != "end_turn" || len(m3.Content) != 1 || m3.Content[0].Text != "Both commands printed hello." {
		t.Fatalf("turn 3: %s (openai refused %q)", m3.RawJSON(), oa.Refused())
	}
	if ant.Count() != claudeCalls {
		t.Fatal("turn 3 left the target that served the conversation")
	}
	if len(oa.Refused()) != 0 {
		t.Fatalf("OpenAI refused %q", oa.Refused())
	}
	msgs = append(msgs, m3.ToParam(), anthropic.NewUserMessage(anthropic.NewTextBlock("thanks; once more?")))

	// Turn 4: OpenAI answers 429; back to Claude, streamed.
	openaiDown.Store(true)
	m4, _ := claudeTurn(t, client, thinkingToolParams(model, msgs...), true)
	if m4.StopReason != "end_turn" || len(m4.Content) == 0 || m4.Content[len(m4.Content)-1].Text != "Hello from fake upstream" {
		t.Fatalf("turn 4: %s", m4.RawJSON())
	}
	up4 := ant.Requests()[ant.Count()-1].Body
	if strings.Contains(string(up4), "ccr1.") || gjson.GetBytes(up4, "messages.1.content.0.signature").Str != fakeupstream.FakeSignature(claudeThinking) {
		t.Fatalf("turn 4 reached Anthropic as %s", up4)
	}

	// What was recorded: platform and the model served, turn by turn.
	rows := waitUsage(t, r, 4)
	want := []struct{ platform, account, served string }{
		{"claude", "ca", ""}, {"openai", "oa", "gpt-5-codex"}, {"openai", "oa", "gpt-5-codex"}, {"claude", "ca", ""},
	}
	for i, u := range rows {
		if u.Platform != want[i].platform || u.AccountID != want[i].account || u.ServedModel != want[i].served || u.Model != model || u.Status != 200 {
			t.Fatalf("usage row %d: %+v", i, u)
		}
	}
	page := waitRequests(t, r, url.Values{"account": {"ca"}}, 3)
	found := false
	for _, row := range page.Requests {
		if row.Account != "oa" || len(row.Attempts) != 2 || row.Attempts[0].Account != "ca" {
			continue
		}
		a0, a1 := row.Attempts[0], row.Attempts[1]
		if row.Platform != "openai" || row.ServedModel != "gpt-5-codex" || a0.Target != "claude" || a0.Verdict != "rate_limited" ||
			a1.Target != "openai:gpt-5-codex" || !strings.HasPrefix(a1.Fallback, "claude: ") || a1.Status != 200 {
			t.Fatalf("turn 2 in the request log: %+v", row)
		}
		found = true
	}
	if !found {
		t.Fatalf("turn 2 not in the request log: %+v", page.Requests)
	}
}

// A stream that fails over between targets after the client got its
// preamble: the first target's stream starts and then fails with an error
// event before any content, the next target (another API, converted)
// serves, and the client's SDK reads one coherent stream.
func TestRouteFallbackMidStreamAcrossAPIs(t *testing.T) {
	t.Run("claude code: claude overloaded after message_start, openai serves", func(t *testing.T) {
		ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			return &fakeupstream.Reply{Events: []fakeupstream.Event{
				{Name: "message_start", Data: `{"type":"message_start","message":{"id":"msg_a","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`},
				{Name: "error", Data: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
			}}
		}}
		oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true, Text: "served by gpt"}
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
			openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100)+
			"[[routes]]\nmodels = [\"claude-*\"]\nto = [\"claude\", \"openai:gpt-5-codex\"]\n")
		msg, types := claudeTurn(t, r.anthropicClient(), newParams("claude-sonnet-4-5"), true)
		if len(msg.Content) != 1 || msg.Content[0].Text != "served by gpt" || msg.StopReason != "end_turn" || strings.Count(strings.Join(types, " "), "message_start") != 1 {
			t.Fatalf("stream %v: %s", types, msg.RawJSON())
		}
		if ant.Count() != 1 || oa.Count() != 1 {
			t.Fatalf("claude %d openai %d requests", ant.Count(), oa.Count())
		}
	})
	t.Run("codex: openai fails after response.created, claude serves", func(t *testing.T) {
		oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			created := fakeupstream.ResponseStream("gpt-5", "x", 1, 0)[0]
			return &fakeupstream.Reply{Events: []fakeupstream.Event{created, fakeupstream.ResponseFailedEvent("gpt-5", "server_error", "The server had an error")}}
		}}
		ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true, Text: "served by claude"}
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
			openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100)+
			"[[routes]]\nmodels = [\"gpt-5\"]\nto = [\"openai\", \"claude:claude-sonnet-4-5\"]\n")
		types, text, final := readResponsesStream(t, r.openaiClient("/v1"), responsesParams("gpt-5"))
		if text != "served by claude" || final.Status != "completed" || strings.Count(strings.Join(types, " "), "response.created") != 1 {
			t.Fatalf("stream %v text %q final %s", types, text, final.RawJSON())
		}
		if ant.Count() != 1 || oa.Count() != 1 {
			t.Fatalf("claude %d openai %d requests", ant.Count(), oa.Count())
		}
	})
}

// Codex's side of a conversation that moves between pools: a route
// gpt-5 -> openai, claude:claude-sonnet-4-5. Turn 1 on OpenAI (reasoning
// with OpenAI's own encrypted_content, a function call); OpenAI fails turn
// 2, which Claude serves: OpenAI's reasoning does not reach Anthropic, and
// since the final tool turn then has no Anthropic thinking, the turn goes
// without thinking (the strict fake refuses it otherwise). Turn 3, OpenAI
// back, stays on Claude.
func TestRouteFallbackCodexConversationAcrossPools(t *testing.T) {
	var openaiDown atomic.Bool
	oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true}
	toolTurn := reasoningThenText(oa.ReasoningToolCall, "call_fake01")
	oa.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		if openaiDown.Load() {
			return &fakeupstream.Reply{Status: 503, Body: fakeupstream.OpenAIError("The engine is currently overloaded.", "server_error", "", "")}
		}
		return toolTurn(n, rec)
	}
	ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true, Text: "served by claude"}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
		openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100)+
		"[[routes]]\nmodels = [\"gpt-5\"]\nto = [\"openai\", \"claude:claude-sonnet-4-5\"]\n")
	c := r.openaiClient("/v1")
	input := responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("what does echo hello print?", responses.EasyInputMessageRoleUser)}
	resp, _ := codexTurn(t, c, codexParams("gpt-5", input), false)
	if len(resp.Output) != 2 || resp.Output[0].Type != "reasoning" || !strings.HasPrefix(resp.Output[0].EncryptedContent, "gAAAAB") || resp.Output[1].CallID != "call_fake01" {
		t.Fatalf("turn 1: %s", resp.RawJSON())
	}
	for _, it := range resp.Output {
		input = append(input, replay(it.RawJSON()))
	}
	input = append(input, replay(`{"type":"function_call_output","call_id":"call_fake01","output":"hello"}`))

	openaiDown.Store(true)
	resp2, _ := codexTurn(t, c, codexParams("gpt-5", input), true)
	if resp2.Status != "completed" || resp2.OutputText() != "served by claude" || resp2.Model != "gpt-5" {
		t.Fatalf("turn 2: %s", resp2.RawJSON())
	}
	b := gjson.ParseBytes(ant.Requests()[0].Body)
	if strings.Contains(b.Raw, "gAAAAB") || b.Get("thinking").Exists() || b.Get("model").Str != "claude-sonnet-4-5" ||
		b.Get(`messages.1.content.#(type=="tool_use").id`).Str != "call_fake01" || b.Get(`messages.2.content.0.tool_use_id`).Str != "call_fake01" {
		t.Fatalf("turn 2 reached Anthropic as %s", b.Raw)
	}

	openaiDown.Store(false)
	r.App.Sched.Reset("oa") // OpenAI is back
	for _, it := range resp2.Output {
		input = append(input, replay(it.RawJSON()))
	}
	input = append(input, responses.ResponseInputItemParamOfMessage("thanks", responses.EasyInputMessageRoleUser))
	openaiCalls := oa.Count()
	resp3, _ := codexTurn(t, c, codexParams("gpt-5", input), false)
	if resp3.OutputText() != "served by claude" || oa.Count() != openaiCalls {
		t.Fatalf("turn 3 left Claude: %s (openai calls %d -> %d)", resp3.RawJSON(), openaiCalls, oa.Count())
	}
	rows := waitUsage(t, r, 3)
	if rows[1].Platform != "claude" || rows[1].ServedModel != "claude-sonnet-4-5" || rows[1].Model != "gpt-5" || rows[2].Platform != "claude" {
		t.Fatalf("usage %+v", rows)
	}
}

// A turn whose first target is the client's own API (passthrough; refused
// for the relay's wrapped state, sent again scrubbed) and whose second is the
// API that made that state: the conversion still gets the state, since it
// decodes the body as the client sent it. Codex on a route gpt-5 ->
// openai, claude: Claude served turn 1 with thinking; turn 2 tries OpenAI
// first (the conversation's binding is gone), which fails, and Claude gets
// its own signed thinking back with the apply_patch call.
func TestRouteFallbackKeepsStateForTheAPIThatMadeIt(t *testing.T) {
	oa := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 503, Body: fakeupstream.OpenAIError("The engine is currently overloaded.", "server_error", "", "")}
	}}
	ant := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true, Script: thinkingApplyPatch}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, ant).URL, "sk-ant", 100)+
		openaiAccount("oa", upstream(t, oa).URL+"/v1", "sk-openai", 100)+
		"[[routes]]\nmodels = [\"gpt-5\"]\nto = [\"openai\", \"claude:claude-sonnet-4-5\"]\n")
	c := r.openaiClient("/v1")
	input := responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("add hello.txt", responses.EasyInputMessageRoleUser)}
	resp, _ := codexTurn(t, c, codexParams("gpt-5", input), false)
	if len(resp.Output) != 4 || resp.Output[3].Type != "custom_tool_call" {
		t.Fatalf("turn 1: %s", resp.RawJSON())
	}
	for _, it := range resp.Output {
		input = append(input, replay(it.RawJSON()))
	}
	input = append(input, replay(`{"type":"custom_tool_call_output","call_id":"toolu_01A","output":"Done"}`))
	r.App.Sched.ForgetSessions("", "")
	r.App.Sched.Reset("oa")
	openaiCalls := oa.Count()
	resp2, _ := codexTurn(t, c, codexParams("gpt-5", input), true)
	if resp2.Status != "completed" || resp2.OutputText() != "Hello from fake upstream" {
		t.Fatalf("turn 2: %s", resp2.RawJSON())
	}
	// OpenAI first: the body as the client sent it (refused for the
	// relay's wrapped state), then scrubbed (overloaded: on to Claude).
	if oa.Count() != openaiCalls+2 {
		t.Fatalf("turn 2 did not try OpenAI first, then scrubbed (%d -> %d)", openaiCalls, oa.Count())
	}
	if sent := oa.Requests()[oa.Count()-1].Body; strings.Contains(string(sent), "ccr1.") || len(oa.Refused()) != 1 {
		t.Fatalf("OpenAI got the wrapped state again: %s (refused %q)", sent, oa.Refused())
	}
	b := gjson.ParseBytes(ant.Requests()[ant.Count()-1].Body)
	if b.Get("thinking.type").Str != "enabled" || b.Get("messages.1.content.0.signature").Str != fakeupstream.FakeSignature(claudeThinking) {
		t.Fatalf("turn 2 reached Anthropic without its thinking: %s", b.Raw)
	}
}
