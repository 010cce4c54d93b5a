package scheduler

import (
	"context"
	"slices"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

// turnSaveEvery is how often a conversation's turns are written through
// (persisted, and published to a cluster) when nothing else about its
// binding changes: its last turn is shown that fresh elsewhere.
const turnSaveEvery = 30 * time.Second

// session is a binding with when it was last written through.
type session struct {
	state.Binding
	saved time.Time
}

// bind binds t's conversation to accountID from now.
func (s *Scheduler) bind(accountID string, t Turn, now time.Time) {
	b := state.Binding{Key: t.SessionKey, AccountID: accountID, ExpiresAt: now.Add(s.opts.StickyTTL),
		KeyName: t.KeyName, KeyHash: t.KeyHash, Model: t.Model, LastTurn: now}
	s.save(b, now)
}

// save stores b and writes it through.
func (s *Scheduler) save(b state.Binding, now time.Time) {
	s.sessions[b.Key] = session{Binding: b, saved: now}
	s.enqueue(func(ctx context.Context) { s.logErr("session", s.persist.SaveSession(ctx, b)) })
	if s.observer != nil {
		s.observer.SessionChanged(b, wasSet)
	}
}

// turn records one more turn of a bound conversation: it renews the
// binding when it ends within the renewal threshold, and writes it through
// when it was renewed, its key or model changed, or turnSaveEvery passed
// since the last write (in memory otherwise: the request path stays free
// of writes).
func (s *Scheduler) turn(ss session, t Turn, now time.Time) {
	b := ss.Binding
	write := b.KeyName != t.KeyName || b.KeyHash != t.KeyHash || b.Model != t.Model || now.Sub(ss.saved) >= turnSaveEvery
	if b.ExpiresAt.Sub(now) < s.opts.RenewalThreshold {
		b.ExpiresAt = now.Add(s.opts.StickyTTL)
		write = true
	}
	b.KeyName, b.KeyHash, b.Model, b.LastTurn = t.KeyName, t.KeyHash, t.Model, now
	if write {
		s.save(b, now)
		return
	}
	s.sessions[b.Key] = session{Binding: b, saved: ss.saved}
}

// Sessions returns the live bindings.
func (s *Scheduler) Sessions() []state.Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]state.Binding, 0, len(s.sessions))
	for _, ss := range s.sessions {
		if ss.ExpiresAt.After(now) {
			out = append(out, ss.Binding)
		}
	}
	slices.SortFunc(out, func(a, b state.Binding) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out
}

// Session returns the live binding of key, if any.
func (s *Scheduler) Session(key string) (state.Binding, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[key]
	if !ok || !ss.ExpiresAt.After(s.now()) {
		return state.Binding{}, false
	}
	return ss.Binding, true
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
		return
	}
	cur, ok := s.sessions[b.Key]
	if ok && cur.LastTurn.After(b.LastTurn) && cur.AccountID == b.AccountID {
		// A binding without its turn (read back from Redis, or from a relay
		// that does not send it), or with an older one, keeps the newer
		// turn this relay knows.
		b.KeyName, b.KeyHash, b.Model, b.LastTurn = cur.KeyName, cur.KeyHash, cur.Model, cur.LastTurn
	}
	s.sessions[b.Key] = session{Binding: b, saved: cur.saved}
}

// Prune drops expired sessions and cooldowns from memory; call it now and then.
func (s *Scheduler) Prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, ss := range s.sessions {
		if !ss.ExpiresAt.After(now) {
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
	for k, ss := range s.sessions {
		if (key != "" && k == key) || (key == "" && (accountID == "" || ss.AccountID == accountID)) {
			delete(s.sessions, k)
			n++
			if s.observer != nil {
				s.observer.SessionChanged(ss.Binding, wasCleared)
			}
		}
	}
	return n
}
