package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// UsageSource is where budgets are seeded from at start: usage per key,
// model and bucket since a time. internal/store implements it over the
// usage table (store.DB.KeyUsageSince).
type UsageSource interface {
	KeyUsageSince(ctx context.Context, since time.Time) ([]usage.KeyBucket, error)
}

// Coster prices a model's usage (internal/pricing implements it).
type Coster interface {
	Cost(model string, u provider.Usage) (int64, bool)
}

// SeedSince is the earliest time any key's current windows can start: the
// start of the month or week (whichever is earlier) in the zone furthest
// ahead of UTC.
func SeedSince(now time.Time) time.Time {
	m, _ := Bounds(Month, now, time.UTC)
	w, _ := Bounds(Week, now, time.UTC)
	if w.Before(m) {
		m = w
	}
	return m.Add(-14 * time.Hour)
}

// Seed loads the keys' spending in their current windows from src, pricing
// each bucket with c. Call it once before serving.
func (p *Policy) Seed(ctx context.Context, src UsageSource, c Coster) error {
	now := p.now()
	buckets, err := src.KeyUsageSince(ctx, SeedSince(now))
	if err != nil {
		return fmt.Errorf("seed key budgets from usage: %w", err)
	}
	for _, b := range buckets {
		k := p.byID[b.KeyHash]
		if k == nil {
			continue
		}
		cost, known := c.Cost(b.Model, b.Usage)
		if !known {
			cost = 0
		}
		tokens := b.InputTokens + b.OutputTokens + b.CacheCreationTokens + b.CacheReadTokens
		k.mu.Lock()
		k.roll(now)
		for w := range k.win {
			if !b.Start.Before(k.win[w].start) && b.Start.Before(k.win[w].end) {
				k.win[w].spent += cost
				if Window(w) == Day {
					k.tokens += tokens
				}
			}
		}
		if b.Last.After(k.lastUsed) {
			k.lastUsed = b.Last
		}
		k.mu.Unlock()
	}
	return nil
}

// KeyStatus is a snapshot of one key's rules and counters.
type KeyStatus struct {
	Name     string
	InFlight int
	Queued   int
	// Spent is micro-dollars in the current day, week and month.
	Spent [numWindows]int64
	// Budget is micro-dollars per window; 0 = none.
	Budget      [numWindows]int64
	Resets      [numWindows]time.Time
	Tokens      int64
	LastUsed    time.Time
	Enabled     bool
	ExpiresAt   time.Time
	RPM         int
	Concurrency int
}

// Status returns every named key's snapshot, in config order.
func (p *Policy) Status() []KeyStatus {
	now := p.now()
	var out []KeyStatus
	for _, k := range p.keys {
		if k.Name == "" {
			continue
		}
		k.mu.Lock()
		k.roll(now)
		s := KeyStatus{Name: k.Name, InFlight: k.inUse, Queued: len(k.waiters), Budget: k.budgetUSD, Tokens: k.tokens,
			LastUsed: k.lastUsed, Enabled: k.enabled, ExpiresAt: k.expires, RPM: k.rpm, Concurrency: k.conc}
		for w := range k.win {
			s.Spent[w], s.Resets[w] = k.win[w].spent, k.win[w].end
		}
		k.mu.Unlock()
		out = append(out, s)
	}
	return out
}
