package list

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
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
