package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/shared"
)

const setupToken = "sk-ant-oat01-long-lived-setup-token-abcdefgh"

func claudeTokenAccount(id, apiURL, token string, priority int) string {
	return fmt.Sprintf("[[accounts]]\ntype = \"claude-token\"\nid = %q\ntoken = %q\napi_url = %q\npriority = %d\n", id, token, apiURL, priority)
}

// A claude-token account serves Claude Code-shaped requests (streaming,
// ?beta=true, Claude Code's betas) with the token as Bearer and the OAuth
// beta added; no token endpoint is ever called.
func TestClaudeTokenServesClaudeCode(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	fake.Script = func(_ int, r *fakeupstream.Recorded) *fakeupstream.Reply {
		if r.Header.Get("Authorization") != "Bearer "+setupToken || r.Header.Get("X-Api-Key") != "" ||
			!strings.Contains(r.Header.Get("Anthropic-Beta"), "oauth-2025-04-20") {
			return &fakeupstream.Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"invalid bearer token"}}`}
		}
		return nil
	}
	api := upstream(t, fake).URL
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeTokenAccount("tok-1", api, setupToken, 100))

	c := r.anthropicClient(option.WithHeader("X-Claude-Code-Session-Id", "cc-session-1"), option.WithHeader("Anthropic-Beta", "claude-code-20250219"),
		option.WithQuery("beta", "true"))
	acc := streamMessage(t, c, newParams("claude-sonnet-4-5"))
	if len(acc.Content) == 0 || acc.Content[0].Text == "" {
		t.Fatalf("nothing streamed: %+v", acc)
	}
	got := fake.Requests()[0]
	if got.Header.Get("Anthropic-Beta") != "claude-code-20250219,oauth-2025-04-20" || !strings.Contains(got.RawQuery, "beta=true") {
		t.Fatalf("upstream request: %s beta %q", got.RawQuery, got.Header.Get("Anthropic-Beta"))
	}
	sts, err := shared.Statuses(context.Background(), r.App.Config, r.App.DB, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].Type != "claude-token" || sts[0].State != "ready" {
		t.Fatalf("accounts list: %+v", sts[0])
	}
}

// A 401 marks a claude-token account invalid, with the fix (claude
// setup-token), and the request fails over; the account is not tried again.
func TestClaudeToken401MarksInvalid(t *testing.T) {
	var calls atomic.Int32
	revoked := &fakeupstream.Anthropic{}
	revoked.Script = func(_ int, r *fakeupstream.Recorded) *fakeupstream.Reply {
		calls.Add(1)
		return &fakeupstream.Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"OAuth token has been revoked"}}`}
	}
	api := upstream(t, revoked).URL
	backup := &fakeupstream.Anthropic{Text: "from backup"}
	bu := upstream(t, backup)
	r := startRelay(t, claudeTokenAccount("tok-1", api, setupToken, 200)+claudeAPIAccount("backup", bu.URL, "k", 100))
	text, err := ask(t, r)
	if err != nil || text != "from backup" {
		t.Fatalf("%q %v", text, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the revoked token was sent %d times, want 1 (no retry with the same token)", n)
	}
	if cd := cooldownOf(t, r, "tok-1"); cd.Kind != "token_invalid" || !strings.Contains(cd.Reason, "claude setup-token") {
		t.Fatalf("cooldown %+v", cd)
	}
	sts := listedAs(t, r, "token_invalid")
	if !strings.Contains(sts[0].Detail, "claude setup-token") {
		t.Fatalf("status %+v", sts[0])
	}
	if strings.Contains(r.Logs.String(), setupToken) {
		t.Fatal("token in logs")
	}
}
