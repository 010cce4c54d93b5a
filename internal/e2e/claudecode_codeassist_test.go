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
	ca := &fakeupstream.CodeAssist{Strict: true, Script: codeAssistReadScript("Read", args, "kumquat-42")}
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
	var turns []*fakeupstream.Recorded
	for _, rec := range tap.Requests() {
		if rec.Method == "POST" && rec.Path == "/v1/messages" {
			turns = append(turns, rec)
		}
	}
	ups := codeAssistCalls(t, ca, "gemini-3-pro-preview", 2)
	if len(turns) != 2 {
		t.Fatalf("Claude Code sent %d Messages requests; want 2", len(turns))
	}
	for i, body := range ups {
		if !strings.Contains(gjson.GetBytes(body, "systemInstruction").Raw, "Claude Code") {
			t.Fatalf("model call %d: system %.300s", i+1, gjson.GetBytes(body, "systemInstruction").Raw)
		}
	}

	// Claude Code's tools as functionDeclarations with cleaned schemas.
	tools := gjson.GetBytes(turns[0].Body, "tools")
	decls := gjson.GetBytes(ups[0], "tools.#.functionDeclarations|@flatten")
	read := decls.Get(`#(name=="Read")`)
	if got, want := sortedNames(decls, "name"), sortedNames(tools, "name"); !slices.Equal(got, want) || !slices.Contains(want, "Read") ||
		!slices.Equal(sortedKeys(read.Get("parameters.properties")), sortedKeys(tools.Get(`#(name=="Read").input_schema.properties`))) {
		t.Fatalf("functionDeclarations %s; Claude Code's tools %q", decls.Raw, want)
	}
	if !strings.Contains(tools.Raw, `"additionalProperties"`) || strings.Contains(decls.Raw, "additionalProperties") || strings.Contains(decls.Raw, "$schema") {
		t.Fatalf("Claude Code's schemas %s reached Code Assist as %s", tools.Raw, decls.Raw)
	}

	// The tool turn: the call with its signature and the file's text as
	// its functionResponse, both under Claude Code's tool_use id.
	asst := gjson.GetBytes(turns[1].Body, `messages.#(role=="assistant")#|@reverse|0`)
	callID := asst.Get(`content.#(type=="tool_use").id`).Str
	result := gjson.GetBytes(turns[1].Body, `messages.#.content.#(type=="tool_result")|0`)
	if callID == "" || result.Get("tool_use_id").Str != callID {
		t.Fatalf("Claude Code's tool turn: call %s result %s", asst.Raw, result.Raw)
	}
	call, resp := wantSignedToolTurn(t, ups[1], "Read", args, "kumquat-42")
	if call.Get("functionCall.id").Str != callID || resp.Get("functionResponse.id").Str != callID {
		t.Fatalf("the call came back as %s, its result as %s (Claude Code's id %s)", call.Raw, resp.Raw, callID)
	}
	wantStreamUsage(t, r, 2, usage.Record{AccountID: "cag", Platform: "gemini", Model: "claude-sonnet-4-5", ServedModel: "gemini-3-pro-preview", Usage: geminiFakeUsage})
}

// codeAssistReadScript scripts the strict Code Assist fake for a read
// round trip, every answer in Code Assist's envelope: a thought and a
// signed call of tool with args (fakeupstream.GeminiThoughtToolCall), and,
// once the request carries the call's functionResponse, the final text
// (saysSecret).
func codeAssistReadScript(tool, args, secret string) func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
	return func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		if _, resp := geminiCLICall([]byte(gjson.GetBytes(rec.Body, "request").Raw), tool); resp.Exists() {
			return fakeupstream.CodeAssistReply(&fakeupstream.Reply{Events: fakeupstream.GeminiStream(model, saysSecret(secret)(resp.Raw), 2, 0)})
		}
		return fakeupstream.CodeAssistReply(fakeupstream.GeminiThoughtToolCall(rec, model, tool, args))
	}
}

// codeAssistCalls checks that ca got n model calls, each a streamed call
// (streamGenerateContent?alt=sse) with an OAuth access token and the
// envelope naming model and the discovered project, and returns the
// request inside each envelope.
func codeAssistCalls(t *testing.T, ca *fakeupstream.CodeAssist, model string, n int) [][]byte {
	t.Helper()
	var reqs [][]byte
	for _, rec := range ca.Requests() {
		if !strings.HasPrefix(rec.Path, "/v1internal:") || !strings.HasSuffix(rec.Path, "GenerateContent") {
			continue // project discovery
		}
		env := gjson.ParseBytes(rec.Body)
		if rec.Path != "/v1internal:streamGenerateContent" || rec.RawQuery != "alt=sse" || !strings.HasPrefix(rec.Header.Get("Authorization"), "Bearer ya29.") ||
			env.Get("model").Str != model || env.Get("project").Str != fakeupstream.DefaultCodeAssistProject || !env.Get("request").IsObject() {
			t.Fatalf("model call %d: %s?%s auth %q envelope model %q project %q", len(reqs)+1, rec.Path, rec.RawQuery,
				rec.Header.Get("Authorization"), env.Get("model").Str, env.Get("project").Str)
		}
		reqs = append(reqs, []byte(env.Get("request").Raw))
	}
	if len(reqs) != n {
		t.Fatalf("Code Assist saw %d model calls; want %d", len(reqs), n)
	}
	return reqs
}
