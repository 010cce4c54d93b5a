package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/list"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// `accounts list --json` reads the relay's database; with --server it asks
// the relay's admin API. Both print the same JSON, field for field, for
// accounts in every state: ready with subscription numbers, cooling down, a
// rejected Codex token (whose fix is `ccrelay login codex`, not claude), an
// API key's buckets, disabled in the config and disabled through the API.
func TestAccountsListLocalEqualsServer(t *testing.T) {
	_, quotaURL := claudeQuotaFake(t, "from quota", 0.8, 0.3, "allowed")
	limited := upstream(t, &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 429, Header: map[string]string{"Retry-After": "3600"},
			Body: `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`}
	}})
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	chatgpt := upstream(t, &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}).URL + "/backend-api/codex"
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + `admin_keys = ["` + adminKey + `"]` + "\n" +
		claudeAPIAccount("limited", limited.URL, "k-limited", 300) +
		claudeAPIAccount("quota", quotaURL, "k-quota", 200) + "groups = [\"team-a\"]\n" +
		claudeAPIAccount("off", quotaURL, "k-off", 100) + "enabled = false\n" +
		claudeAPIAccount("paused", quotaURL, "k-paused", 100) +
		codexAccount("cx-1", chatgpt, tokens.URL, "never-issued-refresh-token-xxxx", "ws-1", 100)
	r := startRelay(t, cfg)

	waitFor(t, 10*time.Second, "limited cools down and quota answers", func() bool {
		text, err := ask(t, r)
		return err == nil && text == "from quota" && cooldownOf(t, r, "limited").Kind != ""
	})
	oc := r.openaiClient("/v1")
	if _, err := oc.Responses.New(context.Background(), responsesParams("gpt-5")); err == nil {
		t.Fatal("a never-issued Codex refresh token served")
	}
	if cd := cooldownOf(t, r, "cx-1"); cd.Kind != "token_invalid" {
		t.Fatalf("cx-1 cooldown %+v", cd)
	}
	req, _ := http.NewRequest("POST", r.URL+"/admin/v1/accounts/paused/disable", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("disable: %v %v", resp, err)
	}

	var local, server []byte
	// The database catches up in the background (cooldowns, last use, the
	// quota snapshot, usage): wait until it has, then compare.
	waitFor(t, 10*time.Second, "accounts list --json equals accounts list --json --server", func() bool {
		local, server = listJSON(t, r, ""), listJSON(t, r, r.URL)
		return bytes.Equal(local, server)
	})
	var sts []map[string]any
	if err := json.Unmarshal(local, &sts); err != nil || len(sts) != 5 {
		t.Fatalf("%v\n%s", err, local)
	}
	byID := map[string]map[string]any{}
	for _, s := range sts {
		byID[s["id"].(string)] = s
	}
	want := map[string]string{"limited": "cooling_down", "quota": "ready", "off": "disabled", "paused": "disabled", "cx-1": "token_invalid"}
	for id, state := range want {
		if byID[id]["state"] != state {
			t.Errorf("%s: state %v, want %s", id, byID[id]["state"], state)
		}
	}
	if d := byID["cx-1"]["detail"].(string); !strings.Contains(d, "ccrelay login codex --account cx-1") {
		t.Errorf("cx-1 detail %q", d)
	}
	q, _ := byID["quota"]["quota"].(map[string]any)
	w, _ := q["windows"].([]any)
	if q["source"] != "claude" || q["representative_claim"] == nil || len(w) != 2 {
		t.Fatalf("quota %v", q)
	}
	if w0 := w[0].(map[string]any); w0["window_minutes"] != float64(300) || w0["resets_at"] == nil || w0["status"] == nil {
		t.Fatalf("5h window %v", w0)
	}
	if g := byID["quota"]["groups"].([]any); len(g) != 1 || g[0] != "team-a" {
		t.Errorf("groups %v", g)
	}
}

// listJSON runs `ccrelay accounts list --json` against the relay's config and
// database, or with --server against the relay.
func listJSON(t *testing.T, r *relayUT, server string) []byte {
	t.Helper()
	ios, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{
		IOStreams: ios,
		Config:    func() (*config.Config, error) { return r.App.Config, nil },
		DB:        func() (*store.DB, error) { return r.App.DB, nil },
		Getenv: func(k string) string {
			if k == "CCRELAY_ADMIN_KEY" {
				return adminKey
			}
			return ""
		},
	}
	args := []string{"--json"}
	if server != "" {
		args = append(args, "--server", server)
	}
	cmd := list.NewCmdList(f, nil)
	cmd.SetArgs(args)
	cmd.SetOut(ios.ErrOut)
	cmd.SetErr(ios.ErrOut)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
