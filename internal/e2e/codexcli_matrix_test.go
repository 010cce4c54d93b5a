package e2e

import (
	"maps"
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

// codexToolCase is one tool round trip: the model Codex asks for, the
// route that sends it to the account ("" = its name does), and the tool
// the upstream calls under its neutral name with args; the tool's output
// holds saw.
type codexToolCase struct {
	name, model, route string
	tool, args, saw    string
}

// codexToolCases: a model Codex has no metadata for (its fallback tools,
// the shell as the exec_command function), and one of its own current
// models (gpt-6.1-sol, "code mode": the tools come in an additional_tools
// input item, the shell is the freeform tool exec in namespace functions,
// which runs JavaScript) routed to the account as target.
func codexToolCases(model, target string) []codexToolCase {
	return []codexToolCase{
		{"fallback tools", model, "", "exec_command", `{"cmd":"echo hello-from-codex-tool"}`, "hello-from-codex-tool"},
		{"code mode", "gpt-6.1-sol", "\n[[routes]]\nmodels = [\"gpt-6.1-sol\"]\nto = [\"" + target + "\"]\n",
			"functions___exec", `{"input":"text(\"hello-from-codex-exec\")"}`, "hello-from-codex-exec"},
	}
}

// codexToolDefs are the tools of Codex's Responses request body (its tools
// and those of additional_tools input items) under the neutral names they
// reach an upstream of another API with: a namespace's tools as
// <namespace>___<name>; hosted tools (web_search) are not carried.
func codexToolDefs(body []byte) map[string]gjson.Result {
	tools := map[string]gjson.Result{}
	lists := append([]gjson.Result{gjson.GetBytes(body, "tools")}, gjson.GetBytes(body, `input.#(type=="additional_tools")#.tools`).Array()...)
	for _, list := range lists {
		for _, tool := range list.Array() {
			switch tool.Get("type").Str {
			case "function", "custom":
				tools[tool.Get("name").Str] = tool
			case "namespace":
				for _, sub := range tool.Get("tools").Array() {
					tools[tool.Get("name").Str+"___"+sub.Get("name").Str] = sub
				}
			}
		}
	}
	return tools
}

// paramNames are the sorted property names of a tool's parameters as an
// upstream of another API must get them: a function's own, a freeform
// tool's one string "input".
func paramNames(codexTool gjson.Result) []string {
	if codexTool.Get("type").Str == "custom" {
		return []string{"input"}
	}
	return sortedKeys(codexTool.Get("parameters.properties"))
}

// sortedKeys are the keys of the JSON object obj, sorted.
func sortedKeys(obj gjson.Result) []string {
	var keys []string
	obj.ForEach(func(k, _ gjson.Result) bool {
		keys = append(keys, k.Str)
		return true
	})
	slices.Sort(keys)
	return keys
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

// codexToolRoundTrip starts a relay with account (served by fake) and
// tc's route, runs the real Codex CLI once on tc's model through a
// clientTap, and checks that Codex printed answer, that Codex and the
// upstream each sent two requests (the turn and the tool turn), and that
// Codex's tool turn holds the output of its call of tc's tool. It returns
// the relay, Codex's requests, the upstream's and the call's id.
func codexToolRoundTrip(t *testing.T, tc codexToolCase, account string, fake interface {
	Requests() []*fakeupstream.Recorded
}, answer string) (r *relayUT, turns, ups []*fakeupstream.Recorded, callID string) {
	t.Helper()
	bin := codexCLI(t)
	r = startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+account+tc.route)
	tap := &clientTap{}
	home := codexHome(t, r, tap.target(t, r.URL))
	stdout, stderr := runCodex(t, bin, home, tc.model, "use the shell tool to echo a greeting")
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
	callID, output := codexCallOutput(turns[1].Body, tc.tool)
	if callID == "" || !strings.Contains(output, tc.saw) {
		t.Fatalf("Codex sent no output of its %s call: %s", tc.tool, gjson.GetBytes(turns[1].Body, "input").Raw)
	}
	return r, turns, ups, callID
}

// codexCallOutput is the call_id and output of the output item Codex sent
// for its call (function_call or custom_tool_call) of the tool named tool
// (<namespace>___<name> for a namespace's), "" when none.
func codexCallOutput(body []byte, tool string) (callID, output string) {
	for _, it := range gjson.GetBytes(body, "input").Array() {
		name := it.Get("name").Str
		if ns := it.Get("namespace").Str; ns != "" {
			name = ns + "___" + name
		}
		if typ := it.Get("type").Str; (typ == "function_call" || typ == "custom_tool_call") && name == tool {
			callID = it.Get("call_id").Str
		}
	}
	out := gjson.GetBytes(body, `input.#(call_id==`+strconv.Quote(callID)+`)#|#(type%"*_output")`)
	if callID == "" || !out.Exists() {
		return "", ""
	}
	return callID, out.Get("output").String()
}

// TestCodexCLIOnGeminiAccount: a tool round trip of the real Codex CLI on
// a gemini-api account (gemini-3-pro-preview, strict fake). Codex's tools
// reach Gemini as functionDeclarations with schemas Gemini takes (Codex's
// carry additionalProperties, which the fake refuses); the fake answers
// with a thought and a call of Codex's shell tool carrying its
// thoughtSignature; Codex runs it, and its next request reaches Gemini with
// the call and that signature (the fake refuses a Gemini 3 call without
// it) and the tool's output as the functionResponse of the same id and
// name.
func TestCodexCLIOnGeminiAccount(t *testing.T) {
	for _, tc := range codexToolCases("gemini-3-pro-preview", "gemini:gemini-3-pro-preview") {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true}
			fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
				if strings.Contains(gjson.GetBytes(rec.Body, "contents").Raw, `"functionResponse"`) {
					return geminiReply(rec, "Gemini saw the tool's output.")
				}
				return fakeupstream.GeminiThoughtToolCall(rec, geminiPathModel(rec.Path), tc.tool, tc.args)
			}
			account := geminiAPIAccount("ga", upstream(t, fake).URL, geminiKey, 100)
			r, turns, ups, callID := codexToolRoundTrip(t, tc, account, fake, "Gemini saw the tool's output.")
			for i, rec := range ups {
				if !strings.HasSuffix(rec.Path, "/models/gemini-3-pro-preview:streamGenerateContent") {
					t.Fatalf("request %d went to %s", i+1, rec.Path)
				}
			}

			// Codex's tools, schemas cleaned of what Gemini refuses.
			tools := codexToolDefs(turns[0].Body)
			decls := gjson.GetBytes(ups[0].Body, "tools.0.functionDeclarations")
			if got, want := sortedNames(decls, "name"), slices.Sorted(maps.Keys(tools)); len(want) < 2 || !slices.Equal(got, want) {
				t.Fatalf("functionDeclarations %q; Codex's tools %q", got, want)
			}
			if !strings.Contains(string(turns[0].Body), `"additionalProperties"`) {
				t.Fatalf("Codex's tool schemas no longer carry additionalProperties: the test no longer shows them cleaned")
			}
			params := decls.Get(`#(name==` + strconv.Quote(tc.tool) + `).parameters`)
			if raw := gjson.GetBytes(ups[0].Body, "tools").Raw; strings.Contains(raw, "additionalProperties") || strings.Contains(raw, "$schema") ||
				!slices.Equal(sortedKeys(params.Get("properties")), paramNames(tools[tc.tool])) {
				t.Fatalf("%s declared with %s; Codex's tool %s", tc.tool, params.Raw, tools[tc.tool].Raw)
			}

			// The tool turn back: the call with its signature, the output
			// under the same id and name as Codex's call.
			contents := gjson.GetBytes(ups[1].Body, "contents")
			call := contents.Get(`#.parts.#(functionCall.name==` + strconv.Quote(tc.tool) + `)|0`)
			resp := contents.Get(`#.parts.#(functionResponse.name==` + strconv.Quote(tc.tool) + `)|0`)
			if call.Get("thoughtSignature").Str != fakeupstream.FakeThoughtSignature(tc.tool) || call.Get("functionCall.args").Raw != tc.args {
				t.Fatalf("the call came back as %s", call.Raw)
			}
			if id := resp.Get("functionResponse.id").Str; id != callID || call.Get("functionCall.id").Str != callID ||
				!strings.Contains(resp.Get("functionResponse.response").Raw, tc.saw) {
				t.Fatalf("Codex's output of call %s came back as %s (call %s)", callID, resp.Raw, call.Raw)
			}
			for _, row := range r.usageRows(2) {
				if row.Status != 200 || row.Account != "ga" {
					t.Fatalf("usage row %+v", row)
				}
			}
		})
	}
}

// TestCodexCLIOnCompatAccount: a tool round trip of the real Codex CLI on
// an openai-compatible account in DeepSeek's thinking mode, which answers
// with reasoning_content and refuses a tool turn sent back without it.
// Codex's tools reach the vendor as Chat function tools; the vendor calls
// Codex's shell tool (call_cx01); Codex runs it, and its next request
// reaches the vendor as the assistant's tool call with its
// reasoning_content and a tool message of the same id holding the output.
func TestCodexCLIOnCompatAccount(t *testing.T) {
	const reasoning = "I will run the shell."
	for _, tc := range codexToolCases("deepseek-chat", "compat:deepseek-chat") {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeupstream.ChatCompat{Keys: []string{"sk-ds"}, Reasoning: reasoning}
			fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
				model := gjson.GetBytes(rec.Body, "model").Str
				evs := []fakeupstream.Event{chatChunk(model, `{"role":"assistant","content":""}`, ""), chatChunk(model, `{"reasoning_content":"`+reasoning+`"}`, "")}
				if gjson.GetBytes(rec.Body, `messages.#(role=="tool")`).Exists() {
					evs = append(evs, chatChunk(model, `{"content":"DeepSeek saw the tool's output."}`, ""), chatChunk(model, `{}`, "stop"))
				} else {
					evs = append(evs, chatChunk(model, `{"tool_calls":[{"index":0,"id":"call_cx01","type":"function","function":{"name":`+
						strconv.Quote(tc.tool)+`,"arguments":`+strconv.Quote(tc.args)+`}}]}`, ""), chatChunk(model, `{}`, "tool_calls"))
				}
				return &fakeupstream.Reply{Events: append(evs, fakeupstream.Event{Data: "[DONE]"})}
			}
			account := compatAccount("ds", upstream(t, fake).URL+"/v1", "sk-ds", `["deepseek-*"]`, "")
			r, turns, ups, callID := codexToolRoundTrip(t, tc, account, fake, "DeepSeek saw the tool's output.")
			first := gjson.ParseBytes(ups[0].Body)
			if ups[0].Path != "/v1/chat/completions" || first.Get("model").Str != "deepseek-chat" || first.Get("messages.0.role").Str != "system" {
				t.Fatalf("first request %s %s", ups[0].Path, ups[0].Body)
			}

			// Codex's tools as Chat function tools: a function's schema as
			// Codex wrote it, a freeform tool's as one string "input".
			tools := codexToolDefs(turns[0].Body)
			chat := first.Get("tools")
			if got, want := sortedNames(chat, "function.name"), slices.Sorted(maps.Keys(tools)); len(want) < 2 || !slices.Equal(got, want) {
				t.Fatalf("Chat tools %q; Codex's tools %q", got, want)
			}
			decl := chat.Get(`#(function.name==` + strconv.Quote(tc.tool) + `)`)
			params, codexTool := decl.Get("function.parameters"), tools[tc.tool]
			if decl.Get("type").Str != "function" || !slices.Equal(sortedKeys(params.Get("properties")), paramNames(codexTool)) ||
				codexTool.Get("type").Str == "function" && params.Raw != codexTool.Get("parameters").Raw {
				t.Fatalf("%s as a Chat tool %s; Codex's tool %s", tc.tool, decl.Raw, codexTool.Raw)
			}

			// The tool turn back, with DeepSeek's reasoning.
			msgs := gjson.GetBytes(ups[1].Body, "messages")
			asst := msgs.Get(`#(role=="assistant")`)
			tool := msgs.Get(`#(role=="tool")`)
			if callID != "call_cx01" || asst.Get("reasoning_content").Str != reasoning || asst.Get("tool_calls.0.id").Str != callID ||
				asst.Get("tool_calls.0.function.name").Str != tc.tool || asst.Get("tool_calls.0.function.arguments").Str != tc.args {
				t.Fatalf("Codex's call %s came back as %s", callID, asst.Raw)
			}
			if tool.Get("tool_call_id").Str != callID || !strings.Contains(tool.Get("content").String(), tc.saw) {
				t.Fatalf("the tool message %s", tool.Raw)
			}
			for _, row := range r.usageRows(2) {
				if row.Status != 200 || row.Account != "ds" {
					t.Fatalf("usage row %+v", row)
				}
			}
		})
	}
}
