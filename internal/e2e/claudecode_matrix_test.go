package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// responsesToolScript answers a Responses request with a call of Claude
// Code's Read tool on file, and the request that carries its output with
// text that quotes the file only when the output holds want.
func responsesToolScript(file, callID, want string) func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
	return func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		for _, it := range gjson.GetBytes(rec.Body, "input").Array() {
			if it.Get("type").Str == "function_call_output" && it.Get("call_id").Str == callID {
				answer := "The function_call_output lacked the file's text."
				if strings.Contains(it.Get("output").Raw, want) {
					answer = "The file says " + want + "."
				}
				return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, answer, 3, 0)}
			}
		}
		return &fakeupstream.Reply{Events: fakeupstream.ResponseFunctionCallStream(model, callID, "Read", `{"file_path":`+strconv.Quote(file)+`}`)}
	}
}

// TestClaudeCodeThroughOpenAIAccounts runs the real Claude Code through
// ccrelay on OpenAI accounts (a route sends its Claude model to the OpenAI
// pool as gpt-5-codex): an openai-responses and a codex-oauth account each
// serve a Read tool round trip, converted both ways; Claude Code prints the
// final text, which the upstream wrote only after it saw the file's text in
// the function_call_output.
func TestClaudeCodeThroughOpenAIAccounts(t *testing.T) {
	claudeCodeCLI(t)
	const route = "\n[[routes]]\nmodels = [\"claude-sonnet-4-5\"]\nto = [\"openai:gpt-5-codex\"]\n"
	dir, notes := notesFile(t, "kumquat-42")
	script := responsesToolScript(notes, "call_01ReadNotes", "kumquat-42")

	t.Run("openai-responses", func(t *testing.T) {
		fake := &fakeupstream.OpenAI{Script: script}
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa-1", upstream(t, fake).URL+"/v1", "sk-openai-e2e-account", 100)+route)
		wantClaudeCodeReadOnOpenAI(t, r, fake.Requests, dir)
	})

	t.Run("codex-oauth", func(t *testing.T) {
		o := &fakeupstream.OAuth{}
		tokens := upstream(t, o)
		fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
		fake.Script = script
		api := upstream(t, fake).URL + "/backend-api/codex"
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codexAccount("cx-1", api, tokens.URL, o.Issue(), "ws-1", 100)+route)
		wantClaudeCodeReadOnOpenAI(t, r, fake.Requests, dir)
	})
}

// wantClaudeCodeReadOnOpenAI runs the Read round trip of
// TestClaudeCodeThroughOpenAIAccounts and checks what the OpenAI upstream
// received: the served model, Claude Code's system prompt as instructions,
// its Read tool as a function, and the call's output under its call id.
func wantClaudeCodeReadOnOpenAI(t *testing.T, r *relayUT, requests func() []*fakeupstream.Recorded, dir string) {
	t.Helper()
	res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", "read notes.txt and tell me the password", ccInDir(dir), ccTools("Read"))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	if res.Result != "The file says kumquat-42." || res.NumTurns != 2 {
		t.Fatalf("result %q after %d turns", res.Result, res.NumTurns)
	}
	ups := requests()
	if len(ups) != 2 {
		t.Fatalf("the OpenAI upstream saw %d requests; want 2", len(ups))
	}
	first, second := gjson.ParseBytes(ups[0].Body), gjson.ParseBytes(ups[1].Body)
	if first.Get("model").Str != "gpt-5-codex" || !first.Get("stream").Bool() ||
		!strings.Contains(first.Get("instructions").Str, "You are a Claude agent") ||
		first.Get(`tools.#(name=="Read").type`).Str != "function" {
		t.Fatalf("first upstream request: model %q stream %v tools %s instructions %.80q", first.Get("model").Str,
			first.Get("stream").Bool(), first.Get("tools.#.name").Raw, first.Get("instructions").Str)
	}
	call := second.Get(`input.#(type=="function_call")`)
	if call.Get("call_id").Str != "call_01ReadNotes" || call.Get("name").Str != "Read" {
		t.Fatalf("the second request does not replay the call: %s", second.Get("input").Raw)
	}
	rows := r.usageRows(2)
	for _, row := range rows {
		if row.Status != 200 || !row.Stream {
			t.Fatalf("usage row %+v", row)
		}
	}
}

// TestClaudeCodeReplaysReasoningOnOpenAI: a two-turn Claude Code
// conversation on a strict OpenAI account (it refuses a call sent back
// without the reasoning item issued with it, and any encrypted_content it
// did not issue). The first turn's answer is reasoning + a Read call; the
// request with the tool's output and the next turn's request (a resumed
// session) both carry that reasoning back, from the thinking block Claude
// Code kept, so neither is refused.
func TestClaudeCodeReplaysReasoningOnOpenAI(t *testing.T) {
	claudeCodeCLI(t)
	const callID = "call_01ReasonRead"
	dir, notes := notesFile(t, "kumquat-42")
	fake := &fakeupstream.OpenAI{Strict: true}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		input := gjson.GetBytes(rec.Body, "input").Raw
		switch {
		case strings.Contains(input, "second question"):
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "Second answer.", 2, 0)}
		case strings.Contains(input, `"function_call_output"`):
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "First answer.", 2, 0)}
		}
		return fake.ReasoningToolCall(rec, callID, "Read", `{"file_path":`+strconv.Quote(notes)+`}`)
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa-1", upstream(t, fake).URL+"/v1", "sk-openai-e2e-account", 100)+
		"\n[[routes]]\nmodels = [\"claude-sonnet-4-5\"]\nto = [\"openai:gpt-5-codex\"]\n")
	conv := newClaudeCodeConversation(t)
	for i, turn := range []struct{ prompt, want string }{{"first question", "First answer."}, {"second question", "Second answer."}} {
		res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", turn.prompt, ccConversation(conv), ccInDir(dir), ccTools("Read"), ccStreamJSON())
		if err != nil {
			t.Fatalf("turn %d: %v (the upstream refused: %q)\nstdout:\n%s\nstderr:\n%s", i+1, err, fake.Refused(), res.Stdout, res.Stderr)
		}
		if res.Result != turn.want {
			t.Fatalf("turn %d: result %q, want %q", i+1, res.Result, turn.want)
		}
		if i == 0 && !sawThinkingText(res.Messages, "Planning the call") {
			t.Fatalf("Claude Code's messages lack the reasoning summary as a thinking block:\n%s", res.Stdout)
		}
	}
	ups := fake.Requests()
	if len(ups) != 3 || len(fake.Refused()) > 0 {
		t.Fatalf("the upstream saw %d requests (want 3) and refused %q", len(ups), fake.Refused())
	}
	for i, rec := range ups[1:] {
		if !gjson.GetBytes(rec.Body, `input.#(type=="reasoning").encrypted_content`).Exists() {
			t.Fatalf("request %d lacks the reasoning item: %s", i+2, gjson.GetBytes(rec.Body, "input").Raw)
		}
	}
}

// sawThinkingText says whether Claude Code printed (stream-json) an
// assistant message holding a signed thinking block whose text has want.
func sawThinkingText(msgs []gjson.Result, want string) bool {
	for _, m := range msgs {
		for _, c := range m.Get("message.content").Array() {
			if m.Get("type").Str == "assistant" && c.Get("type").Str == "thinking" &&
				strings.Contains(c.Get("thinking").Str, want) && c.Get("signature").Str != "" {
				return true
			}
		}
	}
	return false
}
