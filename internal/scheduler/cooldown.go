package scheduler

import (
	"context"
	"slices"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

type cooldownKey struct{ account, model string }

// Report applies the verdict of one upstream outcome to account id and returns
// the cooldown it set (zero Until when none).
func (s *Scheduler) Report(id string, v provider.Verdict) state.Cooldown {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if v.Kind == provider.OK {
		// A success ends the account's short whole-account cooldown, if any.
		k := cooldownKey{id, ""}
		if c, ok := s.cooldowns[k]; ok {
			switch provider.ParseKind(c.Kind) {
			case provider.RateLimited, provider.Overloaded, provider.ServerError, provider.Network:
				s.clearLocked(k)
			}
		}
		return state.Cooldown{}
	}
	if !v.Kind.Failover() {
		return state.Cooldown{}
	}
	if a := s.byID[id]; a != nil {
		a.lastErr = LastError{Kind: v.Kind.String(), Model: v.Model, Reason: v.Reason, At: now}
	}
	until := v.Until
	var def time.Duration
	switch v.Kind {
	case provider.RateLimited:
		def = s.opts.RateLimitCooldown
		if !until.IsZero() && until.Sub(now) > s.opts.MaxRateLimitHint {
			until = now.Add(s.opts.MaxRateLimitHint)
		}
	case provider.QuotaExhausted:
		def = s.opts.UnavailableCooldown
	case provider.Overloaded:
		def = s.opts.OverloadCooldown
	case provider.Unavailable:
		def = s.opts.UnavailableCooldown
	case provider.TokenInvalid:
		def = s.opts.TokenInvalidCooldown
	default:
		def = s.opts.ErrorCooldown
	}
	if until.IsZero() || !until.After(now) {
		until = now.Add(def)
	} else {
		// An upstream-given time: within [1 s, 31 days], whatever named it.
		until = provider.HintTime(until, now)
	}
	c := state.Cooldown{AccountID: id, Model: v.Model, Kind: v.Kind.String(), Reason: v.Reason, Until: until}
	if v.BadHint != "" {
		s.log.Warn("ignored a nonsensical time from the upstream", "account", id, "kind", c.Kind, "hint", v.BadHint, "cooldown_until", until)
	}
	k := cooldownKey{id, v.Model}
	if old, ok := s.cooldowns[k]; ok && old.Until.After(c.Until) && old.Kind == c.Kind {
		return old // a longer cooldown of the same kind stands
	}
	s.cooldowns[k] = c
	s.enqueue(func(ctx context.Context) { s.logErr("cooldown", s.persist.SaveCooldown(ctx, c)) })
	if s.observer != nil {
		s.observer.CooldownChanged(c, wasSet)
	}
	return c
}

func (s *Scheduler) clearLocked(k cooldownKey) {
	c := s.cooldowns[k]
	delete(s.cooldowns, k)
	s.enqueue(func(ctx context.Context) { s.logErr("cooldown", s.persist.DeleteCooldown(ctx, k.account, k.model)) })
	if s.observer != nil {
		s.observer.CooldownChanged(c, wasCleared)
	}
}

// Reset clears every cooldown of an account; it returns how many there were.
func (s *Scheduler) Reset(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.cooldowns {
		if k.account == id {
			s.clearLocked(k)
			n++
		}
	}
	return n
}

// Cooldowns returns the cooldowns in force, sorted by account and model.
func (s *Scheduler) Cooldowns() []state.Cooldown {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []state.Cooldown
	for _, c := range s.cooldowns {
		if c.Until.After(now) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b state.Cooldown) int {
		if a.AccountID != b.AccountID {
			if a.AccountID < b.AccountID {
				return -1
			}
			return 1
		}
		if a.Model < b.Model {
			return -1
		}
		if a.Model > b.Model {
			return 1
		}
		return 0
	})
	return out
}

// ApplyRemoteCooldown merges a cooldown set (or, removed, cleared) by
// another relay of the cluster, without publishing it again.
func (s *Scheduler) ApplyRemoteCooldown(c state.Cooldown, removed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[c.AccountID] == nil {
		return
	}
	k := cooldownKey{c.AccountID, c.Model}
	if removed {
		delete(s.cooldowns, k)
	} else {
		s.cooldowns[k] = c
	}
}
