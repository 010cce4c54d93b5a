package credential

import (
	"context"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

// load reads the stored credential once. A stored chain that grew from the
// config's refresh token is newer than the config and is used; one that grew
// from another token is discarded, because a changed config token means a
// new login or a hand edit, and the operator's latest word wins.
func (o *OAuth) load(ctx context.Context) *RefreshError {
	o.mu.Lock()
	loaded := o.loaded
	o.mu.Unlock()
	if loaded {
		return nil
	}
	cfgRT := o.cfg.ConfigRefreshToken
	origin := ""
	if cfgRT != "" {
		origin = OriginHash(cfgRT)
	}
	var (
		c     state.Credential
		found bool
	)
	if o.st != nil {
		var err error
		c, err = o.st.Credential(ctx, o.cfg.AccountID)
		switch {
		case err == nil:
			found = c.RefreshToken != ""
		case o.notFound(err):
		default:
			// Not knowing whether a newer chain exists, the config token (maybe
			// consumed long ago) must not be tried.
			return &RefreshError{Kind: provider.ServerError, Msg: o.scrub("load stored credential: " + err.Error()), cause: err}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case found && (cfgRT == "" || c.OriginHash == origin):
		o.origin, o.gen = c.OriginHash, c.Generation
		o.refreshTok = c.RefreshToken
		o.access, o.expires, o.issued = c.AccessToken, c.ExpiresAt, c.UpdatedAt
		o.log.Debug("using the stored oauth credential", "expires_at", c.ExpiresAt)
	case cfgRT == "":
		return &RefreshError{Kind: provider.TokenInvalid, Msg: "no refresh token configured; " + o.loginHint()}
	default:
		if found {
			o.log.Info("the config holds a different refresh token than the stored chain grew from; using the config's and discarding the stored credential")
		}
		o.origin = origin
		o.refreshTok = cfgRT
		// A new chain (a new login) outranks the stored one, and any chain
		// started before it.
		o.gen = max(o.now().UnixMilli(), c.Generation+1)
	}
	o.loaded = true
	return nil
}

// reread adopts what another process stored while holding the lock: a newer
// refresh token always, and the access token too if it is fresh (then no
// refresh is needed and ok is true).
func (o *OAuth) reread(ctx context.Context) (tok string, ok bool, err error) {
	c, err := o.st.Credential(ctx, o.cfg.AccountID)
	if err != nil {
		if o.notFound(err) {
			return "", false, nil
		}
		return "", false, err
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.RefreshToken == "" || c.OriginHash != o.origin {
		// A chain from another config token: ours wins (see load).
		return "", false, nil
	}
	if c.RefreshToken != o.refreshTok {
		o.log.Debug("adopting a refresh token rotated by another process")
		o.rememberSpentLocked(o.refreshTok)
		o.refreshTok = c.RefreshToken
	}
	if c.AccessToken != "" && c.AccessToken != o.rejected && c.AccessToken != o.access {
		o.access, o.expires, o.issued = c.AccessToken, c.ExpiresAt, c.UpdatedAt
	}
	if !o.freshLocked(now) {
		return "", false, nil
	}
	o.lastErr, o.failures, o.retryAt = nil, 0, time.Time{}
	return o.access, true, nil
}

func (o *OAuth) rememberSpentLocked(rt string) {
	if rt == "" {
		return
	}
	o.spent = append(o.spent, rt)
	if len(o.spent) > maxSpent {
		o.spent = o.spent[len(o.spent)-maxSpent:]
	}
}
