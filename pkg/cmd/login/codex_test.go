package login

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
)

// TestLoginCodex signs in to a fake OpenAI auth server as `ccrelay login
// codex` does: by the loopback callback (the test plays the browser and
// follows the authorize URL's redirect), on the second allowed port when the
// first is taken, and by pasting the address the browser ended on. The
// written account loads, with the ChatGPT account id from the id token.
func TestLoginCodex(t *testing.T) {
	tests := []struct {
		name       string
		paste      bool
		firstTaken bool
	}{
		{name: "loopback callback"},
		{name: "first port taken", firstTaken: true},
		{name: "pasted address", paste: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, baseConfig, 0o600)
			h := newHarness(t, ProviderCodex, path)
			h.opts.NoBrowser = tt.paste
			port := h.opts.loopbackPorts[0]
			if tt.firstTaken {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				port = h.opts.loopbackPorts[1]
			}
			done := h.run()
			if tt.paste {
				h.paste(true)
			}
			if err := h.wait(done); err != nil {
				t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
			}
			if !tt.paste {
				if page := <-h.browser.pages; !strings.HasPrefix(page, "200 ") {
					t.Errorf("browser ended on %q", page)
				}
			}
			h.as.mu.Lock()
			redirect := h.as.redirect
			h.as.mu.Unlock()
			if want := fmt.Sprintf("http://localhost:%d/auth/callback", port); redirect != want {
				t.Errorf("exchange redirect_uri = %q, want %q", redirect, want)
			}
			want := baseConfig + "\n[[accounts]]\n" +
				fmt.Sprintf("type = \"codex-oauth\"\nid = \"codex-1\"\nname = \"codex@example.com\"\nrefresh_token = %q\ntoken_url = %q\nchatgpt_account_id = \"ws-login-1\"\n",
					secretRefresh, h.as.srv.URL+"/token")
			checkFile(t, path, want)
			cfg, err := config.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Accounts[len(cfg.Accounts)-1]
			if a.Type != "codex-oauth" || a.ChatGPTAccountID != "ws-login-1" || a.RefreshToken != secretRefresh {
				t.Errorf("loaded account %s %s %q", a.Type, a.ID, a.ChatGPTAccountID)
			}
			h.checkNoSecret()
			msg := h.errOut.String()
			for _, w := range []string{"Note: OpenAI grants ChatGPT subscriptions", `Added account "codex-1"`, "codex@example.com"} {
				if !strings.Contains(msg, w) {
					t.Errorf("output lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestLoginCodexUpdatesAccount replaces an existing codex-oauth account's
// refresh token and ChatGPT account id in one edit, keeping the rest.
func TestLoginCodexUpdatesAccount(t *testing.T) {
	h := newHarness(t, ProviderCodex, "")
	cfg := baseConfig + "\n[[accounts]]\ntype = \"codex-oauth\"\nid = \"cx\"\nrefresh_token = \"rt-old\"  # from codex login\nchatgpt_account_id = \"ws-old\"\ntoken_url = \"" + h.as.srv.URL + "/token\"\n"
	path := writeConfig(t, cfg, 0o600)
	h.opts.ConfigPath = path
	h.opts.AccountID = "cx"
	if err := h.wait(h.run()); err != nil {
		t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
	}
	<-h.browser.pages
	want := strings.Replace(strings.Replace(cfg, `"rt-old"`, `"`+secretRefresh+`"`, 1), `"ws-old"`, `"ws-login-1"`, 1)
	checkFile(t, path, want)
	h.checkNoSecret()
}

// TestLoginCodexCreatesConfig: the first account in a new config, and the
// hint that points Codex at the relay (it needs its config file written).
func TestLoginCodexCreatesConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	h := newHarness(t, ProviderCodex, "")
	h.opts.NoBrowser = true
	done := h.run()
	h.paste(true)
	if err := h.wait(done); err != nil {
		t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
	}
	path := filepath.Join(dir, "config.toml")
	want := "[[accounts]]\ntype = \"codex-oauth\"\nid = \"codex-1\"\nname = \"codex@example.com\"\n" +
		"refresh_token = \"" + secretRefresh + "\"\ntoken_url = \"" + h.as.srv.URL + "/token\"\nchatgpt_account_id = \"ws-login-1\"\n"
	checkFile(t, path, want)
	if msg := h.errOut.String(); !strings.Contains(msg, `eval "$(ccrelay env codex --write-codex-config)"`) {
		t.Errorf("output lacks the env hint:\n%s", msg)
	}
}
