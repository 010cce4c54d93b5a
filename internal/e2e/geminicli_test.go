package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// readThinking is the thinking anthropicReadScript's call comes with.
const readThinking = "The user wants the file; I will read it."

// anthropicReadScript answers a Messages request that offers the tool
// name: with signed thinking (readThinking) and a call of it reading file, and, once a tool_result for that
// call is in the messages, with the final text, which says the file's
// text only when the result carried want. Requests without the tool (a
// client's side calls) get the fake's default answer.
func anthropicReadScript(tool, file, callID, want string) func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
	return func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		body := gjson.ParseBytes(rec.Body)
		model, stream := body.Get("model").Str, body.Get("stream").Bool()
		if !body.Get(`tools.#(name==` + strconv.Quote(tool) + `)`).Exists() {
			return nil
		}
		for _, m := range body.Get("messages").Array() {
			for _, b := range m.Get("content").Array() {
				if b.Get("type").Str != "tool_result" || b.Get("tool_use_id").Str != callID {
					continue
				}
				answer := "The tool_result lacked the file's text."
				if strings.Contains(b.Get("content").Raw, want) {
					answer = "The file says " + want + "."
				}
				if stream {
					return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, answer, 3, 0)}
				}
				return &fakeupstream.Reply{Body: fakeupstream.MessageJSON(model, answer)}
			}
		}
		input := `{"file_path":` + strconv.Quote(file) + `}`
		if stream {
			return &fakeupstream.Reply{Events: fakeupstream.ThinkingToolUseStream(model, readThinking, "Reading it.", callID, tool, input, 8, 0)}
		}
		return &fakeupstream.Reply{Body: fakeupstream.ThinkingToolUseJSON(model, readThinking, "Reading it.", callID, tool, input)}
	}
}

// TestGeminiCLIThroughClaudeAccount runs the real Gemini CLI through
// ccrelay's Gemini route on a claude-api account (the model name
// claude-sonnet-4-5 picks the Claude pool) with the strict Anthropic fake:
// the first answer calls Gemini CLI's read_file tool, the CLI runs it and
// sends the functionResponse, converted into a tool_result, and the CLI
// prints the final text, which the upstream wrote only after it saw the
// file's text in that tool_result.
func TestGeminiCLIThroughClaudeAccount(t *testing.T) {
	geminiCLI(t)
	const callID = "toolu_01GeminiReadNotes"
	dir, notes := notesFile(t, "kumquat-42")
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true, Script: anthropicReadScript("read_file", notes, callID, "kumquat-42")}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, fake).URL, "sk-ant", 100))
	tap, trap := &clientTap{}, newEgressTrap(t)
	res, err := runGeminiCLI(t, tap.target(t, r.URL), relayKey, "claude-sonnet-4-5", dir, "read notes.txt and tell me the password", 2*time.Minute, gcEgress(trap))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	if got := trap.Attempts(); len(got) > 0 {
		t.Fatalf("Gemini CLI tried to reach outside hosts: %q", got)
	}
	if res.Response != "The file says kumquat-42." {
		t.Fatalf("response %q\nstdout:\n%s", res.Response, res.Stdout)
	}
	// What Gemini CLI sent: with an explicit model no router call, only
	// the two turns, streamed, with its tools as functionDeclarations.
	var paths []string
	for _, rec := range tap.Requests() {
		paths = append(paths, rec.Method+" "+rec.Path+"?"+rec.RawQuery)
	}
	const streamPath = "POST /gemini/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse"
	if len(paths) != 2 || paths[0] != streamPath || paths[1] != streamPath {
		t.Fatalf("Gemini CLI sent %q", paths)
	}
	sent := gjson.ParseBytes(tap.Requests()[0].Body)
	if !sent.Get(`tools.0.functionDeclarations.#(name=="read_file").parametersJsonSchema`).Exists() ||
		sent.Get("generationConfig.topK").Int() == 0 || !sent.Get("generationConfig.thinkingConfig").Exists() {
		t.Fatalf("Gemini CLI's first request: tools %s generationConfig %s", sent.Get("tools.0.functionDeclarations.#.name").Raw, sent.Get("generationConfig").Raw)
	}
	ups := fake.Requests()
	if len(ups) != 2 {
		t.Fatalf("the upstream saw %d requests; want 2", len(ups))
	}
	first := gjson.ParseBytes(ups[0].Body)
	if first.Get("model").Str != "claude-sonnet-4-5" || !first.Get("stream").Bool() || first.Get("top_k").Exists() ||
		first.Get("thinking.type").Str == "" || !strings.Contains(first.Get("system.0.text").Str, "You are Gemini CLI") ||
		first.Get(`tools.#(name=="read_file").input_schema.properties.file_path`).Type == gjson.Null {
		t.Fatalf("first upstream request: model %q stream %v top_k %s thinking %s tools %s", first.Get("model").Str,
			first.Get("stream").Bool(), first.Get("top_k").Raw, first.Get("thinking").Raw, first.Get("tools.#.name").Raw)
	}
	// The call goes back under its id, after the signed thinking it came
	// with (which went to Gemini CLI inside the call's thoughtSignature),
	// so thinking stays on.
	second := gjson.ParseBytes(ups[1].Body)
	turn := second.Get(`messages.#(role=="assistant")`)
	if turn.Get(`content.#(type=="tool_use").id`).Str != callID || second.Get("thinking.type").Str == "" ||
		turn.Get(`content.#(type=="thinking").signature`).Str != fakeupstream.FakeSignature(readThinking) ||
		turn.Get(`content.#(type=="thinking").thinking`).Str != readThinking {
		t.Fatalf("the second request does not replay the signed thinking and the call: thinking %s %s\nGemini CLI sent %s", second.Get("thinking").Raw, turn.Raw, gjson.GetBytes(tap.Requests()[1].Body, `contents.#(role=="model")`).Raw)
	}
	replayed := gjson.GetBytes(tap.Requests()[1].Body, `contents.#(role=="model")|parts.#(functionCall.name=="read_file")`)
	if replayed.Get("thoughtSignature").Str == "" || replayed.Get("functionCall.id").Str == "" {
		t.Fatalf("Gemini CLI replayed the call as %s", replayed.Raw)
	}
	rows := r.usageRows(2)
	for _, row := range rows {
		if row.Status != 200 || !row.Stream || row.Account != "ca" {
			t.Fatalf("usage row %+v", row)
		}
	}
}

// geminiPathModel is the model of a Gemini API path
// (".../models/M:method").
func geminiPathModel(path string) string {
	_, m, _ := strings.Cut(path, "/models/")
	m, _, _ = strings.Cut(m, ":")
	return m
}

// geminiReply answers rec with text, as a stream when it asks for one.
func geminiReply(rec *fakeupstream.Recorded, text string) *fakeupstream.Reply {
	model := geminiPathModel(rec.Path)
	if strings.HasSuffix(rec.Path, ":streamGenerateContent") {
		return &fakeupstream.Reply{Events: fakeupstream.GeminiStream(model, text, 2, 0)}
	}
	return &fakeupstream.Reply{Body: fakeupstream.GeminiResponseJSON(model, text)}
}

// TestClaudeCodeOnGeminiAccount: a two-turn Claude Code conversation on a
// gemini-api account (a route sends claude-sonnet-4-5 to
// gemini-3-pro-preview) with the strict Gemini fake, which refuses a
// Gemini 3 function call sent back without the thoughtSignature it issued.
// Turn 1's answer is a thought and a Read call carrying its signature;
// Claude Code runs Read, and the request with the tool's result must carry
// the call back with that signature (kept in the thinking block's
// signature Claude Code replays). The second run resumes the conversation,
// so Claude Code sends the whole history again: not refused either, and
// the call still carries its signature.
func TestClaudeCodeOnGeminiAccount(t *testing.T) {
	claudeCodeCLI(t)
	dir, notes := notesFile(t, "kumquat-42")
	fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		contents := gjson.GetBytes(rec.Body, "contents").Raw
		switch {
		case strings.Contains(contents, "second question"):
			return geminiReply(rec, "Second answer.")
		case strings.Contains(contents, `"functionResponse"`):
			if !strings.Contains(contents, "kumquat-42") {
				return geminiReply(rec, "The functionResponse lacked the file's text.")
			}
			return geminiReply(rec, "First answer: kumquat-42.")
		}
		return fakeupstream.GeminiThoughtToolCall(rec, geminiPathModel(rec.Path), "Read", `{"file_path":`+strconv.Quote(notes)+`}`)
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("ga", upstream(t, fake).URL, geminiKey, 100)+
		"\n[[routes]]\nmodels = [\"claude-sonnet-4-5\"]\nto = [\"gemini:gemini-3-pro-preview\"]\n")
	conv := newClaudeCodeConversation(t)
	for i, turn := range []struct{ prompt, want string }{{"first question", "First answer: kumquat-42."}, {"second question", "Second answer."}} {
		res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", turn.prompt, ccConversation(conv), ccInDir(dir), ccTools("Read"), ccStreamJSON())
		if err != nil {
			t.Fatalf("turn %d: %v\nstdout:\n%s\nstderr:\n%s", i+1, err, res.Stdout, res.Stderr)
		}
		if res.Result != turn.want {
			t.Fatalf("turn %d: result %q, want %q", i+1, res.Result, turn.want)
		}
		if i == 0 && !sawThinkingText(res.Messages, "I should call Read.") {
			t.Fatalf("Claude Code's messages lack Gemini's thought as a signed thinking block:\n%s", res.Stdout)
		}
	}
	ups := fake.Requests()
	if len(ups) != 3 {
		t.Fatalf("the upstream saw %d requests; want 3", len(ups))
	}
	for i, rec := range ups {
		if !strings.Contains(rec.Path, "/models/gemini-3-pro-preview:streamGenerateContent") {
			t.Fatalf("request %d went to %s", i+1, rec.Path)
		}
		if i == 0 {
			continue
		}
		call := gjson.GetBytes(rec.Body, `contents.#.parts.#(functionCall.name=="Read")|0`)
		if call.Get("thoughtSignature").Str != fakeupstream.FakeThoughtSignature("Read") {
			t.Fatalf("request %d replays the call without its signature: %s", i+1, gjson.GetBytes(rec.Body, "contents").Raw)
		}
	}
	for _, row := range r.usageRows(3) {
		if row.Status != 200 || row.Account != "ga" {
			t.Fatalf("usage row %+v", row)
		}
	}
}

// TestGeminiCLIRouterOnClaudeAccount: Gemini CLI without --model first
// asks a classifier model (gemini-3.5-flash-lite, generateContent with
// responseMimeType application/json and a responseJsonSchema) how hard the
// prompt is, then runs the turn on the model it picks. A route sends every
// gemini-* model to the Claude pool: the classifier call arrives at Claude
// with the schema as an instruction, its JSON answer goes back as the
// Gemini response text, and the CLI routes and answers after one
// classifier call (a non-JSON answer costs five retries and ~80 s).
func TestGeminiCLIRouterOnClaudeAccount(t *testing.T) {
	geminiCLI(t)
	const verdict = `{"complexity_reasoning":"A greeting.","complexity_score":5}`
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		body := gjson.ParseBytes(rec.Body)
		if !body.Get("stream").Bool() && strings.Contains(body.Get("system").Raw, "complexity_score") {
			return &fakeupstream.Reply{Body: fakeupstream.MessageJSON(body.Get("model").Str, verdict)}
		}
		return nil
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", upstream(t, fake).URL, "sk-ant", 100)+
		"\n[[routes]]\nmodels = [\"gemini-*\"]\nto = [\"claude:claude-sonnet-4-5\"]\n")
	tap := &clientTap{}
	res, err := runGeminiCLI(t, tap.target(t, r.URL), relayKey, "", t.TempDir(), "say hi", 2*time.Minute)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%.3000s", err, res.Stdout, res.Stderr)
	}
	if res.Response != "Hello from fake upstream" {
		t.Fatalf("response %q", res.Response)
	}
	sent := tap.Requests()
	if len(sent) != 2 || !strings.HasSuffix(sent[0].Path, "/models/gemini-3.5-flash-lite:generateContent") ||
		!gjson.GetBytes(sent[0].Body, "generationConfig.responseJsonSchema.properties.complexity_score").Exists() ||
		!strings.HasSuffix(sent[1].Path, ":streamGenerateContent") {
		var paths []string
		for _, rec := range sent {
			paths = append(paths, rec.Path)
		}
		t.Fatalf("Gemini CLI sent %q", paths)
	}
	ups := fake.Requests()
	if len(ups) != 2 || gjson.GetBytes(ups[0].Body, "model").Str != "claude-sonnet-4-5" || gjson.GetBytes(ups[0].Body, "tools").Exists() {
		t.Fatalf("the upstream saw %d requests; the first: %.400s", len(ups), ups[0].Body)
	}
}

// TestGeminiCLIThroughOpenAIAccount: the read_file round trip of
// TestGeminiCLIThroughClaudeAccount with --model gpt-5-codex, served by an
// openai-responses account (the strict fake): the call arrives as a
// Responses function_call, the file's text goes back as its
// function_call_output under the same call_id.
func TestGeminiCLIThroughOpenAIAccount(t *testing.T) {
	geminiCLI(t)
	const callID = "call_01GeminiReadNotes"
	dir, notes := notesFile(t, "kumquat-42")
	fake := &fakeupstream.OpenAI{Strict: true}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		body := gjson.ParseBytes(rec.Body)
		model := body.Get("model").Str
		out := body.Get(`input.#(type=="function_call_output")`)
		switch {
		case out.Get("call_id").Str == callID && strings.Contains(out.Get("output").Raw, "kumquat-42"):
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "The file says kumquat-42.", 3, 0)}
		case out.Exists():
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "The function_call_output lacked the file's text.", 3, 0)}
		}
		return &fakeupstream.Reply{Events: fakeupstream.ResponseFunctionCallStream(model, callID, "read_file", `{"file_path":`+strconv.Quote(notes)+`}`)}
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa-1", upstream(t, fake).URL+"/v1", "sk-openai-e2e-account", 100))
	res, err := runGeminiCLI(t, r.URL, relayKey, "gpt-5-codex", dir, "read notes.txt and tell me the password", 2*time.Minute)
	if err != nil {
		t.Fatalf("%v (the strict fake refused: %q)\nstdout:\n%s\nstderr:\n%s", err, fake.Refused(), res.Stdout, res.Stderr)
	}
	if res.Response != "The file says kumquat-42." {
		t.Fatalf("response %q", res.Response)
	}
	ups := fake.Requests()
	if len(ups) != 2 || len(fake.Refused()) > 0 {
		t.Fatalf("the upstream saw %d requests (want 2) and refused %q", len(ups), fake.Refused())
	}
	first := gjson.ParseBytes(ups[0].Body)
	if first.Get("model").Str != "gpt-5-codex" || !strings.Contains(first.Get("instructions").Str, "You are Gemini CLI") ||
		first.Get(`tools.#(name=="read_file").type`).Str != "function" {
		t.Fatalf("first upstream request: model %q tools %s", first.Get("model").Str, first.Get("tools.#.name").Raw)
	}
	call := gjson.GetBytes(ups[1].Body, `input.#(type=="function_call")`)
	if call.Get("call_id").Str != callID || call.Get("name").Str != "read_file" {
		t.Fatalf("the second request does not replay the call: %s", gjson.GetBytes(ups[1].Body, "input").Raw)
	}
}
