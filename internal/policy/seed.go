package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// UsageSource is where budgets are seeded from: what each relay key spent
// since a time, from the stored cost of each request (the price in force
// when it was served). internal/store implements it over the hourly
// rollups plus raw rows for the partial hours (store.DB.KeySpendSince).
type UsageSource interface {
	// KeySpendSince sums each key's usage since t, exactly (to the
	// millisecond) where raw rows are kept.
	KeySpendSince(ctx context.Context, since time.Time) ([]usage.KeySpend, error)
	// KeyLastUsed returns when each of the keys named by hash was last
	// used since t.
	KeyLastUsed(ctx context.Context, since time.Time, hashes []string) (map[string]time.Time, error)
}

// Seed sets every named key's current windows to what the usage database
// holds (their spending, today's tokens, last use). Call it once before
// serving; keys added later by a reload are seeded through Pending.Seed.
//
// Each window is summed from its own start in the key's time zone (one
// query per distinct start: keys in one zone share theirs), so a zone
// whose offset is not whole hours (Asia/Kathmandu, +5:45) is exact too: the
// store reads whole hours from the rollups and the partial hour from raw
// rows. Raw rows are kept usage_retention_days (default 90); a window
// starting before that reads its first hour whole from the rollups.
func (p *Policy) Seed(ctx context.Context, src UsageSource) error {
	now := p.now()
	named := p.Named()
	seeds, err := seedKeys(ctx, src, now, named)
	if err != nil {
		return err
	}
	for _, k := range named {
		k.mu.Lock()
		k.applySeedLocked(seeds[k], now)
		k.mu.Unlock()
	}
	return nil
}

// Seed reads from src the spending of the pending keys whose budget
// windows start over (new keys, and keys whose time zone changed); Commit
// installs it. Keys it could not read count from zero.
func (n *Pending) Seed(ctx context.Context, src UsageSource) error {
	seeds, err := seedKeys(ctx, src, n.p.now(), n.reseed)
	if err != nil {
		return err
	}
	n.seeds = seeds
	return nil
}

// seedValues are a key's windows as the database has them.
type seedValues struct {
	win      [numWindows]window
	tokens   int64
	lastUsed time.Time
}

// seedKeys reads the current windows of keys from src.
func seedKeys(ctx context.Context, src UsageSource, now time.Time, keys []*Key) (map[*Key]*seedValues, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	type slot struct {
		k *Key
		w Window
	}
	out := make(map[*Key]*seedValues, len(keys))
	starts := map[time.Time][]slot{}
	earliest := now
	for _, k := range keys {
		sv := &seedValues{}
		out[k] = sv
		for w := Window(0); w < numWindows; w++ {
			start, end := Bounds(w, now, k.loc)
			start = start.UTC()
			sv.win[w] = window{start: start, end: end}
			starts[start] = append(starts[start], slot{k, w})
			if start.Before(earliest) {
				earliest = start
			}
		}
	}
	for start, slots := range starts {
		spend, err := src.KeySpendSince(ctx, start)
		if err != nil {
			return nil, fmt.Errorf("seed key budgets from usage since %s: %w", start.Format(time.RFC3339), err)
		}
		byHash := make(map[string]usage.KeySpend, len(spend))
		for _, s := range spend {
			byHash[s.KeyHash] = s
		}
		for _, sl := range slots {
			s := byHash[sl.k.ID]
			sv := out[sl.k]
			sv.win[sl.w].spent = s.CostMicros
			if sl.w == Day {
				sv.tokens = s.Tokens
			}
		}
	}
	hashes := make([]string, 0, len(keys))
	for _, k := range keys {
		hashes = append(hashes, k.ID)
	}
	last, err := src.KeyLastUsed(ctx, earliest, hashes)
	if err != nil {
		return nil, fmt.Errorf("seed keys' last use: %w", err)
	}
	for k, sv := range out {
		sv.lastUsed = last[k.ID]
	}
	return out, nil
}

// applySeedLocked sets k's windows to sv (nil: from zero), recording the
// alert thresholds already passed so they do not alert again. Called with
// k.mu held.
func (k *Key) applySeedLocked(sv *seedValues, now time.Time) {
	k.zone = k.loc
	k.win, k.tokens, k.tokBand = [numWindows]window{}, 0, 0
	if sv == nil {
		return
	}
	k.win, k.tokens = sv.win, sv.tokens
	for w := range k.win {
		if b := k.budgetUSD[w]; b > 0 {
			k.win[w].band, _ = band(k.win[w].spent, b)
		}
	}
	if k.dailyTokens > 0 {
		k.tokBand, _ = band(k.tokens, k.dailyTokens)
	}
	if sv.lastUsed.After(k.lastUsed) {
		k.lastUsed = sv.lastUsed
	}
	k.roll(now)
}

// KeyStatus is a snapshot of one key's rules and counters.
type KeyStatus struct {
	Name string
	// InFlight and Queued are this relay's requests of the key being
	// served and waiting for a concurrency slot.
	InFlight int
	Queued   int
	// ClusterInFlight and ClusterQueued are the other relays' (as of the
	// cluster's last poll; zeros without a cluster or while it is
	// unreachable, see Policy.ClusterLive).
	ClusterInFlight int
	ClusterQueued   int
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
	for _, k := range p.tab.Load().keys {
		if k.Name == "" {
			continue
		}
		k.mu.Lock()
		k.roll(now)
		s := KeyStatus{Name: k.Name, InFlight: k.inUse, Queued: len(k.waiters), ClusterInFlight: k.clusterInFlight, ClusterQueued: k.clusterQueued,
			Budget: k.budgetUSD, Tokens: k.tokens,
			LastUsed: k.lastUsed, Enabled: k.enabled, ExpiresAt: k.expires, RPM: k.rpm, Concurrency: k.conc}
		for w := range k.win {
			s.Spent[w], s.Resets[w] = k.win[w].spent, k.win[w].end
		}
		k.mu.Unlock()
		out = append(out, s)
	}
	return out
}
