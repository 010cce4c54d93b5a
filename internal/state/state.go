// Package state defines the records of the relay's durable state: sticky
// session bindings, account cooldowns and rotated OAuth credentials. The
// scheduler and the credential manager keep them in memory; a store (SQLite,
// and Redis in a cluster) persists them.
package state

import (
	"errors"
	"time"
)

// Binding ties a conversation (session key) to an account.
type Binding struct {
	Key       string
	AccountID string
	ExpiresAt time.Time
	// KeyName and KeyHash are the relay key of the conversation's last
	// turn (its [[keys]] name, "" for an api_keys entry; its hash), Model
	// the model it asked for, LastTurn when it was picked. Zero when
	// unknown: a binding restored from the database, or one learnt from a
	// relay that does not send them.
	KeyName  string
	KeyHash  string
	Model    string
	LastTurn time.Time
}

// Cooldown keeps an account (or one model on it, when Model is set) out of
// rotation until Until.
type Cooldown struct {
	AccountID string
	Model     string
	Kind      string // provider.Kind name
	Reason    string
	Until     time.Time
}

// Credential is the newest OAuth credential of an account.
type Credential struct {
	AccountID    string
	RefreshToken string
	AccessToken  string
	ExpiresAt    time.Time
	// OriginHash is sha256 of the config file's refresh_token this chain grew
	// from: when the config holds a different token (a new login), the config wins.
	OriginHash string
	UpdatedAt  time.Time
	// Generation orders chains: a source that starts a chain from a config
	// token the stored one did not grow from (a new login) gives it a
	// generation above the stored one's (and at least its start time in
	// Unix milliseconds, so of two chains started apart the later is
	// higher). Refreshing keeps it. A store never replaces a credential of
	// a higher generation (ErrSuperseded): a request still running on the
	// old chain cannot overwrite a newer login's. Zero in rows written
	// before generations existed.
	Generation int64
}

// ErrSuperseded is returned by a store's SaveCredential when it holds a
// credential of a higher generation (a newer login) than the one saved; the
// stored credential is left as it is.
var ErrSuperseded = errors.New("a newer login's credential is stored for this account")
