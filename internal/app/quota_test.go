package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/relay"
)

// Each subscription account type is probed at its own usage endpoint with
// its own credential: Claude OAuth at api/oauth/usage, ChatGPT for Codex at
// backend-api/wham/usage beside the Codex backend, with its account id.
// API-key and disabled accounts are not probed.
func TestProbeTargets(t *testing.T) {
	seen := map[string]http.Header{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen[r.URL.Path] = r.Header.Clone()
		switch r.URL.Path {
		case "/api/oauth/usage":
			fmt.Fprint(w, `{"five_hour":{"utilization":62,"resets_at":"2026-12-02T14:00:00Z"},"seven_day":{"utilization":14}}`)
		case "/backend-api/wham/usage":
			fmt.Fprint(w, `{"plan_type":"plus","rate_limit":{"primary_window":{"used_percent":30,"limit_window_seconds":18000,"reset_after_seconds":600}}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ups := []*relay.Upstream{
		{Config: config.AccountConfig{ID: "claude", Type: config.TypeClaudeOAuth, Enabled: true, APIURL: srv.URL}, Client: srv.Client(), Token: credential.Static("oauth-access")},
		{Config: config.AccountConfig{ID: "codex", Type: config.TypeCodexOAuth, Enabled: true, APIURL: srv.URL + "/backend-api/codex", ChatGPTAccountID: "acct-1"}, Client: srv.Client(), Token: credential.Static("chatgpt-access")},
		{Config: config.AccountConfig{ID: "key", Type: config.TypeClaudeAPI, Enabled: true, APIURL: srv.URL}, Client: srv.Client(), Token: credential.Static("sk")},
		{Config: config.AccountConfig{ID: "off", Type: config.TypeClaudeOAuth, Enabled: false, APIURL: srv.URL}, Client: srv.Client(), Token: credential.Static("x")},
		nil,
	}
	targets := probeTargets(ups)
	if len(targets) != 2 || targets[0].AccountID != "claude" || targets[1].AccountID != "codex" {
		t.Fatalf("targets %+v", targets)
	}
	want := map[string]string{"claude": "5h", "codex": "primary"}
	for _, tg := range targets {
		req, err := tg.NewRequest(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tg.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		snap, ok := tg.Parse(body, time.Now())
		if !ok || len(snap.Windows) == 0 || snap.Windows[0].Name != want[tg.AccountID] {
			t.Fatalf("%s: %d %s -> %+v", tg.AccountID, resp.StatusCode, body, snap)
		}
	}
	if h := seen["/api/oauth/usage"]; h.Get("Authorization") != "Bearer oauth-access" {
		t.Fatalf("claude probe headers %v", h)
	}
	if h := seen["/backend-api/wham/usage"]; h.Get("Authorization") != "Bearer chatgpt-access" || h.Get("Chatgpt-Account-Id") != "acct-1" {
		t.Fatalf("codex probe headers %v", h)
	}
}
