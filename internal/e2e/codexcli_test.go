package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// TestCodexCLIThroughCodexOAuth runs the real Codex CLI through ccrelay with
// a codex-oauth account against the fake ChatGPT backend: a plain turn
// (the backend's text reaches Codex's output) and a tool round trip (the
// backend asks for a shell command, Codex runs it, and the next request
// carries its output).
func TestCodexCLIThroughCodexOAuth(t *testing.T) {
	bin := codexCLI(t)
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		switch {
		case gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")`).Exists():
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "The tool ran; I saw its output.", 2, 0)}
		case bytes.Contains(rec.Body, []byte("use the shell tool")):
			return &fakeupstream.Reply{Events: fakeupstream.ResponseFunctionCallStream(model, "call_cli01", "exec_command", `{"cmd":"echo hello-from-codex-tool"}`)}
		}
		return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "Hello from the ChatGPT fake", 3, 0)}
	}
	api := upstream(t, fake).URL + "/backend-api/codex"
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codexAccount("cx", api, tokens.URL, o.Issue(), "ws-1", 100))
	home := codexHome(t, r, r.URL)

	t.Run("plain turn", func(t *testing.T) {
		before := len(fake.Requests())
		stdout, stderr := runCodex(t, bin, home, "gpt-fake-1", "say hi")
		if !strings.Contains(stdout, "Hello from the ChatGPT fake") {
			t.Fatalf("codex output lacks the backend's text:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
		reqs := fake.Requests()[before:]
		if len(reqs) == 0 {
			t.Fatal("the backend saw no request")
		}
		b := gjson.ParseBytes(reqs[0].Body)
		if reqs[0].Path != "/backend-api/codex/responses" || b.Get("store").Type != gjson.False || !b.Get("stream").Bool() ||
			reqs[0].Header.Get("Chatgpt-Account-Id") != "ws-1" || !strings.HasPrefix(reqs[0].Header.Get("Authorization"), "Bearer ") ||
			strings.Contains(reqs[0].Header.Get("Authorization"), relayKey) {
			t.Fatalf("backend request %s %v\n%s", reqs[0].Path, reqs[0].Header, reqs[0].Body)
		}
	})

	t.Run("tool round trip", func(t *testing.T) {
		before := len(fake.Requests())
		stdout, stderr := runCodex(t, bin, home, "gpt-fake-1", "use the shell tool to echo a greeting")
		if !strings.Contains(stdout, "The tool ran; I saw its output.") {
			t.Fatalf("codex output lacks the final answer:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
		var outputs []string
		for _, rec := range fake.Requests()[before:] {
			for _, it := range gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")#`).Array() {
				if it.Get("call_id").Str == "call_cli01" {
					outputs = append(outputs, it.Get("output").String())
				}
			}
		}
		if len(outputs) == 0 || !strings.Contains(outputs[0], "hello-from-codex-tool") {
			t.Fatalf("no function_call_output with the command's output reached the backend: %q\nstderr:\n%s", outputs, stderr)
		}
	})
}
