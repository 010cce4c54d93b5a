package policy

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
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
		for {
			k.mu.Lock()
			n := len(k.waiters)
			k.mu.Unlock()
			if n == i {
				break
			}
			time.Sleep(time.Millisecond)
		}
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

type fakeSource []usage.KeyBucket

func (f fakeSource) KeyUsageSince(context.Context, time.Time) ([]usage.KeyBucket, error) {
	return f, nil
}

type flatCost int64

func (f flatCost) Cost(model string, u provider.Usage) (int64, bool) {
	return int64(f) * u.OutputTokens, model != "unpriced"
}

func TestSeedFromUsage(t *testing.T) {
	now := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	p := newPolicy(t, clk, config.KeyConfig{Name: "s", Key: "k", DailyUSD: 1, MonthlyUSD: 3})
	id := usage.HashKey("k")
	src := fakeSource{
		{KeyHash: id, Model: "m", Start: now.Add(-time.Hour), Usage: provider.Usage{OutputTokens: 400_000}, Last: now.Add(-time.Hour)},
		{KeyHash: id, Model: "m", Start: now.Add(-48 * time.Hour), Usage: provider.Usage{OutputTokens: 2_000_000}},
		{KeyHash: id, Model: "unpriced", Start: now.Add(-time.Hour), Usage: provider.Usage{OutputTokens: 9_000_000}},
		{KeyHash: usage.HashKey("other"), Model: "m", Start: now, Usage: provider.Usage{OutputTokens: 9_000_000}},
	}
	if err := p.Seed(context.Background(), src, flatCost(1)); err != nil {
		t.Fatal(err)
	}
	s := p.Status()[0]
	if s.Spent[Day] != 400_000 || s.Spent[Month] != 2_400_000 || !s.LastUsed.Equal(now.Add(-time.Hour)) {
		t.Fatalf("seeded %+v", s)
	}
	k, _ := p.Authenticate("k")
	p.Admit(context.Background(), k, "m")
	p.Done(k, 600_000, true, 0) // month reaches 3.0
	if ref := p.Admit(context.Background(), k, "m"); ref == nil || !strings.Contains(ref.Message, "daily") {
		t.Fatalf("%+v", ref)
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

func BenchmarkAdmitDone(b *testing.B) {
	var keys []config.KeyConfig
	for i := 0; i < 1000; i++ {
		keys = append(keys, config.KeyConfig{Name: "k" + strconv.Itoa(i), Key: "relay-key-" + strconv.Itoa(i), Models: []string{"claude-*"}, RPM: 1 << 20,
			Concurrency: 1000, QueueSeconds: 30, DailyUSD: 1e6, WeeklyUSD: 1e6, MonthlyUSD: 1e6, DailyTokens: 1 << 60})
	}
	p, err := New(Options{Keys: keys})
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
}
