package list

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestList(t *testing.T) {
	cfg, err := config.Parse([]byte(`[[accounts]]
type = "claude-oauth"
id = "max"
refresh_token = "sk-ant-ort01-secret-token"
[[accounts]]
type = "claude-api"
id = "api"
api_key = "sk-ant-api-secret"
priority = 50
[[accounts]]
type = "claude-api"
id = "off"
api_key = "sk-ant-api-secret2"
enabled = false
[accounts.proxy]
type = "socks5"
host = "127.0.0.1"
port = 1080
password = "proxy-secret"
`))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	ctx := context.Background()
	db.SaveCooldown(ctx, state.Cooldown{AccountID: "max", Kind: "token_invalid", Reason: "invalid_grant", Until: now.Add(time.Hour)})
	db.SaveCooldown(ctx, state.Cooldown{AccountID: "api", Model: "claude-opus", Kind: "quota_exhausted", Until: now.Add(time.Hour)})
	db.InsertUsage(ctx, []usage.Record{{Time: now, AccountID: "api", Status: 200}})
	db.SaveLastUsed(ctx, "api", now.Add(-2*time.Minute))
	db.SetAccountDisabled(ctx, "max", false)

	run := func(asJSON bool) string {
		ios, _, out, _ := iostreams.Test()
		err := listRun(&Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, DB: func() (*store.DB, error) { return db, nil }, Now: func() time.Time { return now }, JSON: asJSON})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := run(false)
	for _, want := range []string{"token_invalid", "ccrelay login claude --account max", "claude-opus cooling until", "disabled", "2m ago", "never"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	js := run(true)
	var sts []map[string]any
	if err := json.Unmarshal([]byte(js), &sts); err != nil || len(sts) != 3 {
		t.Fatalf("%v %s", err, js)
	}
	if sts[1]["state"] != "ready" || sts[2]["state"] != "disabled" || sts[2]["proxy"] != "socks5://127.0.0.1:1080" {
		t.Fatalf("%s", js)
	}
	db.SetAccountDisabled(ctx, "api", true)
	if js := run(true); !strings.Contains(js, "disabled through the admin API") {
		t.Fatalf("an account disabled through the admin API is not shown so:\n%s", js)
	}
	for _, secret := range []string{"secret-token", "api-secret", "proxy-secret"} {
		if strings.Contains(text+js, secret) {
			t.Fatalf("secret %q shown", secret)
		}
	}
}

func TestListShowsQuota(t *testing.T) {
	cfg, err := config.Parse([]byte("[[accounts]]\ntype = \"claude-oauth\"\nid = \"max\"\nrefresh_token = \"sk-ant-ort01-x\"\n" +
		"[[accounts]]\ntype = \"claude-api\"\nid = \"old\"\napi_key = \"k\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"none\"\napi_key = \"k\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.Local)
	ctx := context.Background()
	db.SaveQuota(ctx, "max", quota.Snapshot{Source: quota.SourceClaude, SeenAt: now.Add(-time.Minute), OverageStatus: "rejected", Windows: []quota.Window{
		{Name: "5h", Utilization: 0.62, Minutes: 300, ResetsAt: now.Add(2 * time.Hour), Status: "allowed"},
		{Name: "7d", Utilization: 0.14, Minutes: 10080, ResetsAt: now.Add(3 * 24 * time.Hour)},
	}})
	db.SaveQuota(ctx, "old", quota.Snapshot{Source: quota.SourceClaude, SeenAt: now.Add(-6 * time.Hour), Windows: []quota.Window{
		{Name: "5h", Utilization: 0.9, Minutes: 300, ResetsAt: now.Add(-time.Hour)},
	}})
	run := func(asJSON bool) string {
		ios, _, out, _ := iostreams.Test()
		err := listRun(&Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, DB: func() (*store.DB, error) { return db, nil }, Now: func() time.Time { return now }, JSON: asJSON})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := run(false)
	wantReset := now.Add(3 * 24 * time.Hour).Format("Mon 15:04")
	for _, want := range []string{"QUOTA", "5h ######.... 62% resets 14:00", "7d #......... 14% resets " + wantReset, "5h stale (90% seen 6h ago)"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	var sts []struct {
		ID    string `json:"id"`
		Quota *struct {
			SeenAt  time.Time `json:"seen_at"`
			Overage string    `json:"overage_status"`
			Windows []struct {
				Name        string    `json:"name"`
				Utilization float64   `json:"utilization"`
				Minutes     int       `json:"window_minutes"`
				ResetsAt    time.Time `json:"resets_at"`
				Stale       bool      `json:"stale"`
			} `json:"windows"`
		} `json:"quota"`
	}
	js := run(true)
	if err := json.Unmarshal([]byte(js), &sts); err != nil || len(sts) != 3 {
		t.Fatalf("%v %s", err, js)
	}
	q := sts[0].Quota
	if q == nil || !q.SeenAt.Equal(now.Add(-time.Minute)) || q.Overage != "rejected" || len(q.Windows) != 2 ||
		q.Windows[0].Utilization != 0.62 || q.Windows[0].Minutes != 300 || !q.Windows[0].ResetsAt.Equal(now.Add(2*time.Hour)) || q.Windows[0].Stale {
		t.Fatalf("json quota of max: %s", js)
	}
	if !sts[1].Quota.Windows[0].Stale || sts[2].Quota != nil {
		t.Fatalf("stale or absent numbers wrong: %s", js)
	}
}
