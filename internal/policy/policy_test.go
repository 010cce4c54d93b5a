package policy

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/testutil"
	"github.com/ccrelay/ccrelay/internal/usage"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newPolicy(t *testing.T, clk *clock, keys ...config.KeyConfig) *Policy {
	t.Helper()
	for i := range keys {
		if keys[i].QueueSeconds == 0 {
			keys[i].QueueSeconds = 30
		}
	}
	p, err := New(Options{Keys: keys, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptrBool(b bool) *bool { return &b }

func TestAdmitRules(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	p := newPolicy(t, clk,
		config.KeyConfig{Name: "off", Key: "k-off", Enabled: ptrBool(false)},
		config.KeyConfig{Name: "old", Key: "k-old", ExpiresAt: "2026-03-01"},
		config.KeyConfig{Name: "sonnet", Key: "k-sonnet", Models: []string{"claude-sonnet-*", "gpt-5*"}},
		config.KeyConfig{Name: "plain", Key: "k-plain"},
	)
	tests := []struct {
		key, model string
		status     int
		msg        string
	}{
		{"k-off", "claude-sonnet-4-5", 403, `relay key "off" is disabled`},
		{"k-old", "claude-sonnet-4-5", 403, `relay key "old" expired at 2026-03-01T00:00:00Z`},
		{"k-sonnet", "claude-opus-4-1", 403, `model "claude-opus-4-1" is not allowed for relay key "sonnet"`},
		{"k-sonnet", "claude-sonnet-4-5-20250929", 0, ""},
		{"k-sonnet", "gpt-5-codex", 0, ""},
		{"k-sonnet", "", 0, ""}, // listing models names none
		{"k-plain", "anything", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.model, func(t *testing.T) {
			k, ok := p.Authenticate(tt.key)
			if !ok {
				t.Fatal("key not found")
			}
			ref := p.Admit(context.Background(), k, tt.model)
			if tt.status == 0 {
				if ref != nil {
					t.Fatalf("refused: %v", ref)
				}
				p.Done(k, 0, true, 0)
				return
			}
			if ref == nil || ref.Status != tt.status || ref.Reason != Forbidden || ref.Message != tt.msg {
				t.Fatalf("refusal = %+v; want %d %q", ref, tt.status, tt.msg)
			}
			if strings.Contains(ref.Message, tt.key) {
				t.Fatal("the key's value is in the message")
			}
		})
	}
}

func TestRPM(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	p := newPolicy(t, clk, config.KeyConfig{Name: "r", Key: "k", RPM: 3})
	k, _ := p.Authenticate("k")
	for i := 0; i < 3; i++ {
		if ref := p.Admit(context.Background(), k, "m"); ref != nil {
			t.Fatalf("request %d refused: %v", i, ref)
		}
		p.Done(k, 0, true, 0)
	}
	ref := p.Admit(context.Background(), k, "m")
	if ref == nil || ref.Status != 429 || ref.Reason != RateLimited || ref.RetryAfter != 20*time.Second {
		t.Fatalf("4th request: %+v; want 429 retry after 20s", ref)
	}
	clk.add(20 * time.Second)
	if ref := p.Admit(context.Background(), k, "m"); ref != nil {
		t.Fatalf("after the retry-after: %v", ref)
	}
	p.Done(k, 0, true, 0)
}

func TestBudgetStopsAfterTheCrossingRequest(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 11, 23, 0, 0, 0, time.UTC)} // a Wednesday
	p := newPolicy(t, clk,
		config.KeyConfig{Name: "d", Key: "kd", DailyUSD: 1},
		config.KeyConfig{Name: "w", Key: "kw", WeeklyUSD: 2},
		config.KeyConfig{Name: "t", Key: "kt", DailyTokens: 100, Timezone: "Europe/Berlin"},
	)
	kd, _ := p.Authenticate("kd")
	for _, cost := range []int64{600_000, 399_999} { // 0.999999 spent: still under
		if ref := p.Admit(context.Background(), kd, "m"); ref != nil {
			t.Fatal(ref)
		}
		p.Done(kd, cost, true, 10)
	}
	if ref := p.Admit(context.Background(), kd, "m"); ref != nil {
		t.Fatalf("under budget but refused: %v", ref)
	}
	p.Done(kd, 500_000, true, 10) // crosses: it was served
	ref := p.Admit(context.Background(), kd, "m")
	if ref == nil || ref.Status != 429 || ref.Reason != OverBudget {
		t.Fatalf("after crossing: %+v", ref)
	}
	if !strings.Contains(ref.Message, "daily budget of $1.00") || !strings.Contains(ref.Message, "resets at 2026-03-12T00:00:00Z") || ref.RetryAfter != time.Hour {
		t.Fatalf("message %q, retry %s", ref.Message, ref.RetryAfter)
	}
	// An unknown cost charges nothing in dollars.
	kw, _ := p.Authenticate("kw")
	p.Admit(context.Background(), kw, "m")
	p.Done(kw, 5_000_000, false, 10)
	if ref := p.Admit(context.Background(), kw, "m"); ref != nil {
		t.Fatalf("unknown cost was charged: %v", ref)
	}
	p.Done(kw, 2_000_000, true, 0)
	clk.add(2 * time.Hour) // Thursday: the weekly budget still holds
	if ref := p.Admit(context.Background(), kw, "m"); ref == nil || !strings.Contains(ref.Message, "weekly budget") || !strings.Contains(ref.Message, "2026-03-16T00:00:00Z") {
		t.Fatalf("weekly: %+v", ref)
	}
	if ref := p.Admit(context.Background(), kd, "m"); ref != nil {
		t.Fatalf("a new day did not reset the daily budget: %v", ref)
	}
	p.Done(kd, 0, true, 0)
	// Token budget in Berlin: its day ends at 23:00 UTC.
	kt, _ := p.Authenticate("kt")
	p.Admit(context.Background(), kt, "m")
	p.Done(kt, 0, false, 100)
	if ref := p.Admit(context.Background(), kt, "m"); ref == nil || !strings.Contains(ref.Message, "100 tokens") || !strings.Contains(ref.Message, "2026-03-13T00:00:00+01:00") {
		t.Fatalf("tokens: %+v", ref)
	}
}

func TestConcurrencyQueueIsFIFO(t *testing.T) {
	clk := &clock{t: time.Now()}
	p := newPolicy(t, clk, config.KeyConfig{Name: "c", Key: "k", Concurrency: 1, QueueSeconds: 3600})
	k, _ := p.Authenticate("k")
	if ref := p.Admit(context.Background(), k, "m"); ref != nil {
		t.Fatal(ref)
	}
	order := make(chan int, 2)
	var wg sync.WaitGroup
	for i := 1; i <= 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ref := p.Admit(context.Background(), k, "m"); ref != nil {
				t.Error(ref)
				return
			}
			order <- i
		}()
		// Wait until the waiter is queued before starting the next one.
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("waiter %d to queue", i), func() bool {
			k.mu.Lock()
			defer k.mu.Unlock()
			return len(k.waiters) == i
		})
	}
	p.Done(k, 0, true, 0)
	if got := <-order; got != 1 {
		t.Fatalf("waiter %d served first", got)
	}
	p.Done(k, 0, true, 0)
	if got := <-order; got != 2 {
		t.Fatalf("waiter %d served second", got)
	}
	p.Done(k, 0, true, 0)
	wg.Wait()
	if s := p.Status()[0]; s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("after all: %+v", s)
	}

	// A waiter whose client goes away leaves the queue with a refusal.
	p.Admit(context.Background(), k, "m")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ref := p.Admit(ctx, k, "m"); ref == nil || ref.Status != 429 {
		t.Fatalf("cancelled waiter: %+v", ref)
	}
	if s := p.Status()[0]; s.Queued != 0 || s.InFlight != 1 {
		t.Fatalf("after a cancelled waiter: %+v", s)
	}
}

// fakeSource answers KeySpendSince from records: the sum of every record at
// or after since, as the store does exactly.
type fakeSource []fakeRecord

type fakeRecord struct {
	hash   string
	at     time.Time
	cost   int64
	tokens int64
}

func (f fakeSource) KeySpendSince(_ context.Context, since time.Time) ([]usage.KeySpend, error) {
	by := map[string]*usage.KeySpend{}
	var out []usage.KeySpend
	for _, r := range f {
		if r.at.Before(since) {
			continue
		}
		if by[r.hash] == nil {
			by[r.hash] = &usage.KeySpend{KeyHash: r.hash}
		}
		s := by[r.hash]
		s.Requests++
		s.CostMicros += r.cost
		s.Tokens += r.tokens
	}
	for _, s := range by {
		out = append(out, *s)
	}
	return out, nil
}

func (f fakeSource) KeyLastUsed(_ context.Context, since time.Time, _ []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for _, r := range f {
		if !r.at.Before(since) && r.at.After(out[r.hash]) {
			out[r.hash] = r.at
		}
	}
	return out, nil
}

func TestSeedFromUsage(t *testing.T) {
	now := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	p := newPolicy(t, clk, config.KeyConfig{Name: "s", Key: "k", DailyUSD: 1, MonthlyUSD: 3, DailyTokens: 1000})
	id := usage.HashKey("k")
	src := fakeSource{
		{hash: id, at: now.Add(-time.Hour), cost: 400_000, tokens: 40},
		{hash: id, at: now.Add(-48 * time.Hour), cost: 2_000_000, tokens: 7},
		{hash: usage.HashKey("other"), at: now, cost: 9_000_000},
	}
	if err := p.Seed(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	s := p.Status()[0]
	if s.Spent[Day] != 400_000 || s.Spent[Month] != 2_400_000 || s.Tokens != 40 || !s.LastUsed.Equal(now.Add(-time.Hour)) {
		t.Fatalf("seeded %+v", s)
	}
	k, _ := p.Authenticate("k")
	p.Admit(context.Background(), k, "m")
	p.Done(k, 600_000, true, 0) // month reaches 3.0
	if ref := p.Admit(context.Background(), k, "m"); ref == nil || !strings.Contains(ref.Message, "daily") {
		t.Fatalf("%+v", ref)
	}
}

// Seeding sums each window from its own start in the key's zone, also in a
// zone whose offset is not whole hours.
func TestSeedWindowsInTheKeysZone(t *testing.T) {
	now := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC) // 17:45 in Kathmandu
	clk := &clock{t: now}
	p := newPolicy(t, clk,
		config.KeyConfig{Name: "ktm", Key: "k1", DailyUSD: 100, Timezone: "Asia/Kathmandu"},
		config.KeyConfig{Name: "nyc", Key: "k2", DailyUSD: 100, Timezone: "America/New_York"})
	ktmDay := time.Date(2026, 3, 10, 18, 15, 0, 0, time.UTC) // Kathmandu midnight
	nycDay := time.Date(2026, 3, 11, 4, 0, 0, 0, time.UTC)   // New York midnight (EDT)
	h1, h2 := usage.HashKey("k1"), usage.HashKey("k2")
	src := fakeSource{
		{hash: h1, at: ktmDay.Add(-time.Millisecond), cost: 1}, // yesterday there
		{hash: h1, at: ktmDay, cost: 10},
		{hash: h1, at: ktmDay.Add(30 * time.Minute), cost: 100},
		{hash: h2, at: nycDay.Add(-time.Minute), cost: 1},
		{hash: h2, at: nycDay, cost: 1000},
	}
	if err := p.Seed(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if st[0].Spent[Day] != 110 || st[1].Spent[Day] != 1000 {
		t.Fatalf("daily: ktm %d (want 110), nyc %d (want 1000)", st[0].Spent[Day], st[1].Spent[Day])
	}
	if st[0].Spent[Month] != 111 || st[1].Spent[Month] != 1001 {
		t.Fatalf("monthly: ktm %d, nyc %d", st[0].Spent[Month], st[1].Spent[Month])
	}
}

// A reload keeps the counters of keys whose ID is unchanged: requests in
// flight and queued, rpm, budgets, last use. A request admitted before the
// reload and finished after it frees its slot for a waiter.
func TestUpdateKeepsCounters(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	kc := config.KeyConfig{Name: "a", Key: "ka", Concurrency: 1, QueueSeconds: 3600, RPM: 3, DailyUSD: 1}
	p := newPolicy(t, clk, kc)
	old, _ := p.Authenticate("ka")
	if ref := p.Admit(context.Background(), old, "m"); ref != nil {
		t.Fatal(ref)
	}
	p.Done(old, 300_000, true, 5)
	if ref := p.Admit(context.Background(), old, "m"); ref != nil { // in flight across the reload
		t.Fatal(ref)
	}
	waited := make(chan *Refusal, 1)
	go func() { waited <- p.Admit(context.Background(), old, "m") }()
	waitQueued(t, p, "a", 1)

	kc.Models = []string{"claude-*"} // a rule changes; the ID does not
	if err := p.Update(Options{Keys: []config.KeyConfig{kc, {Name: "b", Key: "kb", QueueSeconds: 30}}}); err != nil {
		t.Fatal(err)
	}
	k, _ := p.Authenticate("ka")
	if k == old {
		t.Fatal("the reload did not build a new key")
	}
	if s := p.Status()[0]; s.InFlight != 1 || s.Queued != 1 || s.Spent[Day] != 300_000 || s.Tokens != 5 {
		t.Fatalf("after the reload: %+v", s)
	}
	if ref := p.Admit(context.Background(), k, "gpt-5"); ref == nil || ref.Status != 403 {
		t.Fatalf("the new model list is not in force: %+v", ref)
	}
	p.Done(old, 0, true, 0) // the request admitted before the reload ends
	if ref := <-waited; ref != nil {
		t.Fatalf("the waiter was not served: %v", ref)
	}
	// rpm 3: three admitted (one before, two across the reload).
	if ref := p.Admit(context.Background(), k, "claude-x"); ref == nil || ref.Reason != RateLimited || !strings.Contains(ref.Message, "per minute") {
		t.Fatalf("rpm reset by the reload: %+v", ref)
	}
	p.Done(k, 800_000, true, 0) // the waiter's request ends; the budget is crossed
	clk.add(time.Minute)
	if ref := p.Admit(context.Background(), k, "claude-x"); ref == nil || ref.Reason != OverBudget {
		t.Fatalf("budget reset by the reload: %+v", ref)
	}
	if s := p.Status()[0]; s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("at the end: %+v", s)
	}
	if _, ok := p.Authenticate("kb"); !ok {
		t.Fatal("the added key is not known")
	}
	if err := p.Update(Options{Keys: []config.KeyConfig{{Name: "b", Key: "kb", QueueSeconds: 30}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Authenticate("ka"); ok {
		t.Fatal("a removed key still authenticates")
	}
	if p.KeyByName("a") != nil || len(p.Named()) != 1 {
		t.Fatal("a removed key is still listed")
	}
}

func waitQueued(t *testing.T, p *Policy, name string, n int) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%d requests of %s queued", n, name), func() bool {
		for _, s := range p.Status() {
			if s.Name == name && s.Queued == n {
				return true
			}
		}
		return false
	})
}

// Lowering a concurrency limit holds waiters until the requests in flight
// fall below it; raising it wakes them at once; removing it wakes all.
func TestUpdateConcurrencyLimit(t *testing.T) {
	clk := &clock{t: time.Now()}
	kc := config.KeyConfig{Name: "c", Key: "k", Concurrency: 2, QueueSeconds: 3600}
	p := newPolicy(t, clk, kc)
	k, _ := p.Authenticate("k")
	for i := 0; i < 2; i++ {
		if ref := p.Admit(context.Background(), k, "m"); ref != nil {
			t.Fatal(ref)
		}
	}
	served := make(chan *Refusal, 3)
	for i := 1; i <= 3; i++ {
		go func() { served <- p.Admit(context.Background(), k, "m") }()
		waitQueued(t, p, "c", i)
	}
	kc.Concurrency = 1
	if err := p.Update(Options{Keys: []config.KeyConfig{kc}}); err != nil {
		t.Fatal(err)
	}
	p.Done(k, 0, true, 0) // 1 in flight = the new limit: nobody moves
	if s := p.Status()[0]; s.InFlight != 1 || s.Queued != 3 {
		t.Fatalf("after lowering to 1 and one done: %+v", s)
	}
	p.Done(k, 0, true, 0) // 0 in flight: the first waiter goes
	if ref := <-served; ref != nil {
		t.Fatal(ref)
	}
	if s := p.Status()[0]; s.InFlight != 1 || s.Queued != 2 {
		t.Fatalf("after the second done: %+v", s)
	}
	kc.Concurrency = 3 // raising wakes two more
	if err := p.Update(Options{Keys: []config.KeyConfig{kc}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if ref := <-served; ref != nil {
			t.Fatal(ref)
		}
	}
	if s := p.Status()[0]; s.InFlight != 3 || s.Queued != 0 {
		t.Fatalf("after raising to 3: %+v", s)
	}
	for i := 0; i < 3; i++ {
		p.Done(k, 0, true, 0)
	}
	if s := p.Status()[0]; s.InFlight != 0 {
		t.Fatalf("at the end: %+v", s)
	}
}

// Keys new to a reload are seeded from the usage source before they serve;
// a key moved to another time zone gets its windows in the new zone.
func TestUpdateSeedsNewKeys(t *testing.T) {
	now := time.Date(2026, 3, 11, 2, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	a := config.KeyConfig{Name: "a", Key: "ka", DailyUSD: 1}
	p := newPolicy(t, clk, a)
	src := fakeSource{
		{hash: usage.HashKey("kb"), at: now.Add(-time.Hour), cost: 700_000},
		{hash: usage.HashKey("ka"), at: now.Add(-3 * time.Hour), cost: 50}, // yesterday in UTC, today in New York
	}
	a.Timezone = "America/New_York"
	n, err := p.Prepare(Options{Keys: []config.KeyConfig{a, {Name: "b", Key: "kb", DailyUSD: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Seed(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Authenticate("kb"); ok {
		t.Fatal("a prepared key serves before its commit")
	}
	n.Commit()
	st := p.Status()
	if st[0].Spent[Day] != 50 || st[1].Spent[Day] != 700_000 {
		t.Fatalf("seeded on reload: a %d (want 50), b %d (want 700000)", st[0].Spent[Day], st[1].Spent[Day])
	}
	if !st[0].Resets[Day].Equal(time.Date(2026, 3, 11, 4, 0, 0, 0, time.UTC)) {
		t.Fatalf("a's day ends %s; want midnight in New York (04:00 UTC)", st[0].Resets[Day])
	}
	// An api_keys entry that becomes a named key with a budget is seeded
	// (as an unnamed key it counted nothing).
	p2 := newPolicy(t, clk)
	if err := p2.Update(Options{APIKeys: []string{"kb"}}); err != nil {
		t.Fatal(err)
	}
	n, err = p2.Prepare(Options{Keys: []config.KeyConfig{{Name: "b", Key: "kb", DailyUSD: 1, QueueSeconds: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Seed(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	n.Commit()
	if s := p2.Status()[0]; s.Spent[Day] != 700_000 {
		t.Fatalf("api_keys entry named: spent %d; want 700000", s.Spent[Day])
	}
}

// A charge that takes spending past 80% and then 100% of a budget reports
// each once; a new window re-arms them; seeded spending does not report.
func TestBudgetCrossings(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	var got []BudgetCrossing
	p, err := New(Options{Now: clk.now, OnBudget: func(c BudgetCrossing) { got = append(got, c) },
		Keys: []config.KeyConfig{{Name: "a", Key: "ka", DailyUSD: 1, WeeklyUSD: 10, DailyTokens: 100, QueueSeconds: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.Authenticate("ka")
	charge := func(cost, tokens int64) {
		t.Helper()
		if ref := p.Admit(context.Background(), k, "m"); ref != nil {
			t.Fatal(ref)
		}
		p.Done(k, cost, true, tokens)
	}
	charge(700_000, 10) // 70%
	if len(got) != 0 {
		t.Fatalf("below 80%%: %+v", got)
	}
	charge(100_000, 75) // 80% of the day, 85% of the tokens
	charge(100_000, 0)  // 90%: nothing new
	want := []BudgetCrossing{{Key: "a", Budget: "daily", Threshold: 80, Used: 0.8}, {Key: "a", Budget: "daily tokens", Threshold: 80, Used: 0.85}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("at 80%%: %+v", got)
	}
	got = nil
	charge(150_000, 0) // 105%
	if len(got) != 1 || got[0].Budget != "daily" || got[0].Threshold != 100 {
		t.Fatalf("at 100%%: %+v", got)
	}
	got = nil
	clk.add(24 * time.Hour) // a new day: re-armed
	charge(900_000, 0)
	if len(got) != 1 || got[0].Budget != "daily" || got[0].Threshold != 80 {
		t.Fatalf("the next day: %+v", got)
	}
	// Seeded spending past a threshold is recorded, not reported.
	got = nil
	p2, _ := New(Options{Now: clk.now, OnBudget: func(c BudgetCrossing) { got = append(got, c) },
		Keys: []config.KeyConfig{{Name: "a", Key: "ka", DailyUSD: 1, QueueSeconds: 30}}})
	if err := p2.Seed(context.Background(), fakeSource{{hash: usage.HashKey("ka"), at: clk.now(), cost: 850_000}}); err != nil {
		t.Fatal(err)
	}
	k2, _ := p2.Authenticate("ka")
	p2.Admit(context.Background(), k2, "m")
	p2.Done(k2, 10_000, true, 0)
	if len(got) != 0 {
		t.Fatalf("a seeded crossing was reported: %+v", got)
	}
}

// A request that queued for a slot reports its wait.
func TestQueueWaitReported(t *testing.T) {
	clk := &clock{t: time.Now()}
	waits := make(chan time.Duration, 2)
	p, err := New(Options{Now: clk.now, OnQueueWait: func(key string, d time.Duration) {
		if key == "c" {
			waits <- d
		}
	}, Keys: []config.KeyConfig{{Name: "c", Key: "k", Concurrency: 1, QueueSeconds: 3600}}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.Authenticate("k")
	p.Admit(context.Background(), k, "m") // not queued: no report
	done := make(chan struct{})
	go func() { p.Admit(context.Background(), k, "m"); close(done) }()
	waitQueued(t, p, "c", 1)
	clk.add(3 * time.Second)
	p.Done(k, 0, true, 0)
	<-done
	if d := <-waits; d != 3*time.Second {
		t.Fatalf("wait %s; want 3s", d)
	}
	if len(waits) != 0 {
		t.Fatal("an unqueued request reported a wait")
	}
}

func TestBrake(t *testing.T) {
	clk := &clock{t: time.Now()}
	b := NewBrake(20, clk.now)
	a := netip.MustParseAddr("203.0.113.9")
	other := netip.MustParseAddr("203.0.113.10")
	for i := 0; i < 20; i++ {
		if w := b.Blocked(a); w != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		b.Fail(a)
	}
	if w := b.Blocked(a); w != 3*time.Second {
		t.Fatalf("after 20 failures: wait %s, want 3s", w)
	}
	if b.Blocked(other) != 0 {
		t.Fatal("another address is braked too")
	}
	clk.add(3 * time.Second)
	if w := b.Blocked(a); w != 0 {
		t.Fatalf("after the wait: %s", w)
	}
}

// BenchmarkAdmitDone is a request's whole policy cost (authenticate, admit,
// done) with 1,000 keys that all have every limit and budget, against
// api_keys only.
func BenchmarkAdmitDone(b *testing.B) {
	var keys []config.KeyConfig
	for i := 0; i < 1000; i++ {
		keys = append(keys, config.KeyConfig{Name: "k" + strconv.Itoa(i), Key: "relay-key-" + strconv.Itoa(i), Models: []string{"claude-*"}, RPM: 1 << 20,
			Concurrency: 1000, QueueSeconds: 30, DailyUSD: 1e6, WeeklyUSD: 1e6, MonthlyUSD: 1e6, DailyTokens: 1 << 60})
	}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"1000-limited-keys", Options{Keys: keys}},
		{"api_keys", Options{APIKeys: []string{"relay-key-499", "relay-key-500"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := New(bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				k, _ := p.Authenticate("relay-key-500")
				if ref := p.Admit(context.Background(), k, "claude-sonnet-4-5"); ref != nil {
					b.Fatal(ref)
				}
				p.Done(k, 100, true, 10)
			}
		})
	}
}

// Requests queued under a key that a reload disables or removes are
// refused at once (403 naming why); the one in flight finishes.
func TestUpdateRefusesQueuedOfDisabledOrRemovedKeys(t *testing.T) {
	clk := &clock{t: time.Now()}
	a := config.KeyConfig{Name: "a", Key: "ka", Concurrency: 1, QueueSeconds: 3600}
	b := config.KeyConfig{Name: "b", Key: "kb", Concurrency: 1, QueueSeconds: 3600}
	p := newPolicy(t, clk, a, b)
	queued := map[string]chan *Refusal{}
	for _, name := range []string{"a", "b"} {
		k, _ := p.Authenticate("k" + name)
		if ref := p.Admit(context.Background(), k, "m"); ref != nil {
			t.Fatal(ref)
		}
		ch := make(chan *Refusal, 1)
		queued[name] = ch
		go func() { ch <- p.Admit(context.Background(), k, "m") }()
		waitQueued(t, p, name, 1)
	}
	a.Enabled = ptrBool(false)
	if err := p.Update(Options{Keys: []config.KeyConfig{a}}); err != nil { // a disabled, b removed
		t.Fatal(err)
	}
	if ref := <-queued["a"]; ref == nil || ref.Status != 403 || ref.Message != `relay key "a" is disabled` {
		t.Fatalf("queued under the disabled key: %+v", ref)
	}
	if ref := <-queued["b"]; ref == nil || ref.Status != 403 || ref.Message != `relay key "b" was removed from the config` {
		t.Fatalf("queued under the removed key: %+v", ref)
	}
	if s := p.Status()[0]; s.InFlight != 1 || s.Queued != 0 {
		t.Fatalf("a after the reload: %+v", s)
	}
	k, _ := p.Authenticate("ka")
	p.Done(k, 0, true, 0) // the request in flight ends
	if s := p.Status()[0]; s.InFlight != 0 {
		t.Fatalf("a at the end: %+v", s)
	}
}

// Requests admitted together reserve their estimated cost, so a dollar
// budget refuses the next one once spending plus reservations reach it:
// parallel requests pass a budget by about one request's cost, not by all
// of them (issue 31, item 5). The real cost settles each reservation.
func TestReservationsHoldParallelRequests(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 11, 23, 0, 0, 0, time.UTC)}
	p := newPolicy(t, clk, config.KeyConfig{Name: "b", Key: "b-key-0123456789", DailyUSD: 0.01})
	k := p.KeyByName("b")
	ctx := context.Background()
	const est = 4000 // micro-dollars: $0.004 a request
	served := 0
	for range 40 { // 40 requests in flight at once: none has finished
		if p.Admit(ctx, k, "m") != nil {
			continue
		}
		if ref := p.Reserve(k, est, true, "m"); ref != nil {
			if ref.Reason != OverBudget || !strings.Contains(ref.Message, "reserved by requests in flight") {
				t.Fatalf("refusal %+v", ref)
			}
			p.Done(k, 0, true, 0)
			continue
		}
		served++
	}
	if served != 3 { // 0, 0.004, 0.008 < 0.01: the third passes the budget by at most its own cost
		t.Fatalf("%d requests admitted against a $0.01 budget at $0.004 each", served)
	}
	// They end: each releases its reservation and is charged its real cost.
	for range served {
		p.Release(k, est)
		p.Done(k, 1000, true, 10)
	}
	if p.Admit(ctx, k, "m") != nil {
		t.Fatal("refused after the reservations settled at $0.003 in all")
	}
	if ref := p.Reserve(k, est, true, "m"); ref != nil {
		t.Fatalf("refused with $0.003 spent: %v", ref)
	}
	// A model with no price cannot be charged to a dollar budget.
	if ref := p.Reserve(k, 0, false, "mystery-1"); ref == nil || ref.Status != 403 || !strings.Contains(ref.Message, `no price`) || !strings.Contains(ref.Message, `[prices."mystery-1"]`) {
		t.Fatalf("unpriced model: %+v", ref)
	}
	// A key without a dollar budget reserves nothing and refuses nothing.
	p2 := newPolicy(t, clk, config.KeyConfig{Name: "free", Key: "free-key-0123456789", RPM: 1000})
	if ref := p2.Reserve(p2.KeyByName("free"), 1<<40, false, "mystery-1"); ref != nil {
		t.Fatal(ref)
	}
}
