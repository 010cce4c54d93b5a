package scheduler

import (
	"context"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

// Persister stores state changes. Calls come from one background goroutine.
type Persister interface {
	SaveSession(ctx context.Context, b state.Binding) error
	DeleteSessions(ctx context.Context, key, accountID string) (int64, error)
	SaveCooldown(ctx context.Context, c state.Cooldown) error
	DeleteCooldown(ctx context.Context, accountID, model string) error
	SaveLastUsed(ctx context.Context, accountID string, t time.Time) error
}

// Restore loads persisted state (bindings to unknown accounts are dropped).
func (s *Scheduler) Restore(bindings []state.Binding, cooldowns []state.Cooldown, lastUsed map[string]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, b := range bindings {
		if s.byID[b.AccountID] != nil && b.ExpiresAt.After(now) {
			s.sessions[b.Key] = session{Binding: b, saved: now}
		}
	}
	for _, c := range cooldowns {
		if s.byID[c.AccountID] != nil && c.Until.After(now) {
			s.cooldowns[cooldownKey{c.AccountID, c.Model}] = c
		}
	}
	for id, t := range lastUsed {
		if a := s.byID[id]; a != nil && t.After(a.lastUsed) {
			a.lastUsed = t
		}
	}
}

// Close stops the background writer after it wrote what was queued.
func (s *Scheduler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.jobs)
	s.mu.Unlock()
	<-s.done
}

func (s *Scheduler) writer() {
	defer close(s.done)
	for job := range s.jobs {
		if s.persist == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		job(ctx)
		cancel()
	}
}

// enqueue schedules a persistence job; it must be called with s.mu held.
func (s *Scheduler) enqueue(job func(ctx context.Context)) {
	if s.persist == nil || s.closed {
		return
	}
	select {
	case s.jobs <- job:
	default:
		s.log.Warn("state writer is behind; a state change was not persisted")
	}
}

// logErr reports a persistence failure once per failing streak (a broken
// database must not print a line per request) and the recovery.
func (s *Scheduler) logErr(what string, err error) {
	if err != nil {
		if s.persistFailing.CompareAndSwap(false, true) {
			s.log.Error("saving relay state failed; it stays in memory and saving is retried with the next change", "what", what, "err", err)
		}
		return
	}
	if s.persistFailing.CompareAndSwap(true, false) {
		s.log.Info("saving relay state works again")
	}
}
