package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Cookie names the dashboard's session cookie.
const Cookie = "ccrelay_admin"

// CSRFHeader carries the session's CSRF token on every state-changing
// request authenticated by the session cookie.
const CSRFHeader = "X-CSRF-Token"

// SessionTTL is how long a dashboard sign-in lasts.
const SessionTTL = 12 * time.Hour

// maxSessions bounds the sign-ins kept in memory; the oldest goes first.
const maxSessions = 1024

type session struct {
	csrf    string
	expires time.Time
}

// Auth decides who may use the admin API: a request that presents an admin
// key (Authorization: Bearer, or X-Api-Key), or a dashboard session cookie
// with, for anything but a read, its CSRF token. Keys are compared as sha256
// digests in constant time, every configured key each time.
type Auth struct {
	admin [][32]byte
	relay [][32]byte
	now   func() time.Time

	mu       sync.Mutex
	sessions map[[32]byte]session // by sha256 of the cookie value
}

// NewAuth builds the check over the admin keys; relay keys are known only to
// answer them 403 rather than 401.
func NewAuth(adminKeys, relayKeys []string) *Auth {
	a := &Auth{now: time.Now, sessions: map[[32]byte]session{}}
	for _, k := range adminKeys {
		a.admin = append(a.admin, sha256.Sum256([]byte(k)))
	}
	for _, k := range relayKeys {
		a.relay = append(a.relay, sha256.Sum256([]byte(k)))
	}
	return a
}

// Enabled reports whether any admin key is configured.
func (a *Auth) Enabled() bool { return len(a.admin) > 0 }

func anyEqual(sum [32]byte, set [][32]byte) bool {
	match := 0
	for i := range set {
		match |= subtle.ConstantTimeCompare(sum[:], set[i][:])
	}
	return match == 1
}

// ValidKey reports whether key is an admin key.
func (a *Auth) ValidKey(key string) bool {
	if key == "" {
		return false
	}
	return anyEqual(sha256.Sum256([]byte(key)), a.admin)
}

func presentedKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return r.Header.Get("X-Api-Key")
}

// check returns 0 when r may proceed, else the status and message to answer.
func (a *Auth) check(r *http.Request) (int, string) {
	if key := presentedKey(r); key != "" {
		sum := sha256.Sum256([]byte(key))
		switch {
		case anyEqual(sum, a.admin):
			return 0, ""
		case anyEqual(sum, a.relay):
			return http.StatusForbidden, "a relay key is not an admin key; send one of admin_keys"
		}
		return http.StatusUnauthorized, "invalid admin key"
	}
	c, err := r.Cookie(Cookie)
	if err != nil || c.Value == "" {
		return http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>"
	}
	csrf, ok := a.session(c.Value)
	if !ok {
		return http.StatusUnauthorized, "the dashboard session expired; sign in again"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
			return http.StatusForbidden, "missing or wrong CSRF token"
		}
	}
	return 0, ""
}

func (a *Auth) session(id string) (string, bool) {
	h := sha256.Sum256([]byte(id))
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[h]
	if !ok {
		return "", false
	}
	if !s.expires.After(a.now()) {
		delete(a.sessions, h)
		return "", false
	}
	return s.csrf, true
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SignIn starts a dashboard session for an admin key: it returns the cookie
// value and the session's CSRF token, or ok false for a wrong key.
func (a *Auth) SignIn(key string) (id, csrf string, ok bool) {
	if !a.ValidKey(key) {
		return "", "", false
	}
	id, csrf = randomToken(), randomToken()
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, s := range a.sessions {
		if !s.expires.After(now) {
			delete(a.sessions, h)
		}
	}
	if len(a.sessions) >= maxSessions {
		var oldest [32]byte
		var first time.Time
		for h, s := range a.sessions {
			if first.IsZero() || s.expires.Before(first) {
				oldest, first = h, s.expires
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[sha256.Sum256([]byte(id))] = session{csrf: csrf, expires: now.Add(SessionTTL)}
	return id, csrf, true
}

// Session returns the CSRF token of the request's dashboard session.
func (a *Auth) Session(r *http.Request) (csrf string, ok bool) {
	c, err := r.Cookie(Cookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	return a.session(c.Value)
}

// SignOut ends the request's dashboard session.
func (a *Auth) SignOut(r *http.Request) {
	if c, err := r.Cookie(Cookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, sha256.Sum256([]byte(c.Value)))
		a.mu.Unlock()
	}
}
