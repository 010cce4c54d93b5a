package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmd/env"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// codexCLI is the pinned Codex CLI (internal/e2e/clients/package.json),
// which scripts/test.sh installs with npm when node is present; the test
// skips without it.
func codexCLI(t *testing.T) string {
	t.Helper()
	return pinnedClient(t, "codex", "Codex CLI")
}

// newCodexHome is a fresh HOME holding an empty .codex (CODEX_HOME).
func newCodexHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".codex"), 0o700); err != nil {
		t.Fatal(err)
	}
	return home
}

// codexHome writes Codex's config.toml into a fresh CODEX_HOME as a user
// would: with `ccrelay env codex --write-codex-config --url url` (the
// custom provider "ccrelay", wire_api "responses", its key in
// CCRELAY_API_KEY); url is the relay's, or a clientTap's in front of it.
func codexHome(t *testing.T, r *relayUT, url string) string {
	t.Helper()
	home := newCodexHome(t)
	ios, _, _, stderr := iostreams.Test()
	getenv := func(k string) string {
		if k == "CODEX_HOME" {
			return filepath.Join(home, ".codex")
		}
		return ""
	}
	f := &cmdutil.Factory{IOStreams: ios, Getenv: getenv, Config: func() (*config.Config, error) { return r.App.Config, nil }}
	cmd := env.NewCmdEnv(f, nil)
	cmd.SetArgs([]string{"codex", "--write-codex-config", "--url", url, "--shell", "sh"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("ccrelay env codex: %v\n%s", err, stderr)
	}
	return home
}

// codexRun is one `codex exec` run (see runCodexExec).
type codexRun struct {
	// home is HOME and the working directory; Codex's CODEX_HOME is
	// home/.codex (newCodexHome, codexHome).
	home string
	// model is -m's value; "" leaves the config's.
	model string
	// env are Codex's own variables, such as its provider's key.
	env []string
	// config are more -c settings (TOML "key=value").
	config []string
}

// runCodexExec runs `codex exec` non-interactively, tools run without
// asking, plugins, apps, analytics and update checks off, in an isolated
// environment (isolatedEnv: every outside host unreachable, only loopback
// exempt), killed after two minutes; the test fails unless it succeeds.
func runCodexExec(t *testing.T, bin string, run codexRun, prompt string) (stdout, stderr string) {
	t.Helper()
	args := []string{"exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
		"--disable", "plugins", "--disable", "remote_plugin", "--disable", "apps", "--disable", "in_app_updates",
		"-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false"}
	for _, c := range run.config {
		args = append(args, "-c", c)
	}
	if run.model != "" {
		args = append(args, "-m", run.model)
	}
	env := isolatedEnv(run.home, "", append([]string{"CODEX_HOME=" + filepath.Join(run.home, ".codex")}, run.env...)...)
	out := runClient(clientCmd{bin: bin, args: append(args, prompt), dir: run.home, env: env, deadline: 2 * time.Minute})
	if out.err != nil {
		t.Fatalf("codex exec: %v\nstdout:\n%s\nstderr:\n%s", out.err, out.stdout, out.stderr)
	}
	return string(out.stdout), string(out.stderr)
}

// runCodex runs `codex exec -m model` with the custom provider codexHome
// wrote into home, the relay key in CCRELAY_API_KEY.
func runCodex(t *testing.T, bin, home, model, prompt string) (stdout, stderr string) {
	t.Helper()
	return runCodexExec(t, bin, codexRun{home: home, model: model, env: []string{"CCRELAY_API_KEY=" + relayKey}}, prompt)
}
