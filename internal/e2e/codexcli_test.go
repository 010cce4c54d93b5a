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

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/pkg/cmd/env"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// codexCLI is the pinned Codex CLI (internal/e2e/clients/package.json),
// which scripts/test.sh installs with npm when node is present.
func codexCLI(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("clients", "node_modules", ".bin", "codex"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("Codex CLI not installed: run 'npm ci --prefix internal/e2e/clients' (scripts/test.sh does when npm is available)")
	}
	return bin
}

// codexHome writes Codex's config.toml into a fresh CODEX_HOME as a user
// would: with `ccrelay env codex --write-codex-config`.
func codexHome(t *testing.T, r *relayUT) string {
	t.Helper()
	home := t.TempDir()
	codexHome := filepath.Join(home, ".codex")
	if err := os.Mkdir(codexHome, 0o700); err != nil {
		t.Fatal(err)
	}
	ios, _, _, stderr := iostreams.Test()
	getenv := func(k string) string {
		if k == "CODEX_HOME" {
			return codexHome
		}
		return ""
	}
	f := &cmdutil.Factory{IOStreams: ios, Getenv: getenv, Config: func() (*config.Config, error) { return r.App.Config, nil }}
	cmd := env.NewCmdEnv(f, nil)
	cmd.SetArgs([]string{"codex", "--write-codex-config", "--url", r.URL, "--shell", "sh"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("ccrelay env codex: %v\n%s", err, stderr)
	}
	return home
}

// runCodex runs `codex exec` non-interactively with HOME and CODEX_HOME in
// home. Every outside host is unreachable: the proxy variables point at a
// closed loopback port and only the relay is exempt.
func runCodex(t *testing.T, bin, home, prompt string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "exec",
		"--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
		"--disable", "plugins", "--disable", "remote_plugin", "--disable", "apps", "--disable", "in_app_updates",
		"-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false",
		"-m", "gpt-fake-1", prompt)
	cmd.Dir = home
	dead := "http://127.0.0.1:9"
	cmd.Env = []string{
		"HOME=" + home, "CODEX_HOME=" + filepath.Join(home, ".codex"), "PATH=" + os.Getenv("PATH"),
		"CCRELAY_API_KEY=" + relayKey, "TERM=dumb", "NO_COLOR=1",
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
	home := codexHome(t, r)

	t.Run("plain turn", func(t *testing.T) {
		before := len(fake.Requests())
		stdout, stderr := runCodex(t, bin, home, "say hi")
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
		stdout, stderr := runCodex(t, bin, home, "use the shell tool to echo a greeting")
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
