package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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

// Brake limits wrong admin keys per client address (policy.Brake, the
// relay's wrong-key brake): after its limit of failures within a minute,
// every attempt from the address waits.
type Brake interface {
	// Blocked returns how long addr must wait before its next attempt; 0
	// when it may try now.
	Blocked(addr netip.Addr) time.Duration
	// Fail records a wrong key from addr.
	Fail(addr netip.Addr)
}

// ErrWrongKey is SignIn's answer to a key that is not an admin key.
var ErrWrongKey = errors.New("that is not an admin key")

// BrakedError is SignIn's answer while the client's address is braked for
// presenting too many wrong admin keys.
type BrakedError struct {
	// Wait is how long the address must wait before its next attempt.
	Wait time.Duration
}

func (e *BrakedError) Error() string {
	return fmt.Sprintf("too many wrong admin keys from this address; try again in %d s", waitSeconds(e.Wait))
}

// waitSeconds rounds a wait up to whole seconds, at least 1.
func waitSeconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// Auth decides who may use the admin API: a request that presents an admin
// key (Authorization: Bearer, or X-Api-Key), or a dashboard session cookie
// with, for anything but a read, its CSRF token. Keys are compared as sha256
// digests in constant time, every configured key each time. With a Brake
// (UseBrake), wrong keys count against the client's address, on the admin
// API and at the dashboard's sign-in alike.
type Auth struct {
	admin [][32]byte
	relay [][32]byte
	now   func() time.Time

	brake      Brake
	clientAddr func(*http.Request) netip.Addr

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

// UseBrake makes wrong admin keys count against the client's address:
// past the brake's limit, every key the address presents (the right one
// too) is refused with 429 until it has waited, so guessing admin keys
// costs time. clientAddr resolves the client (the relay believes
// X-Forwarded-For only from trusted proxies); nil means the TCP peer. Call
// it before serving.
func (a *Auth) UseBrake(b Brake, clientAddr func(*http.Request) netip.Addr) {
	if clientAddr == nil {
		clientAddr = peerAddr
	}
	a.brake, a.clientAddr = b, clientAddr
}

// peerAddr is the TCP peer's address of r (invalid if unparsable).
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(host)
	return addr.Unmap()
}

// braked returns how long r's address must wait before presenting a key.
func (a *Auth) braked(r *http.Request) time.Duration {
	if a.brake == nil {
		return 0
	}
	return a.brake.Blocked(a.clientAddr(r))
}

// failed counts a wrong key from r's address.
func (a *Auth) failed(r *http.Request) {
	if a.brake != nil {
		a.brake.Fail(a.clientAddr(r))
	}
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

// check returns 0 when r may proceed, else the status and message to
// answer, and for 429 how long to wait.
func (a *Auth) check(r *http.Request) (int, string, time.Duration) {
	if key := presentedKey(r); key != "" {
		if wait := a.braked(r); wait > 0 {
			return http.StatusTooManyRequests, (&BrakedError{Wait: wait}).Error(), wait
		}
		sum := sha256.Sum256([]byte(key))
		switch {
		case anyEqual(sum, a.admin):
			return 0, "", 0
		case anyEqual(sum, a.relay):
			return http.StatusForbidden, "a relay key is not an admin key; send one of admin_keys", 0
		}
		a.failed(r)
		return http.StatusUnauthorized, "invalid admin key", 0
	}
	c, err := r.Cookie(Cookie)
	if err != nil || c.Value == "" {
		return http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>", 0
	}
	csrf, ok := a.session(c.Value)
	if !ok {
		return http.StatusUnauthorized, "the dashboard session expired; sign in again", 0
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
			return http.StatusForbidden, "missing or wrong CSRF token", 0
		}
	}
	return 0, "", 0
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

// SignIn starts a dashboard session for the admin key r's form presents:
// it returns the cookie value and the session's CSRF token. A wrong key is
// ErrWrongKey and counts against r's address; while the address is braked
// every key is refused with a *BrakedError.
func (a *Auth) SignIn(r *http.Request, key string) (id, csrf string, err error) {
	if wait := a.braked(r); wait > 0 {
		return "", "", &BrakedError{Wait: wait}
	}
	if !a.ValidKey(key) {
		a.failed(r)
		return "", "", ErrWrongKey
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
	return id, csrf, nil
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
