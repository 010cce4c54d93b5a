package scheduler

import (
	"slices"
	"time"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// QuotaSource reports how much room an account has left in its rate-limit
// windows (internal/quota's Tracker). It is asked under the scheduler's
// mutex and must answer from memory.
type QuotaSource interface {
	Headroom(accountID string, now time.Time) quota.Headroom
}

// QuotaPolicy is how the scheduler steers by quota ([scheduler] in the config).
type QuotaPolicy struct {
	Source QuotaSource
	// Headroom: within one priority, prefer the account whose busiest window
	// has the most room left; otherwise least recently used.
	Headroom bool
	// SoftLimit: past it an account takes new conversations only when no
	// other can (its sticky conversations stay).
	SoftLimit float64
	// HardLimit: past it an account takes nothing while another can serve.
	HardLimit float64
}

// SetQuota makes the scheduler steer by p; call before serving.
func (s *Scheduler) SetQuota(p QuotaPolicy) { s.mu.Lock(); s.quota = p; s.mu.Unlock() }

// An account's tier: the lowest tier that can serve is chosen first.
const (
	tierOpen = iota // under the soft limit (or nothing known)
	tierSoft        // past the soft limit
	tierHard        // past the hard limit
)

// headroomBuckets makes loads within 5 points of each other equal, so that
// accounts with about the same room share the load by last use.
const headroomBuckets = 20

// standing is how the quota ranks an account at now. Called with s.mu held.
func (s *Scheduler) standing(a *Account, now time.Time) (tier, load int) {
	if s.quota.Source == nil {
		return tierOpen, 0
	}
	h := s.quota.Source.Headroom(a.ID, now)
	if !h.Known {
		return tierOpen, 0
	}
	switch {
	case s.quota.HardLimit > 0 && h.Used >= s.quota.HardLimit:
		tier = tierHard
	case s.quota.SoftLimit > 0 && h.Used >= s.quota.SoftLimit:
		tier = tierSoft
	}
	if s.quota.Headroom {
		load = int(h.Load * headroomBuckets)
	}
	return tier, load
}

// planSpent reports whether a plan_only account has spent its plan's window
// and would draw paid extra usage; until is when the window resets.
// Called with s.mu held.
func (s *Scheduler) planSpent(a *Account, now time.Time) (bool, time.Time) {
	if !a.PlanOnly || s.quota.Source == nil {
		return false, time.Time{}
	}
	h := s.quota.Source.Headroom(a.ID, now)
	if h.OverageInUse && h.Until.After(now) {
		return true, h.Until
	}
	return false, time.Time{}
}

// candidate is an account being weighed by Pick.
type candidate struct {
	a          *Account
	tier, load int
}

// better reports whether c should be chosen over best: the lower tier, then
// the higher priority, then the smaller load (headroom), then the least
// recently used.
func (c candidate) better(best candidate) bool {
	if best.a == nil {
		return true
	}
	if c.tier != best.tier {
		return c.tier < best.tier
	}
	if c.a.Priority != best.a.Priority {
		return c.a.Priority > best.a.Priority
	}
	if c.load != best.load {
		return c.load < best.load
	}
	return c.a.lastUsed.Before(best.a.lastUsed)
}

// otherBelowHard reports whether an account other than a could serve model
// from below the hard limit (a sticky conversation then leaves a).
// Called with s.mu held.
func (s *Scheduler) otherBelowHard(pool []*Account, a *Account, model string, exclude []string, now time.Time) bool {
	for _, o := range pool {
		if o == a || slices.Contains(exclude, o.ID) {
			continue
		}
		if ok, _ := s.available(o, model, now); !ok {
			continue
		}
		if t, _ := s.standing(o, now); t < tierHard {
			return true
		}
	}
	return false
}

// leaveSticky reports whether a sticky conversation should leave a: a is past
// the hard limit and another account can serve from below it.
// Called with s.mu held.
func (s *Scheduler) leaveSticky(pool []*Account, a *Account, model string, exclude []string, now time.Time) bool {
	if t, _ := s.standing(a, now); t < tierHard {
		return false
	}
	return s.otherBelowHard(pool, a, model, exclude, now)
}
