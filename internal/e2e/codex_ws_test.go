package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// runCodexBuiltIn runs `codex exec` with Codex's built-in OpenAI provider
// pointed at the relay (-c openai_base_url=<relay>/v1, the relay key as
// CODEX_API_KEY, which Codex sends as Authorization: Bearer): the provider
// that tries the Responses WebSocket first and compacts remotely
// (/responses/compact). extra are more -c settings. Outside hosts are
// unreachable, as in runCodex.
func runCodexBuiltIn(t *testing.T, bin string, r *relayUT, prompt string, extra ...string) (stdout, stderr string) {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".codex"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
		"--disable", "plugins", "--disable", "remote_plugin", "--disable", "apps", "--disable", "in_app_updates",
		"-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false",
		"-c", `openai_base_url="` + r.URL + `/v1"`}
	for _, e := range extra {
		args = append(args, "-c", e)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "-m", "gpt-fake-1", prompt)...)
	cmd.Dir = home
	dead := "http://127.0.0.1:9"
	cmd.Env = []string{
		"HOME=" + home, "CODEX_HOME=" + filepath.Join(home, ".codex"), "PATH=" + os.Getenv("PATH"),
		"CODEX_API_KEY=" + relayKey, "TERM=dumb", "NO_COLOR=1",
		"HTTP_PROXY=" + dead, "HTTPS_PROXY=" + dead, "ALL_PROXY=" + dead,
		"http_proxy=" + dead, "https_proxy=" + dead, "all_proxy=" + dead,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("codex exec: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// waitLog waits (bounded) for the relay's log to hold want.
func waitLog(t *testing.T, r *relayUT, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := r.Logs.String()
		if strings.Contains(logs, want) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay's log never said %q:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCodexCLIWebSocket runs the real Codex CLI's built-in provider against
// the relay: it opens the Responses WebSocket (not the HTTP fallback), and
// the turn, a tool round trip included, is served over it from an
// openai-responses account over HTTP, with usage recorded.
func TestCodexCLIWebSocket(t *testing.T) {
	bin := codexCLI(t)
	fake := &fakeupstream.OpenAI{Keys: []string{"sk-acct"}}
	fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		switch {
		case gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")`).Exists():
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "The tool ran over the socket.", 2, 0)}
		case bytes.Contains(rec.Body, []byte("use the shell tool")):
			return &fakeupstream.Reply{Events: fakeupstream.ResponseFunctionCallStream(model, "call_ws01", "exec_command", `{"cmd":"echo hello-over-websocket"}`)}
		}
		return nil
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", upstream(t, fake).URL+"/v1", "sk-acct", 100))

	stdout, stderr := runCodexBuiltIn(t, bin, r, "use the shell tool to echo a greeting")
	if !strings.Contains(stdout, "The tool ran over the socket.") {
		t.Fatalf("codex output lacks the final answer:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if strings.Contains(stderr, "Falling back from WebSockets") {
		t.Fatalf("codex fell back to HTTP:\n%s", stderr)
	}
	// The relay's log: the socket served both turns (the tool call and the
	// answer after it), and Codex never POSTed a turn.
	logs := waitLog(t, r, "msg=\"responses websocket closed\" path=/v1/responses responses=2")
	if !strings.Contains(logs, "method=GET path=/v1/responses") || strings.Contains(logs, "method=POST path=/v1/responses") {
		t.Fatalf("want one upgrade and no POST in the relay's log:\n%s", logs)
	}
	var outputs []string
	for _, rec := range fake.Requests() {
		if rec.Path != "/v1/responses" || !gjson.GetBytes(rec.Body, "stream").Bool() || gjson.GetBytes(rec.Body, "type").Exists() {
			t.Fatalf("upstream request %s\n%s", rec.Path, rec.Body)
		}
		for _, it := range gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")#`).Array() {
			outputs = append(outputs, it.Get("output").String())
		}
	}
	if len(outputs) == 0 || !strings.Contains(outputs[0], "hello-over-websocket") {
		t.Fatalf("the tool's output did not reach the upstream: %q", outputs)
	}
	if rows := r.usageRows(2); rows[0].Account != "oa" {
		t.Fatalf("usage rows %+v", rows)
	}
}
