package credential

import (
	"context"
	"errors"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

// Persistence of refreshed credentials: the save after each refresh, its
// retries, and a chain superseded by a newer login (see refresh for the
// policy).

// save writes c with a budget of its own, independent of the refresh's.
func (o *OAuth) save(ctx context.Context, c state.Credential) error {
	if o.st == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	return o.st.SaveCredential(ctx, c)
}

// retrySave writes the in-memory credential that an earlier save failed to.
// Nothing newer can be in the store: any other process only held the
// refresh token this process consumed, which cannot have produced one.
func (o *OAuth) retrySave(ctx context.Context) {
	o.mu.Lock()
	c := state.Credential{
		AccountID:    o.cfg.AccountID,
		RefreshToken: o.refreshTok,
		AccessToken:  o.access,
		ExpiresAt:    o.expires,
		OriginHash:   o.origin,
		UpdatedAt:    o.issued,
		Generation:   o.gen,
	}
	o.mu.Unlock()
	err := o.save(ctx, c)
	switch {
	case errors.Is(err, state.ErrSuperseded):
		o.supersede()
	case err != nil:
		o.saveFailed(err, notRotated)
	default:
		o.saveSucceeded()
	}
}

// supersede notes that the store holds a newer login's chain: this one
// (still serving the requests that hold this source) is not saved, nor
// retried. It happens to a source a reload replaced after a new login.
func (o *OAuth) supersede() {
	o.mu.Lock()
	first := !o.superseded
	o.superseded = true
	o.dirty, o.persistErr, o.persistFailures, o.persistRetryAt, o.persistLogged = false, "", 0, time.Time{}, false
	o.mu.Unlock()
	if first {
		o.log.Info("a newer login's oauth credential is stored for this account; the credential this older chain refreshed is kept in memory only and not saved")
	}
}

// notRotated is saveFailed's rotated for a save that did not follow a
// refresh which consumed the old refresh token (a retry, a failed lock).
const notRotated = false

func (o *OAuth) saveFailed(err error, rotated bool) {
	msg := o.scrub(err.Error())
	now := o.now()
	o.mu.Lock()
	o.dirty = true
	o.persistErr = msg
	o.persistFailures++
	o.persistRetryAt = now.Add(backoff(o.persistFailures))
	first := !o.persistLogged
	o.persistLogged = true
	o.mu.Unlock()
	if first {
		o.log.Error("could not save the refreshed oauth credential; keeping it in memory and retrying (until it is saved, a restart needs a new login)",
			"error", msg, "rotated", rotated)
	} else {
		o.log.Debug("saving the refreshed oauth credential failed again", "error", msg)
	}
}

func (o *OAuth) saveSucceeded() {
	o.mu.Lock()
	wasDirty := o.dirty
	o.dirty, o.persistErr, o.persistFailures, o.persistRetryAt, o.persistLogged = false, "", 0, time.Time{}, false
	o.mu.Unlock()
	if wasDirty {
		o.log.Info("saved the refreshed oauth credential after earlier failures")
	}
}
