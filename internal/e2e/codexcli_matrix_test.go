package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// The real Codex CLI on the accounts of the protocol matrix that speak
// neither Responses nor Messages: a gemini-api account (the strict Gemini
// fake) and an openai-compatible account (a DeepSeek-like Chat upstream).
// Codex uses the custom provider `ccrelay env codex --write-codex-config`
// writes (wire_api "responses"); a clientTap between Codex and the relay
// records what Codex itself sent, to compare with what the upstream got.

// codexToolNames are the names, sorted, under which the tools of Codex's
// Responses request body reach an upstream of another API: function tools
// by name, a namespace's tools as <namespace>___<name>; hosted tools
// (web_search) are not carried.
func codexToolNames(body []byte) []string {
	var names []string
	for _, tool := range gjson.GetBytes(body, "tools").Array() {
		switch tool.Get("type").Str {
		case "function", "custom":
			names = append(names, tool.Get("name").Str)
		case "namespace":
			for _, sub := range tool.Get("tools").Array() {
				names = append(names, tool.Get("name").Str+"___"+sub.Get("name").Str)
			}
		}
	}
	slices.Sort(names)
	return names
}

// sortedNames are the values at path in each of list, sorted.
func sortedNames(list gjson.Result, path string) []string {
	var names []string
	for _, v := range list.Array() {
		names = append(names, v.Get(path).Str)
	}
	slices.Sort(names)
	return names
}

// codexToolRoundTrip starts a relay with account (served by fake), runs
// the real Codex CLI once on model through a clientTap with a prompt that
// makes the fake ask for a shell command, and checks that Codex printed
// answer, and that Codex and the upstream each sent two requests (the turn
// and the tool turn). It returns the relay, Codex's requests and the
// upstream's.
func codexToolRoundTrip(t *testing.T, account string, fake interface {
	Requests() []*fakeupstream.Recorded
}, model, answer string) (r *relayUT, turns, ups []*fakeupstream.Recorded) {
	t.Helper()
	bin := codexCLI(t)
	r = startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+account)
	tap := &clientTap{}
	home := codexHome(t, r, tap.target(t, r.URL))
	stdout, stderr := runCodex(t, bin, home, model, "use the shell tool to echo a greeting")
	if !strings.Contains(stdout, answer) {
		t.Fatalf("codex output lacks the final answer:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	for _, rec := range tap.Requests() {
		if rec.Method == "POST" && strings.HasSuffix(rec.Path, "/v1/responses") {
			turns = append(turns, rec)
		}
	}
	if ups = fake.Requests(); len(turns) != 2 || len(ups) != 2 {
		t.Fatalf("Codex sent %d Responses requests, the upstream saw %d; want 2 each", len(turns), len(ups))
	}
	return r, turns, ups
}

// codexCallOutput is the call_id and output of the function_call_output
// Codex sent for its call of name (the call's call_id), "" when none.
func codexCallOutput(body []byte, name string) (callID, output string) {
	in := gjson.GetBytes(body, "input")
	callID = in.Get(`#(type=="function_call")#|#(name==` + strconv.Quote(name) + `).call_id`).Str
	out := in.Get(`#(type=="function_call_output")#|#(call_id==` + strconv.Quote(callID) + `)`)
	if callID == "" || !out.Exists() {
		return "", ""
	}
	return callID, out.Get("output").String()
}

// TestCodexCLIOnGeminiAccount: a shell tool round trip of the real Codex
// CLI on a gemini-api account (gemini-3-pro-preview, strict fake). Codex's
// tools reach Gemini as functionDeclarations with schemas Gemini takes
// (Codex's carry additionalProperties, which the fake refuses); the fake
// answers with a thought and an exec_command call carrying its
// thoughtSignature; Codex runs the command, and its next request reaches
// Gemini with the call and that signature (the fake refuses a Gemini 3 call
// without it) and the command's output as the functionResponse of the same
// id and name.
func TestCodexCLIOnGeminiAccount(t *testing.T) {
	fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		if strings.Contains(gjson.GetBytes(rec.Body, "contents").Raw, `"functionResponse"`) {
			return geminiReply(rec, "Gemini saw the shell's output.")
		}
		return fakeupstream.GeminiThoughtToolCall(rec, geminiPathModel(rec.Path), "exec_command", `{"cmd":"echo hello-from-gemini-tool"}`)
	}
	r, turns, ups := codexToolRoundTrip(t, geminiAPIAccount("ga", upstream(t, fake).URL, geminiKey, 100), fake, "gemini-3-pro-preview", "Gemini saw the shell's output.")
	for i, rec := range ups {
		if !strings.HasSuffix(rec.Path, "/models/gemini-3-pro-preview:streamGenerateContent") {
			t.Fatalf("request %d went to %s", i+1, rec.Path)
		}
	}

	// Codex's tools, schemas cleaned of what Gemini refuses.
	decls := gjson.GetBytes(ups[0].Body, "tools.0.functionDeclarations")
	if got, want := sortedNames(decls, "name"), codexToolNames(turns[0].Body); len(want) < 2 || !slices.Equal(got, want) {
		t.Fatalf("functionDeclarations %q; Codex's tools %q", got, want)
	}
	if !strings.Contains(gjson.GetBytes(turns[0].Body, "tools").Raw, `"additionalProperties"`) {
		t.Fatalf("Codex's tool schemas no longer carry additionalProperties: the test no longer shows them cleaned")
	}
	exec := decls.Get(`#(name=="exec_command").parameters`)
	if raw := gjson.GetBytes(ups[0].Body, "tools").Raw; strings.Contains(raw, "additionalProperties") || strings.Contains(raw, "$schema") ||
		exec.Get("properties.cmd.type").Str != "string" || exec.Get("required.0").Str != "cmd" {
		t.Fatalf("exec_command's declaration %s", exec.Raw)
	}

	// The tool turn back: the call with its signature, the output under the
	// same id and name as Codex's call.
	callID, output := codexCallOutput(turns[1].Body, "exec_command")
	if !strings.Contains(output, "hello-from-gemini-tool") {
		t.Fatalf("Codex sent no output of its exec_command call: %s", gjson.GetBytes(turns[1].Body, "input").Raw)
	}
	contents := gjson.GetBytes(ups[1].Body, "contents")
	call := contents.Get(`#.parts.#(functionCall.name=="exec_command")|0`)
	resp := contents.Get(`#.parts.#(functionResponse.name=="exec_command")|0`)
	if call.Get("thoughtSignature").Str != fakeupstream.FakeThoughtSignature("exec_command") || call.Get("functionCall.args.cmd").Str != "echo hello-from-gemini-tool" {
		t.Fatalf("the call came back as %s", call.Raw)
	}
	if id := resp.Get("functionResponse.id").Str; id != callID || call.Get("functionCall.id").Str != callID ||
		!strings.Contains(resp.Get("functionResponse.response").Raw, "hello-from-gemini-tool") {
		t.Fatalf("Codex's output of call %s came back as %s (call %s)", callID, resp.Raw, call.Raw)
	}
	for _, row := range r.usageRows(2) {
		if row.Status != 200 || row.Account != "ga" || row.Model != "gemini-3-pro-preview" {
			t.Fatalf("usage row %+v", row)
		}
	}
}

// TestCodexCLIOnCompatAccount: a shell tool round trip of the real Codex
// CLI on an openai-compatible account in DeepSeek's thinking mode, which
// answers with reasoning_content and refuses a tool turn sent back without
// it. Codex's tools reach the vendor as Chat function tools; the vendor
// calls exec_command (call_cx01); Codex runs it, and its next request
// reaches the vendor as the assistant's tool call with its
// reasoning_content and a tool message of the same id holding the output.
func TestCodexCLIOnCompatAccount(t *testing.T) {
	const reasoning = "I will run echo."
	fake := &fakeupstream.ChatCompat{Keys: []string{"sk-ds"}, Reasoning: reasoning}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		evs := []fakeupstream.Event{chatChunk(model, `{"role":"assistant","content":""}`, ""), chatChunk(model, `{"reasoning_content":"`+reasoning+`"}`, "")}
		if gjson.GetBytes(rec.Body, `messages.#(role=="tool")`).Exists() {
			evs = append(evs, chatChunk(model, `{"content":"DeepSeek saw the shell's output."}`, ""), chatChunk(model, `{}`, "stop"))
		} else {
			args := strconv.Quote(`{"cmd":"echo hello-from-compat-tool"}`)
			evs = append(evs, chatChunk(model, `{"tool_calls":[{"index":0,"id":"call_cx01","type":"function","function":{"name":"exec_command","arguments":`+args+`}}]}`, ""),
				chatChunk(model, `{}`, "tool_calls"))
		}
		return &fakeupstream.Reply{Events: append(evs, fakeupstream.Event{Data: "[DONE]"})}
	}
	r, turns, ups := codexToolRoundTrip(t, compatAccount("ds", upstream(t, fake).URL+"/v1", "sk-ds", `["deepseek-*"]`, ""), fake, "deepseek-chat", "DeepSeek saw the shell's output.")
	first := gjson.ParseBytes(ups[0].Body)
	if ups[0].Path != "/v1/chat/completions" || first.Get("model").Str != "deepseek-chat" || first.Get("messages.0.role").Str != "system" {
		t.Fatalf("first request %s %s", ups[0].Path, ups[0].Body)
	}

	// Codex's tools as Chat function tools, schemas as Codex wrote them.
	tools := first.Get("tools")
	if got, want := sortedNames(tools, "function.name"), codexToolNames(turns[0].Body); len(want) < 2 || !slices.Equal(got, want) {
		t.Fatalf("Chat tools %q; Codex's tools %q", got, want)
	}
	exec := tools.Get(`#(function.name=="exec_command")`)
	codexExec := gjson.GetBytes(turns[0].Body, `tools.#(name=="exec_command").parameters`)
	if exec.Get("type").Str != "function" || exec.Get("function.parameters").Raw != codexExec.Raw {
		t.Fatalf("exec_command as a Chat tool %s; Codex's parameters %s", exec.Raw, codexExec.Raw)
	}

	// The tool turn back, with DeepSeek's reasoning.
	callID, output := codexCallOutput(turns[1].Body, "exec_command")
	if callID != "call_cx01" || !strings.Contains(output, "hello-from-compat-tool") {
		t.Fatalf("Codex sent no output of call_cx01: %s", gjson.GetBytes(turns[1].Body, "input").Raw)
	}
	msgs := gjson.GetBytes(ups[1].Body, "messages")
	asst := msgs.Get(`#(role=="assistant")`)
	tool := msgs.Get(`#(role=="tool")`)
	if asst.Get("reasoning_content").Str != reasoning || asst.Get("tool_calls.0.id").Str != "call_cx01" ||
		asst.Get("tool_calls.0.function.name").Str != "exec_command" || asst.Get("tool_calls.0.function.arguments").Str != `{"cmd":"echo hello-from-compat-tool"}` {
		t.Fatalf("the tool turn came back as %s", asst.Raw)
	}
	if tool.Get("tool_call_id").Str != "call_cx01" || !strings.Contains(tool.Get("content").String(), "hello-from-compat-tool") {
		t.Fatalf("the tool message %s", tool.Raw)
	}
	for _, row := range r.usageRows(2) {
		if row.Status != 200 || row.Account != "ds" || row.Model != "deepseek-chat" {
			t.Fatalf("usage row %+v", row)
		}
	}
}
