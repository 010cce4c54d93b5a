package policy

import "time"

// touchUnnamed records a use of an api_keys entry without its lock: one
// atomic store, at most once a second, keeps the request path as cheap as
// it was for these keys.
func (s *keyState) touchUnnamed(now time.Time) {
	ms := now.UnixMilli()
	if ms-s.unnamedUse.Load() >= 1000 {
		s.unnamedUse.Store(ms)
	}
}

// LastUsed returns when the key in force with id (usage.HashKey of its
// value) was last used: a named key's as Status reports it (seeded from
// the database at start), an api_keys entry's by this relay since it
// started (to the second). Zero when never, or no such key.
func (p *Policy) LastUsed(id string) time.Time {
	k := p.tab.Load().byID[id]
	if k == nil {
		return time.Time{}
	}
	if k.Name == "" {
		if ms := k.unnamedUse.Load(); ms > 0 {
			return time.UnixMilli(ms)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastUsed
}
