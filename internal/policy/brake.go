package policy

import (
	"net/netip"
	"sync"
	"time"
)

// Brake limits failed relay-key attempts per client address: after Limit
// failures within a minute (a token bucket refilled over a minute) the
// address is refused with 429 until the bucket has room again, so guessing
// keys costs a minute per Limit guesses. Memory is bounded: at most
// maxTracked addresses are kept; when full, entries whose buckets have
// refilled are dropped, and if none has, the oldest is.
type Brake struct {
	limit    int
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	addrs map[netip.Addr]time.Time // GCRA theoretical arrival time
}

const maxTracked = 65536

// NewBrake returns a brake allowing limit failures per minute per address;
// limit <= 0 means 20.
func NewBrake(limit int, now func() time.Time) *Brake {
	if limit <= 0 {
		limit = 20
	}
	if now == nil {
		now = time.Now
	}
	return &Brake{limit: limit, interval: time.Minute / time.Duration(limit), now: now, addrs: map[netip.Addr]time.Time{}}
}

// Blocked returns how long addr must wait before its next attempt; 0 when
// it may try now.
func (b *Brake) Blocked(addr netip.Addr) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	tat, ok := b.addrs[addr]
	if !ok {
		return 0
	}
	now := b.now()
	if wait := tat.Add(b.interval).Sub(now) - time.Minute; wait > 0 {
		return wait
	}
	return 0
}

// Fail records a failed attempt from addr.
func (b *Brake) Fail(addr netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	tat, ok := b.addrs[addr]
	if !ok && len(b.addrs) >= maxTracked {
		b.evict(now)
	}
	if tat.Before(now) {
		tat = now
	}
	b.addrs[addr] = tat.Add(b.interval)
}

func (b *Brake) evict(now time.Time) {
	var oldest netip.Addr
	var oldestT time.Time
	for a, t := range b.addrs {
		if !t.After(now) {
			delete(b.addrs, a)
			continue
		}
		if oldestT.IsZero() || t.Before(oldestT) {
			oldest, oldestT = a, t
		}
	}
	if len(b.addrs) >= maxTracked {
		delete(b.addrs, oldest)
	}
}
