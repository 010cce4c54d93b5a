package admin

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// A rejected credential is shown with the fix of the account's own type:
// the admin API (and so the dashboard) used to tell codex-oauth and
// claude-token accounts to run `ccrelay login claude`.
func TestAccountsRejectedCredentialNamesItsFix(t *testing.T) {
	accts := []*scheduler.Account{
		{ID: "cx", Type: "codex-oauth", Platform: "openai", Priority: 100, Enabled: true},
		{ID: "tok", Type: "claude-token", Platform: "claude", Priority: 100, Enabled: true},
		{ID: "max", Type: "claude-oauth", Platform: "claude", Priority: 100, Enabled: true, Index: 2},
	}
	s := scheduler.New(accts, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute}, nil, nil)
	t.Cleanup(s.Close)
	for _, a := range accts {
		s.Report(a.ID, provider.Verdict{Kind: provider.TokenInvalid, Reason: "401 from upstream"})
	}
	srv := httptest.NewServer(New(Options{Auth: NewAuth([]string{adminKey}, nil), Sched: s}))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	code, body := f.do(t, "GET", "/admin/v1/accounts", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	want := map[string]string{
		"cx":  "run: ccrelay login codex --account cx",
		"tok": "run: claude setup-token",
		"max": "run: ccrelay login claude --account max",
	}
	for _, a := range decode[AccountsResponse](t, body).Accounts {
		if a.State != StateTokenInvalid || !strings.Contains(a.Detail, want[a.ID]) {
			t.Errorf("%s: %s %q, want token_invalid with %q", a.ID, a.State, a.Detail, want[a.ID])
		}
	}
}
