package policy

import "time"

// Shared carries budget spending and request counts between the relays of a
// cluster. Neither method may block (queue the work): both are called on the
// request path, Admitted with the key's mutex held. The implementation
// reports what the cluster has spent through ApplyShared and what the other
// relays are doing through ApplyClusterLoad.
type Shared interface {
	// Charge is called after a request's cost is known.
	Charge(k *Key, at time.Time, costMicros, tokens int64)
	// Admitted is called when a request of a key with an rpm limit has
	// passed it (the request may still wait for a concurrency slot).
	Admitted(k *Key, at time.Time)
}

// SetShared attaches the cluster's budget sharing; call before serving.
func (p *Policy) SetShared(s Shared) { p.shared = s }

// Keys returns the keys in force with budgets (what a cluster needs to
// poll). Ask again on each poll: a reload replaces the *Key values (their
// counters carry over when the ID is unchanged).
func (p *Policy) Keys() []*Key {
	var out []*Key
	for _, k := range p.tab.Load().keys {
		if k.hasBudget() {
			out = append(out, k)
		}
	}
	return out
}

// WindowStart returns the start of k's current window w (for naming shared
// counters) and when it ends.
func (p *Policy) WindowStart(k *Key, w Window, at time.Time) (time.Time, time.Time) {
	return Bounds(w, at, k.loc)
}

// ApplyShared raises k's window w spending (and, for Day, tokens) to the
// cluster's totals for the window starting at start; totals lower than what
// this relay knows (a counter that lagged) change nothing.
func (p *Policy) ApplyShared(k *Key, w Window, start time.Time, costMicros, tokens int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.roll(p.now())
	if !k.win[w].start.Equal(start) {
		return
	}
	k.win[w].spent = max(k.win[w].spent, costMicros)
	// The relay whose charge passed a threshold alerted; here it is only
	// recorded, so this relay does not alert again.
	if b := k.budgetUSD[w]; b > 0 {
		k.win[w].band, _ = band(k.win[w].spent, b)
	}
	if w == Day {
		k.tokens = max(k.tokens, tokens)
		if k.dailyTokens > 0 {
			k.tokBand, _ = band(k.tokens, k.dailyTokens)
		}
	}
}

// Named returns the named keys in force, in config order.
func (p *Policy) Named() []*Key {
	var out []*Key
	for _, k := range p.tab.Load().keys {
		if k.Name != "" {
			out = append(out, k)
		}
	}
	return out
}
