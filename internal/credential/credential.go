// Package credential says where the secret on an upstream request comes from:
// a static API key, or an OAuth access token that is refreshed from a
// (possibly rotating, single-use) refresh token.
//
// The OAuth source keeps exactly one refresh per account in flight, persists
// a rotated refresh token before it relies on it, re-reads the store under a
// cross-process lock when one is given, and backs off after failures so a
// broken account is not hammered. It never puts a token or client secret in an
// error or a log line.
package credential

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

// Source yields the secret to put on an upstream request.
type Source interface {
	// Token returns the current secret, refreshing it first when needed.
	Token(ctx context.Context) (string, error)
	// Invalidate tells the source the upstream rejected token (401); the next
	// Token call refreshes. It is a no-op unless token is still the current
	// one, since many in-flight requests may report the same token.
	Invalidate(token string)
}

// Static is an API key: Token returns it and Invalidate does nothing.
type Static string

// Token returns the key.
func (s Static) Token(context.Context) (string, error) { return string(s), nil }

// Invalidate does nothing: a rejected API key cannot be refreshed.
func (Static) Invalidate(string) {}

var (
	_ Source = Static("")
	_ Source = (*OAuth)(nil)
)

// ErrNotStored is the error a Store may return (or wrap) when it holds no
// credential for an account. A Store with its own sentinel (such as
// store.ErrNoRow) is adapted through OAuthConfig.NotFound instead.
var ErrNotStored = errors.New("credential not stored")

// Store persists rotated credentials. *store.DB implements it (its absence
// error is store.ErrNoRow, see OAuthConfig.NotFound); a Redis store may later.
type Store interface {
	// Credential returns the stored credential of accountID, or an error that
	// OAuthConfig.NotFound recognises when there is none.
	Credential(ctx context.Context, accountID string) (state.Credential, error)
	// SaveCredential durably upserts c; when it returns nil the credential
	// must survive a crash.
	SaveCredential(ctx context.Context, c state.Credential) error
}

// Locker serialises the refreshes of one account across processes (a Redis
// lease in a cluster). A nil Locker means refreshes are serialised in this
// process only.
type Locker interface {
	// Lock blocks until accountID's lock is held or ctx ends; unlock releases it.
	Lock(ctx context.Context, accountID string) (unlock func(), err error)
}

// OriginHash is the hex SHA-256 of a config file's refresh token. A stored
// credential records the hash of the token its chain grew from, so a new
// token in the config (a new login, a hand edit) is recognised and wins.
func OriginHash(refreshToken string) string {
	sum := sha256.Sum256([]byte(refreshToken))
	return hex.EncodeToString(sum[:])
}

// The states Status reports.
const (
	// StateOK means the source has (or can get) a working access token.
	StateOK = "ok"
	// StateTokenInvalid means the provider rejected the refresh token
	// (invalid_grant): the account needs a new login.
	StateTokenInvalid = "token_invalid"
	// StateRefreshFailing means the last refresh failed for a reason that may
	// pass (network, 5xx, 429); it is being retried with back-off.
	StateRefreshFailing = "refresh_failing"
)

// Status is a secret-free snapshot of an OAuth source for the CLI and logs.
type Status struct {
	// State is StateOK, StateTokenInvalid or StateRefreshFailing.
	State string
	// ExpiresAt is when the current access token expires (zero if none yet).
	ExpiresAt time.Time
	// LastError describes the last refresh failure, or a rotated credential
	// that could not be saved yet; empty when all is well.
	LastError string
	// Hint tells the operator what to do, e.g. the login command to run.
	Hint string
}

// RefreshError is returned by Token when a refresh fails; the relay turns it
// into a cooldown (Verdict) and fails over to another account. It carries no
// token or secret.
type RefreshError struct {
	// Kind is TokenInvalid for invalid_grant, RateLimited for 429,
	// ServerError for 5xx, malformed answers and local store or lock
	// failures, Network for transport errors and Unavailable for other
	// refusals (401/403 without invalid_grant).
	Kind provider.Kind
	// Until is when the source will try again (for RateLimited at least the
	// provider's Retry-After, clamped to 5 s..5 min); zero for TokenInvalid,
	// which no waiting cures.
	Until time.Time
	// Msg is a short, secret-free description.
	Msg string

	cause error
}

// Error returns the message prefixed with what failed.
func (e *RefreshError) Error() string { return "oauth refresh: " + e.Msg }

// Unwrap returns the underlying transport error, if any (for errors.Is with
// context.DeadlineExceeded and the like).
func (e *RefreshError) Unwrap() error { return e.cause }

// Verdict tells the relay what the failure means for the account.
func (e *RefreshError) Verdict() provider.Verdict {
	return provider.Verdict{Kind: e.Kind, Until: e.Until, Reason: e.Msg}
}

// LongLived is a long-lived bearer token (claude-token): it is not
// refreshed. Once the upstream rejects it (Invalidate), Token fails with a
// TokenInvalid error that says how to get a new one, so the account cools
// down as invalid and the request fails over; only a new token in the
// config (a restart) brings it back.
type LongLived struct {
	tok, fix string
	rejected atomic.Bool
}

var _ Source = (*LongLived)(nil)

// NewLongLived returns the source of token; fix is the command that gets a
// new one, for the error.
func NewLongLived(token, fix string) *LongLived { return &LongLived{tok: token, fix: fix} }

// Token returns the token until the upstream has rejected it.
func (l *LongLived) Token(context.Context) (string, error) {
	if l.rejected.Load() {
		return "", &RefreshError{Kind: provider.TokenInvalid, Msg: "the token was rejected (401); run: " + l.fix}
	}
	return l.tok, nil
}

// Invalidate records that the upstream rejected token.
func (l *LongLived) Invalidate(token string) {
	if token != "" && token == l.tok {
		l.rejected.Store(true)
	}
}
