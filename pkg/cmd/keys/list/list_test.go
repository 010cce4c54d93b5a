package list

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// keys list shows each key's spending from the stored cost of its requests
// (rolled up or not), in its own time zone, its tokens today and last use,
// and never a key's value.
func TestList(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[[keys]]
name = "alice"
key = "alice-secret-key-0123456789"
daily_usd = 2
models = ["claude-*"]

[[keys]]
name = "bob"
key_sha256 = "` + usage.HashKey("bob-secret-key-0123456789") + `"
timezone = "Asia/Kathmandu"
concurrency = 3
`))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC) // 17:45 in Kathmandu
	ctx := context.Background()
	rec := func(key, name string, at time.Time, cost int64) usage.Record {
		return usage.Record{Time: at, KeyHash: usage.HashKey(key), KeyName: name, AccountID: "a", Platform: "claude", Model: "claude-sonnet-4-5",
			Usage: provider.Usage{InputTokens: 10, OutputTokens: 5}, Status: 200, CostMicros: cost, CostKnown: true}
	}
	if err := db.InsertUsage(ctx, []usage.Record{
		rec("alice-secret-key-0123456789", "alice", now.Add(-30*time.Hour), 1_000_000), // yesterday: this week
		rec("alice-secret-key-0123456789", "alice", now.Add(-3*time.Hour), 250_000),
		rec("bob-secret-key-0123456789", "bob", time.Date(2026, 3, 10, 18, 14, 0, 0, time.UTC), 7), // the day before, in Kathmandu
		rec("bob-secret-key-0123456789", "bob", time.Date(2026, 3, 10, 18, 16, 0, 0, time.UTC), 40),
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.Maintain(ctx, db, 90*24*time.Hour, now); err != nil { // rolled up
		t.Fatal(err)
	}
	if err := db.InsertUsage(ctx, []usage.Record{rec("alice-secret-key-0123456789", "alice", now.Add(-time.Minute), 500_000)}); err != nil { // raw
		t.Fatal(err)
	}
	run := func(asJSON bool) string {
		ios, _, out, _ := iostreams.Test()
		err := listRun(&Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, DB: func() (*store.DB, error) { return db, nil },
			Now: func() time.Time { return now }, JSON: asJSON})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	var keys []Key
	if err := json.Unmarshal([]byte(run(true)), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
	alice, bob := keys[0], keys[1]
	if alice.Day.SpentUSD != 0.75 || alice.Week.SpentUSD != 1.75 || alice.Day.BudgetUSD == nil || *alice.Day.BudgetUSD != 2 ||
		alice.TokensToday != 30 || alice.LastUsed == nil || !alice.LastUsed.Equal(now.Add(-time.Minute)) {
		t.Fatalf("alice: %+v", alice)
	}
	if bob.Day.SpentUSD != 0.00004 || bob.Month.SpentUSD != 0.000047 || !bob.HashOnly || bob.Concurrency != 3 || bob.TokensToday != 15 {
		t.Fatalf("bob: %+v", bob)
	}
	table := run(false)
	if !strings.Contains(table, "alice") || !strings.Contains(table, "$0.75/$2.00") {
		t.Fatalf("table:\n%s", table)
	}
	for _, out := range []string{table, run(true)} {
		if strings.Contains(out, "secret-key") {
			t.Fatal("a key's value is shown")
		}
	}
}

// Without [[keys]], keys list says which relay keys there are: the unnamed
// ones of api_keys, or none (protected mode, or allow_unauthenticated).
func TestListWithoutNamedKeys(t *testing.T) {
	tests := []struct {
		name, toml string
		want       string
	}{
		{"api_keys", `api_keys = ["relay-key-0123456789", "relay-key-9876543210"]`, "api_keys holds 2 unnamed relay key(s)"},
		{"no key", ``, "no relay key configured: protected mode"},
		{"allow_unauthenticated", `allow_unauthenticated = true`, "allow_unauthenticated = true the relay serves every client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			ios, _, out, errOut := iostreams.Test()
			err = listRun(&Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil },
				DB: func() (*store.DB, error) { return nil, nil }, Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() != 0 || !strings.Contains(errOut.String(), tt.want) || strings.Contains(errOut.String(), "relay-key-") {
				t.Errorf("stdout %q stderr %q, want %q", out, errOut, tt.want)
			}
		})
	}
}
