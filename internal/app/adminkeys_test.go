package app

import (
	"context"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
)

// The key list is the config in force merged by name with the policy's
// counters: a key the policy has not seen yet (added by a reload) shows its
// limits with nothing used; a key stored as key_sha256 shows no last 4.
func TestKeyListMergesConfigAndPolicy(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 30, 0, 0, time.UTC)
	off := false
	cfg := &config.Config{Keys: []config.KeyConfig{
		{Name: "alice", Key: "ccr-ALICE-0123456789wxyz", DailyUSD: 2, MonthlyUSD: 40, DailyTokens: 1000, RPM: 60, Models: []string{"claude-*"}, ExpiresAt: "2027-01-01"},
		{Name: "new", KeySHA256: "ab", Enabled: &off, WeeklyUSD: 10, Timezone: "Europe/Berlin"},
	}}
	resetDay := now.Add(5 * time.Hour)
	l := keyList{current: func() *config.Config { return cfg }, now: func() time.Time { return now },
		status: func() []policy.KeyStatus {
			return []policy.KeyStatus{{Name: "alice", InFlight: 2, Queued: 1, Spent: [3]int64{1_500_000, 0, 3_000_000}, Tokens: 400,
				Resets: [3]time.Time{resetDay, {}, {}}, LastUsed: now.Add(-time.Minute)}}
		}}
	keys, err := l.Keys(context.Background())
	if err != nil || len(keys) != 2 {
		t.Fatalf("%v %+v", err, keys)
	}
	a, n := keys[0], keys[1]
	if a.Name != "alice" || a.Last4 != "wxyz" || !a.Enabled || a.RPM != 60 || a.InFlight != 2 || a.Queued != 1 || a.LastUsed == nil || a.ExpiresAt == nil {
		t.Fatalf("alice: %+v", a)
	}
	want := []admin.Budget{
		{Window: "daily", Unit: "usd", Limit: 2, Used: 1.5},
		{Window: "monthly", Unit: "usd", Limit: 40, Used: 3},
		{Window: "daily", Unit: "tokens", Limit: 1000, Used: 400},
	}
	if len(a.Budgets) != len(want) {
		t.Fatalf("alice budgets %+v", a.Budgets)
	}
	for i, w := range want {
		b := a.Budgets[i]
		if b.Window != w.Window || b.Unit != w.Unit || b.Limit != w.Limit || b.Used != w.Used || b.ResetsAt == nil {
			t.Errorf("budget %d: %+v, want %+v", i, b, w)
		}
	}
	if !a.Budgets[0].ResetsAt.Equal(resetDay) || !a.Budgets[1].ResetsAt.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("resets: %v %v", a.Budgets[0].ResetsAt, a.Budgets[1].ResetsAt)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if n.Last4 != "" || n.Enabled || n.InFlight != 0 || n.LastUsed != nil || len(n.Budgets) != 1 || n.Budgets[0].Used != 0 ||
		!n.Budgets[0].ResetsAt.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, berlin)) {
		t.Fatalf("a key the policy does not know: %+v %+v", n, n.Budgets)
	}
}
