package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

// join starts the refresh, or joins the one in flight, and waits for it or ctx.
func (o *OAuth) join(ctx context.Context) (string, error) {
	o.mu.Lock()
	c := o.inflight
	if c == nil {
		c = &call{done: make(chan struct{})}
		o.inflight = c
		go o.fly(c)
	}
	o.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return "", fmt.Errorf("wait for oauth refresh: %w", ctx.Err())
	}
}

// fly runs one refresh on a context of its own: no waiter's cancellation may
// abort it once the provider may have consumed the old refresh token.
func (o *OAuth) fly(c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	c.tok, c.err = o.sync(ctx)
	o.mu.Lock()
	o.inflight = nil
	o.mu.Unlock()
	close(c.done)
}

// sync brings the credential up to date: loaded, saved and fresh. It runs only
// inside a flight, so it is the single writer of the credential fields (but
// for Invalidate, which only clears the access token).
func (o *OAuth) sync(ctx context.Context) (string, error) {
	if e := o.load(ctx); e != nil {
		return o.fail(e)
	}
	now := o.now()
	o.mu.Lock()
	fresh, dirty, backoff, tok := o.freshLocked(now), o.dirty, o.backoffLocked(now), o.access
	if !dirty && (fresh || backoff) {
		// Fresh (the stored token, or one refreshed while this flight was
		// being started), or failing and not to be retried yet.
		tok, err := o.fallbackLocked(now)
		if fresh {
			tok, err = o.access, nil
		}
		o.mu.Unlock()
		return tok, err
	}
	o.mu.Unlock()

	if o.lk != nil {
		unlock, err := o.lk.Lock(ctx, o.cfg.AccountID)
		if err != nil {
			if dirty {
				o.saveFailed(fmt.Errorf("lock account: %w", err), notRotated)
			}
			if fresh {
				return tok, nil
			}
			return o.fail(&RefreshError{Kind: provider.ServerError, Msg: o.scrub("lock account for refresh: " + err.Error()), cause: err})
		}
		defer unlock()
	}
	if dirty {
		o.retrySave(ctx)
	}
	if fresh {
		return tok, nil
	}
	if backoff {
		o.mu.Lock()
		tok, err := o.fallbackLocked(o.now())
		o.mu.Unlock()
		return tok, err
	}
	if o.lk != nil && !o.isDirty() {
		// Another process may have refreshed while we waited for the lock.
		tok, ok, err := o.reread(ctx)
		if err != nil {
			return o.fail(&RefreshError{Kind: provider.ServerError, Msg: o.scrub("re-read stored credential: " + err.Error()), cause: err})
		}
		if ok {
			return tok, nil
		}
	}
	return o.refresh(ctx)
}

func (o *OAuth) isDirty() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dirty
}

// refresh spends the current refresh token at the token endpoint.
//
// Persistence policy. A rotating provider consumes the old refresh token the
// moment it answers, so from then on the new one exists only in this
// process's memory until it is saved. The invariant is: never send a consumed
// refresh token again, and never lose the newest one. Hence:
//   - the new credential is saved BEFORE it replaces the old one in memory
//     and before its access token is returned, so a crash after the save
//     restarts from the new token;
//   - if the save fails, the new refresh token still replaces the old one in
//     memory (the old one is dead upstream; keeping it would only earn an
//     invalid_grant, or get the whole chain revoked by reuse detection), the
//     access token is still returned (the request is not the problem), an
//     error is logged once, Status reports it, and the save is retried before
//     the next refresh and on Run's ticks. The only loss left is a crash
//     before any retry succeeds; it then needs a new login, which no
//     in-process choice can prevent once the provider has answered.
func (o *OAuth) refresh(ctx context.Context) (string, error) {
	o.mu.Lock()
	rt := o.refreshTok
	o.mu.Unlock()

	tr, e := o.post(ctx, rt)
	if e != nil {
		return o.fail(e)
	}
	now := o.now()
	lifetime, bad := tr.lifetime()
	if bad != "" {
		o.log.Warn("the token endpoint sent a nonsensical token lifetime; assuming the default", "hint", bad, "default", defaultLifetime)
	}
	newRT := tr.RefreshToken
	rotated := newRT != "" && newRT != rt
	if newRT == "" {
		newRT = rt // Google usually does not rotate
	}
	o.mu.Lock()
	cred := state.Credential{
		AccountID:    o.cfg.AccountID,
		RefreshToken: newRT,
		AccessToken:  tr.AccessToken,
		ExpiresAt:    now.Add(lifetime),
		OriginHash:   o.origin,
		UpdatedAt:    now,
		Generation:   o.gen,
	}
	o.mu.Unlock()

	err := o.save(ctx, cred)
	if tr.IDToken != "" && o.cfg.OnIDToken != nil {
		// Before the new access token is cached or returned, so no request
		// carries it with the previous account.
		o.cfg.OnIDToken(tr.IDToken)
	}

	o.mu.Lock()
	if rotated {
		o.rememberSpentLocked(rt)
	}
	o.refreshTok = newRT
	o.access, o.expires, o.issued = cred.AccessToken, cred.ExpiresAt, cred.UpdatedAt
	o.lastErr, o.failures, o.retryAt = nil, 0, time.Time{}
	o.mu.Unlock()

	switch {
	case errors.Is(err, state.ErrSuperseded):
		o.supersede()
	case err != nil:
		o.saveFailed(err, rotated)
	default:
		o.saveSucceeded()
	}
	o.log.Info("oauth token refreshed", "rotated", rotated, "expires_at", cred.ExpiresAt)
	if o.cfg.OnRefresh != nil {
		o.cfg.OnRefresh(nil)
	}
	return cred.AccessToken, nil
}

// fail records a failed refresh and sets the back-off: 5 s doubling to 5 min
// over consecutive failures, at least until a 429's Retry-After, and 5 min
// straight for a rejected refresh token. It returns the cached token if still
// usable, else e.
func (o *OAuth) fail(e *RefreshError) (string, error) {
	now := o.now()
	o.mu.Lock()
	o.failures++
	wait := backoff(o.failures)
	if e.Kind == provider.TokenInvalid {
		wait = backoffMax
	}
	retry := now.Add(wait)
	if e.Until.After(retry) {
		retry = e.Until
	}
	o.retryAt = retry
	e.Until = retry
	if e.Kind == provider.TokenInvalid {
		e.Until = time.Time{} // no waiting cures it: the relay's default cooldown applies
	}
	o.lastErr = e
	tok, err := o.fallbackLocked(now)
	o.mu.Unlock()

	level := slog.LevelWarn
	if e.Kind == provider.TokenInvalid {
		level = slog.LevelError
	}
	o.log.Log(context.Background(), level, "oauth refresh failed", "kind", e.Kind.String(), "error", e.Msg, "retry_in", retry.Sub(now).Round(time.Second))
	if o.cfg.OnRefresh != nil {
		o.cfg.OnRefresh(e)
	}
	return tok, err
}
