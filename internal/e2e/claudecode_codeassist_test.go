package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// TestClaudeCodeOnCodeAssistAccount: a Read round trip of the real Claude
// Code on a gemini (Google OAuth, Code Assist) account: a route sends
// claude-sonnet-4-5 there as gemini-3-pro-preview. Claude Code's Messages
// request reaches Code Assist converted and wrapped in its {model,
// project, request} envelope with the account's OAuth token and the
// discovered project; the strict fake checks the inner request as the
// public API does (cleaned schemas, Gemini 3 signatures) and answers, in
// its envelope, a thought and a Read call with its thoughtSignature.
// Claude Code shows the thought as a signed thinking block, runs Read, and
// its tool turn reaches Code Assist with the call, its signature and the
// file's text as the functionResponse, all under Claude Code's tool_use id.
func TestClaudeCodeOnCodeAssistAccount(t *testing.T) {
	claudeCodeCLI(t)
	dir, notes := notesFile(t, "kumquat-42")
	args := `{"file_path":` + strconv.Quote(notes) + `}`
	ca := &fakeupstream.CodeAssist{Strict: true}
	ca.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		if _, resp := geminiCLICall([]byte(gjson.GetBytes(rec.Body, "request").Raw), "Read"); resp.Exists() {
			return fakeupstream.CodeAssistReply(&fakeupstream.Reply{Events: fakeupstream.GeminiStream(model, saysSecret("kumquat-42")(resp.Raw), 2, 0)})
		}
		return fakeupstream.CodeAssistReply(fakeupstream.GeminiThoughtToolCall(rec, model, "Read", args))
	}
	_, account := codeAssistUpstream(t, "cag", ca, 100)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+account+"\n[[routes]]\nmodels = [\"claude-sonnet-4-5\"]\nto = [\"gemini:gemini-3-pro-preview\"]\n")
	tap := &clientTap{}
	res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", readPrompt, ccInDir(dir), ccTools("Read"), ccStreamJSON(), ccTap(tap))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	if res.Result != "The file says kumquat-42." {
		t.Fatalf("result %q after %d turns\nstdout:\n%s", res.Result, res.NumTurns, res.Stdout)
	}
	if !sawThinkingText(res.Messages, "I should call Read.") {
		t.Fatalf("Claude Code's messages lack Gemini's thought as a signed thinking block:\n%s", res.Stdout)
	}
	var turns, ups []*fakeupstream.Recorded
	for _, rec := range tap.Requests() {
		if rec.Method == "POST" && rec.Path == "/v1/messages" {
			turns = append(turns, rec)
		}
	}
	for _, rec := range ca.Requests() {
		if strings.HasPrefix(rec.Path, "/v1internal:") && strings.HasSuffix(rec.Path, "GenerateContent") {
			ups = append(ups, rec)
		}
	}
	if len(turns) != 2 || len(ups) != 2 {
		t.Fatalf("Claude Code sent %d Messages requests, Code Assist saw %d model calls; want 2 each", len(turns), len(ups))
	}
	for i, rec := range ups {
		env := gjson.ParseBytes(rec.Body)
		if rec.Path != "/v1internal:streamGenerateContent" || rec.RawQuery != "alt=sse" || !strings.HasPrefix(rec.Header.Get("Authorization"), "Bearer ya29.") ||
			env.Get("model").Str != "gemini-3-pro-preview" || env.Get("project").Str != fakeupstream.DefaultCodeAssistProject ||
			!strings.Contains(env.Get("request.systemInstruction").Raw, "Claude Code") {
			t.Fatalf("model call %d: %s?%s auth %q envelope model %q project %q system %.200s", i+1, rec.Path, rec.RawQuery,
				rec.Header.Get("Authorization"), env.Get("model").Str, env.Get("project").Str, env.Get("request.systemInstruction").Raw)
		}
	}

	// Claude Code's tools as functionDeclarations with cleaned schemas.
	tools := gjson.GetBytes(turns[0].Body, "tools")
	decls := gjson.GetBytes(ups[0].Body, "request.tools.#.functionDeclarations|@flatten")
	read := decls.Get(`#(name=="Read")`)
	if got, want := sortedNames(decls, "name"), sortedNames(tools, "name"); !slices.Equal(got, want) || !slices.Contains(want, "Read") ||
		!slices.Equal(sortedKeys(read.Get("parameters.properties")), sortedKeys(tools.Get(`#(name=="Read").input_schema.properties`))) {
		t.Fatalf("functionDeclarations %s; Claude Code's tools %q", decls.Raw, want)
	}
	if !strings.Contains(tools.Raw, `"additionalProperties"`) || strings.Contains(decls.Raw, "additionalProperties") || strings.Contains(decls.Raw, "$schema") {
		t.Fatalf("Claude Code's schemas %s reached Code Assist as %s", tools.Raw, decls.Raw)
	}

	// The tool turn: Claude Code's tool_use id, the call with its
	// signature, the file's text as the functionResponse of that id.
	asst := gjson.GetBytes(turns[1].Body, `messages.#(role=="assistant")#|@reverse|0`)
	callID := asst.Get(`content.#(type=="tool_use").id`).Str
	result := gjson.GetBytes(turns[1].Body, `messages.#.content.#(type=="tool_result")|0`)
	if callID == "" || result.Get("tool_use_id").Str != callID {
		t.Fatalf("Claude Code's tool turn: call %s result %s", asst.Raw, result.Raw)
	}
	call, resp := geminiCLICall([]byte(gjson.GetBytes(ups[1].Body, "request").Raw), "Read")
	if call.Get("thoughtSignature").Str != fakeupstream.FakeThoughtSignature("Read") || call.Get("functionCall.id").Str != callID ||
		!jsonEqual(call.Get("functionCall.args").Raw, args) {
		t.Fatalf("the call came back as %s (Claude Code's id %s)", call.Raw, callID)
	}
	if resp.Get("functionResponse.id").Str != callID || !strings.Contains(resp.Get("functionResponse.response").Raw, "kumquat-42") {
		t.Fatalf("the result came back as %s", resp.Raw)
	}
	wantStreamUsage(t, r, 2, usage.Record{AccountID: "cag", Platform: "gemini", Model: "claude-sonnet-4-5", ServedModel: "gemini-3-pro-preview", Usage: geminiFakeUsage})
}
