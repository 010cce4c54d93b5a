package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// The real Gemini CLI on the accounts of the protocol matrix besides
// Claude and OpenAI Responses: an openai-compatible account (a
// DeepSeek-like Chat upstream) and a gemini-api account (passthrough, the
// strict Gemini fake). Each is a read_file round trip; a clientTap between
// the CLI and the relay records what the CLI itself sent, to compare with
// what the upstream got.

// geminiCLIReadTurns runs the real Gemini CLI once on model through a
// clientTap in front of the relay at relayURL, in dir, asking readPrompt,
// with every outside host trapped. It checks that the CLI reached no
// outside host, printed want, and sent exactly two streamed requests (the
// turn and the tool turn) for model, and returns them.
func geminiCLIReadTurns(t *testing.T, relayURL, model, dir, want string) []*fakeupstream.Recorded {
	t.Helper()
	tap, trap := &clientTap{}, newEgressTrap(t)
	res, err := runGeminiCLI(t, tap.target(t, relayURL), relayKey, model, dir, readPrompt, 2*time.Minute, gcEgress(trap))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%.4000s", err, res.Stdout, res.Stderr)
	}
	if got := trap.Attempts(); len(got) > 0 {
		t.Fatalf("Gemini CLI tried to reach outside hosts: %q", got)
	}
	if res.Response != want {
		t.Fatalf("response %q, want %q\nstdout:\n%s", res.Response, want, res.Stdout)
	}
	turns := tap.Requests()
	streamPath := "/gemini/v1beta/models/" + model + ":streamGenerateContent"
	for _, rec := range turns {
		if len(turns) != 2 || rec.Method != "POST" || rec.Path != streamPath || rec.RawQuery != "alt=sse" {
			t.Fatalf("Gemini CLI sent %d requests, one %s %s?%s; want 2 to %s?alt=sse", len(turns), rec.Method, rec.Path, rec.RawQuery, streamPath)
		}
	}
	if len(turns) != 2 {
		t.Fatalf("Gemini CLI sent %d requests; want 2", len(turns))
	}
	return turns
}

// geminiCLICall is the functionCall part of name the CLI replays in its
// tool turn, and the functionResponse part it answers it with.
func geminiCLICall(body []byte, name string) (call, resp gjson.Result) {
	contents := gjson.GetBytes(body, "contents")
	q := strconv.Quote(name)
	return contents.Get(`#.parts.#(functionCall.name==` + q + `)|0`), contents.Get(`#.parts.#(functionResponse.name==` + q + `)|0`)
}

// chatCall is one call a scripted Chat upstream makes: its id, the tool
// and its arguments, and the secret the tool's output must carry.
type chatCall struct{ id, tool, args, secret string }

// chatToolTurn scripts a DeepSeek-like Chat upstream in thinking mode for
// one tool round trip: every answer streams reasoning first; a request
// without tool messages gets calls (in parallel when several), one with
// them the final text, which says the secrets only when each call's tool
// message (by its id) carried its secret. Each stream ends with
// fakeupstream.ChatCompatUsage's usage chunk and [DONE].
func chatToolTurn(reasoning string, calls ...chatCall) func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
	return func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		evs := []fakeupstream.Event{chatChunk(model, `{"role":"assistant","content":""}`, ""), chatChunk(model, `{"reasoning_content":`+strconv.Quote(reasoning)+`}`, "")}
		if gjson.GetBytes(rec.Body, `messages.#(role=="tool")`).Exists() {
			var secrets []string
			for _, c := range calls {
				if out := gjson.GetBytes(rec.Body, `messages.#(tool_call_id==`+strconv.Quote(c.id)+`).content`); strings.Contains(out.String(), c.secret) {
					secrets = append(secrets, c.secret)
				}
			}
			answer := "The tool's output lacked the file's text."
			if len(secrets) == len(calls) {
				answer = "The file says " + strings.Join(secrets, " and ") + "."
			}
			evs = append(evs, chatChunk(model, `{"content":`+strconv.Quote(answer)+`}`, ""), chatChunk(model, `{}`, "stop"))
		} else {
			for i, c := range calls {
				evs = append(evs, chatChunk(model, `{"tool_calls":[{"index":`+strconv.Itoa(i)+`,"id":`+strconv.Quote(c.id)+`,"type":"function","function":{"name":`+
					strconv.Quote(c.tool)+`,"arguments":`+strconv.Quote(c.args)+`}}]}`, ""))
			}
			evs = append(evs, chatChunk(model, `{}`, "tool_calls"))
		}
		usage := fakeupstream.Event{Data: `{"id":"chatcmpl-cc","object":"chat.completion.chunk","created":1767225600,"model":` + strconv.Quote(model) +
			`,"choices":[],"usage":` + fakeupstream.ChatCompatUsage + `}`}
		return &fakeupstream.Reply{Events: append(evs, usage, fakeupstream.Event{Data: "[DONE]"})}
	}
}

// saysSecret is the final answer of a read round trip: the secret when
// the tool's output carried it.
func saysSecret(secret string) func(output string) string {
	return func(output string) string {
		if strings.Contains(output, secret) {
			return "The file says " + secret + "."
		}
		return "The tool's output lacked the file's text."
	}
}

// TestGeminiCLIOnCompatAccount: read_file round trips of the real Gemini
// CLI (--model deepseek-chat) on an openai-compatible account in
// DeepSeek's thinking mode, which refuses a tool turn sent back without
// its reasoning_content: one call, and two in parallel. The CLI's
// functionDeclarations reach the vendor as Chat function tools with the
// CLI's schemas; each of the vendor's calls reaches the CLI as a
// functionCall of its id, and the CLI's tool turn reaches the vendor as
// the assistant's tool calls with its reasoning and a tool message for
// each id holding that file's text.
func TestGeminiCLIOnCompatAccount(t *testing.T) {
	geminiCLI(t)
	const reasoning = "I will read the file."
	for _, tc := range []struct {
		name  string
		files []string // secrets, in notes.txt, then other.txt
	}{{"one call", []string{"kumquat-42"}}, {"parallel calls", []string{"kumquat-42", "plum-9"}}} {
		t.Run(tc.name, func(t *testing.T) {
			dir, notes := notesFile(t, tc.files[0])
			calls := []chatCall{{"call_gc01", "read_file", `{"file_path":` + strconv.Quote(notes) + `}`, tc.files[0]}}
			if len(tc.files) > 1 {
				other := filepath.Join(dir, "other.txt")
				if err := os.WriteFile(other, []byte("the other password is "+tc.files[1]+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				calls = append(calls, chatCall{"call_gc02", "read_file", `{"file_path":` + strconv.Quote(other) + `}`, tc.files[1]})
			}
			fake := &fakeupstream.ChatCompat{Keys: []string{"sk-ds"}, Reasoning: reasoning, Script: chatToolTurn(reasoning, calls...)}
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("ds", upstream(t, fake).URL+"/v1", "sk-ds", `["deepseek-*"]`, ""))
			turns := geminiCLIReadTurns(t, r.URL, "deepseek-chat", dir, "The file says "+strings.Join(tc.files, " and ")+".")
			ups := fake.Requests()
			if len(ups) != 2 {
				t.Fatalf("the compat upstream saw %d requests; want 2", len(ups))
			}
			wantChatTools(t, turns[0].Body, ups[0])
			wantChatToolTurn(t, turns[1].Body, ups[1].Body, reasoning, calls)
			// ChatCompatUsage: 20 prompt tokens of which 8 cached, 9 completion.
			wantStreamUsage(t, r, 2, usage.Record{AccountID: "ds", Platform: "compat", Model: "deepseek-chat", Usage: provider.Usage{InputTokens: 12, OutputTokens: 9, CacheReadTokens: 8}})
		})
	}
}

// wantChatTools checks the first Chat request of a Gemini CLI turn
// (streamed, the CLI's system instruction first) and that the CLI's
// functionDeclarations (its request body cli) reached it as Chat function
// tools with the CLI's schemas.
func wantChatTools(t *testing.T, cli []byte, up *fakeupstream.Recorded) {
	t.Helper()
	first := gjson.ParseBytes(up.Body)
	if up.Path != "/v1/chat/completions" || first.Get("model").Str != "deepseek-chat" || !first.Get("stream").Bool() ||
		first.Get("messages.0.role").Str != "system" || !strings.Contains(first.Get("messages.0.content").String(), "You are Gemini CLI") {
		t.Fatalf("first upstream request %s %.600s", up.Path, up.Body)
	}
	decls := gjson.GetBytes(cli, "tools.#.functionDeclarations|@flatten")
	chat := first.Get("tools")
	if got, want := sortedNames(chat, "function.name"), sortedNames(decls, "name"); len(want) < 2 || !slices.Equal(got, want) {
		t.Fatalf("Chat tools %q; Gemini CLI's %q", got, want)
	}
	decl, tool := decls.Get(`#(name=="read_file")`), chat.Get(`#(function.name=="read_file")`)
	params := tool.Get("function.parameters")
	if tool.Get("type").Str != "function" || !slices.Equal(sortedKeys(params.Get("properties")), sortedKeys(decl.Get("parametersJsonSchema.properties"))) ||
		params.Get("required").Raw != decl.Get("parametersJsonSchema.required").Raw {
		t.Fatalf("read_file as a Chat tool %s; Gemini CLI's declaration %s", tool.Raw, decl.Raw)
	}
}

// wantChatToolTurn checks a Gemini CLI tool turn: the CLI (its request
// body cli) replays each call under the vendor's id and answers it under
// that id, and the Chat request (up) carries the assistant's calls, in
// order, with its reasoning, and one tool message per call with the file's
// text.
func wantChatToolTurn(t *testing.T, cli, up []byte, reasoning string, calls []chatCall) {
	t.Helper()
	contents := gjson.GetBytes(cli, "contents")
	msgs := gjson.GetBytes(up, "messages")
	asst := msgs.Get(`#(role=="assistant")`)
	if asst.Get("reasoning_content").Str != reasoning || asst.Get("tool_calls.#").Int() != int64(len(calls)) {
		t.Fatalf("the calls came back as %s", asst.Raw)
	}
	for i, c := range calls {
		id := strconv.Quote(c.id)
		call, resp := contents.Get(`#.parts.#(functionCall.id==`+id+`)|0`), contents.Get(`#.parts.#(functionResponse.id==`+id+`)|0`)
		// The reasoning travels in the CLI's history as the first call's
		// thoughtSignature, the one field the CLI replays as it got it.
		if call.Get("functionCall.name").Str != c.tool || resp.Get("functionResponse.name").Str != c.tool || i == 0 && call.Get("thoughtSignature").Str == "" {
			t.Fatalf("Gemini CLI replayed call %s as %s and answered it with %s", c.id, call.Raw, resp.Raw)
		}
		tc := asst.Get("tool_calls." + strconv.Itoa(i))
		if tc.Get("id").Str != c.id || tc.Get("function.name").Str != c.tool || !jsonEqual(tc.Get("function.arguments").Str, c.args) {
			t.Fatalf("call %d came back as %s", i+1, tc.Raw)
		}
		if out := msgs.Get(`#(tool_call_id==` + id + `)`); out.Get("role").Str != "tool" || !strings.Contains(out.Get("content").String(), c.secret) {
			t.Fatalf("the tool message of %s: %s", c.id, out.Raw)
		}
	}
}

// geminiFakeUsage is the usage the Gemini fakes' answers record: prompt 17
// of which 5 cached, 7 candidate and 3 thought tokens.
var geminiFakeUsage = provider.Usage{InputTokens: fakeupstream.GeminiPromptTokens - fakeupstream.GeminiCachedTokens,
	OutputTokens: fakeupstream.GeminiCandidatesTokens + fakeupstream.GeminiThoughtsTokens, CacheReadTokens: fakeupstream.GeminiCachedTokens}

// wantStreamUsage waits for n usage rows and checks that each records a
// streamed 200 of the relay key with want's account, platform, models
// (asked and served) and token counts.
func wantStreamUsage(t *testing.T, r *relayUT, n int, want usage.Record) {
	t.Helper()
	for i, u := range waitUsage(t, r, n) {
		if u.Status != 200 || !u.Stream || u.KeyHash != usage.HashKey(relayKey) || u.AccountID != want.AccountID || u.Platform != want.Platform ||
			u.Model != want.Model || u.ServedModel != want.ServedModel || u.Usage != want.Usage {
			t.Fatalf("usage row %d: %+v; want %+v", i+1, u, want)
		}
	}
}

// jsonEqual says a and b are the same JSON value (object keys in any order).
func jsonEqual(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}

// TestGeminiCLIOnGeminiAccount: a read_file round trip of the real Gemini
// CLI (--model gemini-3.1-pro-preview, its current Gemini 3 Pro) on a
// gemini-api account and on a gemini (Code Assist) account. On gemini-api
// it is passthrough: both requests reach the strict Gemini fake byte for
// byte as the CLI sent them (only the key is the account's). On Code
// Assist each body reaches the strict Code Assist fake byte for byte as
// the request of its envelope, with the account's OAuth token and project.
// Either way the CLI's tool turn replays the thoughtSignature the fake
// issued on its call (the fakes refuse a Gemini 3 call without it) with
// the file's text in the functionResponse.
func TestGeminiCLIOnGeminiAccount(t *testing.T) {
	geminiCLI(t)
	const model, secret = "gemini-3.1-pro-preview", "kumquat-42"
	t.Run("gemini-api", func(t *testing.T) {
		dir, notes := notesFile(t, secret)
		args := `{"file_path":` + strconv.Quote(notes) + `}`
		fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true}
		fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
			if _, resp := geminiCLICall(rec.Body, "read_file"); resp.Exists() {
				return geminiReply(rec, saysSecret(secret)(resp.Raw))
			}
			return fakeupstream.GeminiThoughtToolCall(rec, geminiPathModel(rec.Path), "read_file", args)
		}
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("ga", upstream(t, fake).URL, geminiKey, 100))
		turns := geminiCLIReadTurns(t, r.URL, model, dir, "The file says "+secret+".")
		ups := fake.Requests()
		if len(ups) != 2 {
			t.Fatalf("the upstream saw %d requests; want 2", len(ups))
		}
		for i, rec := range ups {
			if rec.Path != strings.TrimPrefix(turns[i].Path, "/gemini") || !strings.Contains(rec.RawQuery, "alt=sse") ||
				rec.Header.Get("X-Goog-Api-Key") != geminiKey || !bytes.Equal(rec.Body, turns[i].Body) {
				t.Fatalf("request %d reached the upstream as %s?%s key %q, %d bytes; Gemini CLI sent %s?%s, %d bytes",
					i+1, rec.Path, rec.RawQuery, rec.Header.Get("X-Goog-Api-Key"), len(rec.Body), turns[i].Path, turns[i].RawQuery, len(turns[i].Body))
			}
		}
		wantSignedToolTurn(t, ups[1].Body, "read_file", args, secret)
		wantStreamUsage(t, r, 2, usage.Record{AccountID: "ga", Platform: "gemini", Model: model, Usage: geminiFakeUsage})
	})
	t.Run("code assist", func(t *testing.T) {
		dir, notes := notesFile(t, secret)
		args := `{"file_path":` + strconv.Quote(notes) + `}`
		ca := &fakeupstream.CodeAssist{Strict: true, Script: codeAssistReadScript("read_file", args, secret)}
		_, account := codeAssistUpstream(t, "cag", ca, 100)
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+account)
		turns := geminiCLIReadTurns(t, r.URL, model, dir, "The file says "+secret+".")
		ups := codeAssistCalls(t, ca, model, 2)
		for i, body := range ups {
			if !bytes.Equal(body, bytes.TrimSpace(turns[i].Body)) {
				t.Fatalf("request %d reached Code Assist as %.300s; Gemini CLI sent %.300s", i+1, body, turns[i].Body)
			}
		}
		wantSignedToolTurn(t, ups[1], "read_file", args, secret)
		wantStreamUsage(t, r, 2, usage.Record{AccountID: "cag", Platform: "gemini", Model: model, Usage: geminiFakeUsage})
	})
}

// wantSignedToolTurn checks the tool turn of a read round trip as a Gemini
// upstream got it (body, a public-API request): the call of tool with
// args and the thoughtSignature the strict fakes issue, and its
// functionResponse holding secret. It returns both parts.
func wantSignedToolTurn(t *testing.T, body []byte, tool, args, secret string) (call, resp gjson.Result) {
	t.Helper()
	call, resp = geminiCLICall(body, tool)
	if call.Get("thoughtSignature").Str != fakeupstream.FakeThoughtSignature(tool) || !jsonEqual(call.Get("functionCall.args").Raw, args) ||
		!strings.Contains(resp.Get("functionResponse.response").Raw, secret) {
		t.Fatalf("the tool turn replays the call as %s and answers it with %s", call.Raw, resp.Raw)
	}
	return call, resp
}
