package credential

import (
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
)

// TestCodexType: a codex-oauth account refreshes as its type says (a JSON
// body with Codex CLI's client and its scope), and its log lines and its
// hint name its own type and login, not Claude's, whose request format it
// shares (it used to log oauth=claude, the style's name).
func TestCodexType(t *testing.T) {
	e := newEnv(t, Claude, true)
	cfg := e.cfg()
	cfg.Type = accounttype.Lookup("codex-oauth")
	o := e.newOAuth(cfg, nil)
	e.mustToken(o)
	e.ep.mu.Lock()
	fields := e.ep.fields
	ctype := e.ep.header.Get("Content-Type")
	e.ep.mu.Unlock()
	if ctype != "application/json" || fields["client_id"] != accounttype.CodexClientID || fields["scope"] != "openid profile email" {
		t.Fatalf("refresh request %s %v", ctype, fields)
	}

	// Revoked, and the 8 h token has run out.
	e.ep.set(func(ep *tokenEndpoint) { ep.live = map[string]bool{} })
	e.clock.Advance(9 * time.Hour)
	if _, err := e.token(o); err == nil {
		t.Fatal("a revoked refresh token refreshed")
	}
	if st, want := o.Status(), "run: ccrelay login codex --account "+acct; st.State != StateTokenInvalid || st.Hint != want {
		t.Fatalf("status %+v, want hint %q", st, want)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "type=codex-oauth") || strings.Contains(logs, "claude") {
		t.Fatalf("log lines do not name the type:\n%s", logs)
	}
}
