package scheduler

import (
	"context"
	"slices"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

func (s *Scheduler) bind(key, accountID string, now time.Time) {
	b := state.Binding{Key: key, AccountID: accountID, ExpiresAt: now.Add(s.opts.StickyTTL)}
	s.sessions[key] = b
	s.enqueue(func(ctx context.Context) { s.logErr("session", s.persist.SaveSession(ctx, b)) })
	if s.observer != nil {
		s.observer.SessionChanged(b, false)
	}
}

// Sessions returns the live bindings.
func (s *Scheduler) Sessions() []state.Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]state.Binding, 0, len(s.sessions))
	for _, b := range s.sessions {
		if b.ExpiresAt.After(now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b state.Binding) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out
}

// Session returns the live binding of key, if any.
func (s *Scheduler) Session(key string) (state.Binding, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.sessions[key]
	if !ok || !b.ExpiresAt.After(s.now()) {
		return state.Binding{}, false
	}
	return b, true
}

// ApplyRemoteBinding merges a sticky binding made (or, removed, dropped) by
// another relay of the cluster, without publishing it again.
func (s *Scheduler) ApplyRemoteBinding(b state.Binding, removed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[b.AccountID] == nil {
		return
	}
	if removed {
		delete(s.sessions, b.Key)
	} else {
		s.sessions[b.Key] = b
	}
}

// Prune drops expired sessions and cooldowns from memory; call it now and then.
func (s *Scheduler) Prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, b := range s.sessions {
		if !b.ExpiresAt.After(now) {
			delete(s.sessions, k)
		}
	}
	for k, c := range s.cooldowns {
		if !c.Until.After(now) {
			delete(s.cooldowns, k)
		}
	}
}

// ForgetSessions drops bindings from memory only (the caller already changed
// the store): the one with key, all of accountID's, or (both empty) all.
func (s *Scheduler) ForgetSessions(key, accountID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, b := range s.sessions {
		if (key != "" && k == key) || (key == "" && (accountID == "" || b.AccountID == accountID)) {
			delete(s.sessions, k)
			n++
			if s.observer != nil {
				s.observer.SessionChanged(b, true)
			}
		}
	}
	return n
}
