package store

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Budgets are seeded from the rollups (whole hours) plus raw rows (the
// partial hour where a window starts, and rows not rolled up yet), with the
// cost stored per request. For keys in UTC, Asia/Kathmandu (+5:45) and
// America/New_York the seeded day, week and month equal the sums of the
// known records, to the millisecond at each window's start. Once raw rows
// older than a window's start are pruned, a window starting on the hour is
// still exact (from the rollups alone) and one starting off the hour reads
// its first hour whole.
func TestSeedFromRollupsAndRawRows(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC) // a Wednesday
	zones := []string{"UTC", "Asia/Kathmandu", "America/New_York"}
	var keys []config.KeyConfig
	var recs []usage.Record
	rng := rand.New(rand.NewPCG(7, 7))
	add := func(hash, name string, at time.Time) {
		r := usage.Record{Time: at, KeyHash: hash, KeyName: name, AccountID: "acct-1", Platform: "claude", Model: "claude-sonnet-4-5",
			Usage:  provider.Usage{InputTokens: rng.Int64N(1000), OutputTokens: rng.Int64N(100), CacheCreationTokens: rng.Int64N(50), CacheReadTokens: rng.Int64N(500)},
			Status: 200, Attempts: 1}
		if rng.IntN(5) > 0 { // some have no price: they add tokens, not dollars
			r.CostKnown, r.CostMicros = true, 1+rng.Int64N(100000)
		}
		recs = append(recs, r)
	}
	for i, zone := range zones {
		secret := "key-" + zone
		keys = append(keys, config.KeyConfig{Name: "k" + string(rune('a'+i)), Key: secret, Timezone: zone, QueueSeconds: 30})
		hash, name := usage.HashKey(secret), keys[i].Name
		loc, _ := time.LoadLocation(zone)
		for w := policy.Window(0); w < 3; w++ {
			start, _ := policy.Bounds(w, now, loc)
			for _, d := range []time.Duration{-time.Hour, -time.Millisecond, 0, time.Millisecond, 14 * time.Minute, 59 * time.Minute} {
				add(hash, name, start.Add(d))
			}
		}
		for j := 0; j < 300; j++ { // the last 50 days
			add(hash, name, now.Add(-time.Duration(rng.Int64N(int64(50*24*time.Hour)))).Truncate(time.Millisecond))
		}
		add(hash, name, now.Add(-time.Minute)) // the latest, not rolled up
	}
	// Most rows rolled up; the last two hours' rows stay raw above rolled_id.
	var old, recent []usage.Record
	for _, r := range recs {
		if r.Time.Before(now.Add(-2 * time.Hour)) {
			old = append(old, r)
		} else {
			recent = append(recent, r)
		}
	}
	if err := db.InsertUsage(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := Maintain(ctx, db, 90*24*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertUsage(ctx, recent); err != nil {
		t.Fatal(err)
	}

	// want sums the records of key i at or after from; with pruned set,
	// those of the hour holding from too (read whole from the rollups).
	want := func(i int, from time.Time, wholeHour bool) (cost, tokens int64) {
		hash := usage.HashKey(keys[i].Key)
		if wholeHour {
			from = from.Truncate(time.Hour)
		}
		for _, r := range recs {
			if r.KeyHash == hash && !r.Time.Before(from) {
				if r.CostKnown {
					cost += r.CostMicros
				}
				tokens += r.InputTokens + r.OutputTokens + r.CacheCreationTokens + r.CacheReadTokens
			}
		}
		return cost, tokens
	}
	check := func(t *testing.T, cutoff time.Time) {
		p, err := policy.New(policy.Options{Keys: keys, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Seed(ctx, db); err != nil {
			t.Fatal(err)
		}
		for i, st := range p.Status() {
			loc, _ := time.LoadLocation(zones[i])
			for w := policy.Window(0); w < 3; w++ {
				start, _ := policy.Bounds(w, now, loc)
				cost, tokens := want(i, start, start.Before(cutoff))
				if st.Spent[w] != cost {
					t.Errorf("%s %s: seeded %d micro-dollars; the records sum to %d", zones[i], w, st.Spent[w], cost)
				}
				if w == policy.Day && st.Tokens != tokens {
					t.Errorf("%s: seeded %d tokens today; the records sum to %d", zones[i], st.Tokens, tokens)
				}
			}
			if !st.LastUsed.Equal(now.Add(-time.Minute)) {
				t.Errorf("%s: last used %s; want %s", zones[i], st.LastUsed, now.Add(-time.Minute))
			}
		}
	}
	t.Run("raw rows kept", func(t *testing.T) { check(t, time.Time{}) })

	// Prune every raw row more than a day old (rolled up already): the
	// windows starting before the cutoff read the rollups.
	cutoff := now.Add(-24 * time.Hour)
	if err := Maintain(ctx, db, 24*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.conn().QueryRow(`SELECT COUNT(*) FROM usage_stats WHERE ts_ms < ?`, cutoff.UnixMilli()).Scan(&n); err != nil || n != 0 {
		t.Fatalf("raw rows before the cutoff: %d, %v", n, err)
	}
	t.Run("raw rows pruned", func(t *testing.T) { check(t, cutoff) })
}

// TestKeyUsageQueryPlans: the last-use queries search by index, never scan
// the table (KeySpendSince runs the usage queries TestUsageQueryPlans checks).
func TestKeyUsageQueryPlans(t *testing.T) {
	db := planDB(t)
	for _, q := range []struct {
		name, text string
		args       []any
	}{
		{"last hour", lastHourSQL, []any{1}},
		{"last tail", lastTailSQL, []any{1, 2}},
		{"last raw", lastRawSQL, []any{1, 2}},
	} {
		t.Run(q.name, func(t *testing.T) {
			plan := queryPlan(t, db.conn(), strings.ReplaceAll(q.text, "%s", "main"), q.args...)
			for _, d := range plan {
				if strings.HasPrefix(d, "SCAN ") && !strings.HasPrefix(d, "SCAN CONSTANT") {
					t.Errorf("full scan:\n%s", strings.Join(plan, "\n"))
				}
			}
		})
	}
}
