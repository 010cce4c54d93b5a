package credential

import (
	"context"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// margin is how long before expiry a token of the given lifetime is renewed:
// 10% of its lifetime but at least a minute, at most half its lifetime, and
// never less than 10 s. An unknown lifetime (0) gets a minute. For a token
// living under 20 s that is all of its life: renewAtLocked spaces such
// refreshes.
func margin(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return minMargin
	}
	m := max(minMargin, lifetime/10)
	m = min(m, lifetime/2)
	return max(m, hardMargin)
}

// freshLocked reports whether the cached token needs no refresh at now.
func (o *OAuth) freshLocked(now time.Time) bool {
	return o.access != "" && now.Before(o.renewAtLocked())
}

// usableLocked reports whether the cached token may still be handed out.
func (o *OAuth) usableLocked(now time.Time) bool {
	return o.access != "" && now.Before(o.endLocked())
}

func (o *OAuth) lifetimeLocked() time.Duration {
	if o.issued.IsZero() {
		return 0
	}
	return o.expires.Sub(o.issued)
}

// endLocked is when the cached token counts as expired: hardMargin before
// its expiry, or a tenth of its lifetime when that is shorter.
func (o *OAuth) endLocked() time.Time {
	skew := hardMargin
	if l := o.lifetimeLocked(); l > 0 {
		skew = min(skew, l/10)
	}
	return o.expires.Add(-skew)
}

// renewAtLocked is when the cached token is renewed: at the renewal margin,
// but no sooner than minRefreshGap after it was obtained, and no later than
// its end.
func (o *OAuth) renewAtLocked() time.Time {
	at := o.expires.Add(-margin(o.lifetimeLocked()))
	if !o.issued.IsZero() {
		at = later(at, o.issued.Add(minRefreshGap))
	}
	return earlier(at, o.endLocked())
}

// runAtLocked is when Run renews the cached token: at renewAtLocked, but no
// sooner than minRefreshGap after it was obtained even when it ends before
// that. An idle account with a very short-lived token is then refreshed
// twice a minute, and a request that meets its expired token refreshes it.
func (o *OAuth) runAtLocked() time.Time {
	at := o.renewAtLocked()
	if !o.issued.IsZero() {
		at = later(at, o.issued.Add(minRefreshGap))
	}
	return at
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (o *OAuth) backoffLocked(now time.Time) bool {
	return o.lastErr != nil && now.Before(o.retryAt)
}

// fallbackLocked is the answer while refreshing is failing: the cached token
// if it is still usable, otherwise the last error.
func (o *OAuth) fallbackLocked(now time.Time) (string, error) {
	if o.usableLocked(now) {
		return o.access, nil
	}
	if o.lastErr == nil {
		return "", &RefreshError{Kind: provider.ServerError, Msg: "no access token"}
	}
	return "", o.lastErr
}

// backoff is the wait after n consecutive failures.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 10 {
		return backoffMax
	}
	return min(backoffBase<<(n-1), backoffMax)
}

// runDue reports whether Run should start (or join) a refresh now.
func (o *OAuth) runDue() bool {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dirty && !now.Before(o.persistRetryAt) {
		return true
	}
	if o.lastErr != nil && (o.lastErr.Kind == provider.TokenInvalid || now.Before(o.retryAt)) {
		return false
	}
	return !o.loaded || o.access == "" || !now.Before(o.runAtLocked())
}

// nextWake is how long Run sleeps: until the renewal margin, the end of a
// back-off or the next save retry, within [minRunGap, maxRunSleep].
func (o *OAuth) nextWake() time.Duration {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	var at time.Time
	switch {
	case o.lastErr != nil && o.lastErr.Kind == provider.TokenInvalid:
		at = now.Add(maxRunSleep)
	case o.lastErr != nil && now.Before(o.retryAt):
		at = o.retryAt
	case !o.loaded || o.access == "":
		at = now
	default:
		at = o.runAtLocked()
	}
	if o.dirty && o.persistRetryAt.Before(at) {
		at = o.persistRetryAt
	}
	return min(max(at.Sub(now), minRunGap), maxRunSleep)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
