package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// chatChunk is one chat.completion.chunk event of a scripted Chat stream.
func chatChunk(model, delta, finish string) fakeupstream.Event {
	f := "null"
	if finish != "" {
		f = strconv.Quote(finish)
	}
	return fakeupstream.Event{Data: fmt.Sprintf(`{"id":"chatcmpl-cc","object":"chat.completion.chunk","created":1767225600,"model":%q,"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}`, model, delta, f)}
}

// TestClaudeCodeOnCompatAccount runs the real Claude Code on an
// openai-compatible account (a DeepSeek-like Chat upstream with its
// reasoning_content, which refuses a tool turn sent back without it): a
// route sends its Claude model there as deepseek-chat, and a Read tool
// round trip is converted both ways; the final text is written only when
// the tool message carried the file's text.
func TestClaudeCodeOnCompatAccount(t *testing.T) {
	claudeCodeCLI(t)
	dir, notes := notesFile(t, "quince-7")
	fake := &fakeupstream.ChatCompat{Reasoning: "Let me read the file."}
	fake.Script = func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		evs := []fakeupstream.Event{chatChunk(model, `{"role":"assistant","content":""}`, ""), chatChunk(model, `{"reasoning_content":"Let me read the file."}`, "")}
		for _, m := range gjson.GetBytes(rec.Body, "messages").Array() {
			if m.Get("role").Str == "tool" && m.Get("tool_call_id").Str == "call_cc01" {
				answer := "The tool message lacked the file's text."
				if strings.Contains(m.Get("content").String(), "quince-7") {
					answer = "The file says quince-7."
				}
				evs = append(evs, chatChunk(model, `{"content":`+strconv.Quote(answer)+`}`, ""), chatChunk(model, `{}`, "stop"))
				return &fakeupstream.Reply{Events: append(evs, fakeupstream.Event{Data: "[DONE]"})}
			}
		}
		args := strconv.Quote(`{"file_path":` + strconv.Quote(notes) + `}`)
		evs = append(evs, chatChunk(model, `{"tool_calls":[{"index":0,"id":"call_cc01","type":"function","function":{"name":"Read","arguments":`+args+`}}]}`, ""),
			chatChunk(model, `{}`, "tool_calls"))
		return &fakeupstream.Reply{Events: append(evs, fakeupstream.Event{Data: "[DONE]"})}
	}
	route := "\n[[routes]]\nmodels = [\"claude-sonnet-4-5\"]\nto = [\"compat:deepseek-chat\"]\n"
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("ds", upstream(t, fake).URL, "sk-ds", `["deepseek-*"]`, "")+route)
	res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", "read notes.txt and tell me the password", ccInDir(dir), ccTools("Read"))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	if res.Result != "The file says quince-7." {
		t.Fatalf("result %q after %d turns", res.Result, res.NumTurns)
	}
	ups := fake.Requests()
	if len(ups) != 2 {
		t.Fatalf("the compat upstream saw %d requests; want 2", len(ups))
	}
	second := gjson.ParseBytes(ups[1].Body)
	if second.Get("model").Str != "deepseek-chat" || second.Get("messages.0.role").Str != "system" {
		t.Fatalf("second request %s", ups[1].Body)
	}
	var replayed bool
	for _, m := range second.Get("messages").Array() {
		if m.Get("role").Str == "assistant" && m.Get("tool_calls.0.id").Str == "call_cc01" {
			replayed = m.Get("reasoning_content").Str == "Let me read the file."
		}
	}
	if !replayed {
		t.Fatalf("the tool turn came back without its reasoning_content: %s", ups[1].Body)
	}
}
