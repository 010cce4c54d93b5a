package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The pieces every real-client test shares (Codex CLI, Claude Code,
// Gemini CLI, all pinned in internal/e2e/clients/package.json and installed
// by one `npm ci` in scripts/test.sh): finding the binary or skipping,
// checking once that it runs, the isolated environment, and running it with
// a deadline. Each client's own file adds its arguments and reads its output.

// discardProxy is the proxy every client run uses unless a test traps
// egress: the discard port, where nothing listens, so every connect to a
// host other than loopback fails at once.
const discardProxy = "http://127.0.0.1:9"

// pinnedClient is the pinned client's binary, clients/node_modules/.bin/name;
// the test skips, saying how to install it, when it is missing. label names
// the client in the message ("Codex CLI").
func pinnedClient(t *testing.T, name, label string) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("clients", "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip(label + " not installed: run 'npm ci --prefix internal/e2e/clients' (scripts/test.sh does when npm is available)")
	}
	return bin
}

// clientProbe remembers, once per test binary, whether a pinned client
// runs here: its `--version` output, or why it failed.
type clientProbe struct {
	once    sync.Once
	version string
	broken  bool
}

// require runs bin --version once (isolated, in a fresh HOME, within
// deadline) and skips t when it fails or runs reports false for its
// stdout; the skip names label, the failure and hint (what to do).
func (p *clientProbe) require(t *testing.T, bin, label, hint string, deadline time.Duration, runs func(stdout string) bool) {
	t.Helper()
	p.once.Do(func() {
		out := runClient(clientCmd{bin: bin, args: []string{"--version"}, env: isolatedEnv(t.TempDir(), ""), deadline: deadline})
		p.version = string(bytes.TrimSpace(out.stdout))
		if out.err != nil || !runs(p.version) {
			p.version = fmt.Sprintf("%v: %s%s", out.err, out.stdout, out.stderr)
			p.broken = true
		}
	})
	if p.broken {
		t.Skipf("%s is installed but does not run (%s): %s", label, p.version, hint)
	}
}

// isolatedEnv is the whole environment of a client run: HOME, the XDG
// config and cache dirs and TMPDIR inside home, PATH, a dumb terminal
// without colour, and every proxy variable pointing at proxy (discardProxy
// when ""), loopback exempt. Nothing else of the machine is inherited, so
// no key, base URL or proxy setting leaks in; extra adds the client's own
// variables ("NAME=value"; a later entry of the same name wins).
func isolatedEnv(home, proxy string, extra ...string) []string {
	if proxy == "" {
		proxy = discardProxy
	}
	env := []string{
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"TMPDIR=" + home, "PATH=" + os.Getenv("PATH"), "TERM=dumb", "NO_COLOR=1",
	}
	env = append(env, proxyEnv(proxy)...)
	return append(env, extra...)
}

// proxyEnv points every proxy variable at proxy, loopback excepted (a
// later entry of the same name wins in exec's environment).
func proxyEnv(proxy string) []string {
	return []string{
		"HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy, "ALL_PROXY=" + proxy,
		"http_proxy=" + proxy, "https_proxy=" + proxy, "all_proxy=" + proxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
}

// clientCmd is one run of a pinned client.
type clientCmd struct {
	bin  string
	args []string
	// dir is the working directory (default: the test binary's).
	dir string
	// env is the whole environment (isolatedEnv).
	env []string
	// deadline bounds the run: the process is killed then.
	deadline time.Duration
}

// clientOutput is what a run printed and how it ended.
type clientOutput struct {
	stdout, stderr []byte
	// err is the process's failure; timedOut says it was killed at the
	// deadline (err is then the kill).
	err      error
	timedOut bool
}

// runClient runs c to its end or its deadline.
func runClient(c clientCmd) clientOutput {
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, c.args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return clientOutput{stdout: out.Bytes(), stderr: errb.Bytes(), err: err, timedOut: ctx.Err() != nil}
}

// readPrompt is what the real-client read round trips ask: the upstream
// answers it with a call of the client's read tool on notesFile's file.
const readPrompt = "read notes.txt and tell me the password"

// notesFile writes notes.txt holding "the password is " + secret in a
// fresh temp dir, the project a client's read tool reads in a round trip,
// and returns the dir and the file's path.
func notesFile(t *testing.T, secret string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(path, []byte("the password is "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}
