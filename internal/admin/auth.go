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
	// admin is the sha256 of the admin key that signed in: the session
	// ends when that key is no longer in force.
	admin [32]byte
}

// Brake limits wrong admin keys per client address (policy.Brake, the
// relay's wrong-key brake): after its limit of failures within a minute,
// further wrong keys from the address are answered 429 until it has waited.
// A right key is always served.
type Brake interface {
	// Blocked returns how long addr must wait before its next attempt; 0
	// when it may try now.
	Blocked(addr netip.Addr) time.Duration
	// Fail records a wrong key from addr.
	Fail(addr netip.Addr)
}

// Keys are the keys Auth checks. They are asked on every request, so a
// config reload that adds, replaces or removes a key applies to the next
// request (and ends the dashboard sessions a removed key signed in).
type Keys interface {
	// AdminKeys returns the admin keys in force.
	AdminKeys() []string
	// IsRelayKey reports whether key is a relay key in force (api_keys or
	// a [[keys]] entry, enabled or not). It must not reveal through its
	// timing anything about the keys (policy.Authenticate does not).
	IsRelayKey(key string) bool
}

// StaticKeys is a fixed set of keys, for tests and tools.
type StaticKeys struct {
	Admin, Relay []string
}

// AdminKeys returns the admin keys.
func (s StaticKeys) AdminKeys() []string { return s.Admin }

// IsRelayKey compares key's digest with every relay key's in constant time.
func (s StaticKeys) IsRelayKey(key string) bool {
	return key != "" && anyEqual(sha256.Sum256([]byte(key)), digests(s.Relay))
}

// ErrWrongKey is SignIn's answer to a key that is not an admin key.
var ErrWrongKey = errors.New("that is not an admin key")

// ErrRelayKey is SignIn's answer to a relay key: not an admin key, and not a
// guess either, so it does not count against the address.
var ErrRelayKey = errors.New("that is a relay key, not an admin key")

// BrakedError is SignIn's answer to a wrong key while the client's address
// is braked for presenting too many wrong admin keys.
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
// key in force (Authorization: Bearer, or X-Api-Key), or a dashboard
// session cookie, signed in with a key still in force, with, for anything
// but a read, its CSRF token. Keys are compared as sha256 digests in
// constant time, every admin key each time. A relay key is answered 403
// and is not counted as a guess. With a Brake (UseBrake), wrong keys count
// against the client's address, on the admin API and at the dashboard's
// sign-in alike; past the brake's limit wrong keys get 429, while the right
// key is still served.
type Auth struct {
	keys Keys
	now  func() time.Time

	brake      Brake
	clientAddr func(*http.Request) netip.Addr

	mu       sync.Mutex
	sessions map[[32]byte]session // by sha256 of the cookie value
}

// NewAuth builds the check over a fixed set of admin keys; relay keys are
// known only to answer them 403 rather than 401. The relay uses
// NewAuthFrom, which follows reloads.
func NewAuth(adminKeys, relayKeys []string) *Auth {
	return NewAuthFrom(StaticKeys{Admin: adminKeys, Relay: relayKeys})
}

// NewAuthFrom builds the check over keys, asked on every request.
func NewAuthFrom(keys Keys) *Auth {
	return &Auth{keys: keys, now: time.Now, sessions: map[[32]byte]session{}}
}

func digests(keys []string) [][32]byte {
	out := make([][32]byte, len(keys))
	for i, k := range keys {
		out[i] = sha256.Sum256([]byte(k))
	}
	return out
}

// UseBrake makes wrong admin keys count against the client's address:
// past the brake's limit, every wrong key the address presents is refused
// with 429 until it has waited, so guessing admin keys costs time; the right
// key is still served (people behind one NAT address are not locked out by
// another's guesses). clientAddr resolves the client (the relay believes
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

// Enabled reports whether any admin key is in force.
func (a *Auth) Enabled() bool { return len(a.keys.AdminKeys()) > 0 }

func anyEqual(sum [32]byte, set [][32]byte) bool {
	match := 0
	for i := range set {
		match |= subtle.ConstantTimeCompare(sum[:], set[i][:])
	}
	return match == 1
}

// isAdmin reports whether sum is the digest of an admin key in force.
func (a *Auth) isAdmin(sum [32]byte) bool { return anyEqual(sum, digests(a.keys.AdminKeys())) }

// ValidKey reports whether key is an admin key in force.
func (a *Auth) ValidKey(key string) bool {
	return key != "" && a.isAdmin(sha256.Sum256([]byte(key)))
}

func presentedKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return r.Header.Get("X-Api-Key")
}

// CheckKey checks the admin key r presents (Authorization: Bearer or
// X-Api-Key; a session cookie is not looked at): it returns 0 when r may
// proceed, else the status and message to answer, and for 429 how long to
// wait. An admin key in force passes, braked or not; a relay key is 403
// and never counts against the address; a wrong key counts, and is 429
// while the address is braked.
func (a *Auth) CheckKey(r *http.Request) (status int, msg string, wait time.Duration) {
	key := presentedKey(r)
	if key == "" {
		return http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>", 0
	}
	if a.ValidKey(key) {
		return 0, "", 0
	}
	if a.keys.IsRelayKey(key) {
		return http.StatusForbidden, "a relay key is not an admin key; send one of admin_keys", 0
	}
	if wait := a.braked(r); wait > 0 {
		return http.StatusTooManyRequests, (&BrakedError{Wait: wait}).Error(), wait
	}
	a.failed(r)
	return http.StatusUnauthorized, "invalid admin key", 0
}

// check is CheckKey for a request presenting a key, else the dashboard
// session cookie with, for anything but a read, its CSRF token.
func (a *Auth) check(r *http.Request) (int, string, time.Duration) {
	if presentedKey(r) != "" {
		return a.CheckKey(r)
	}
	c, err := r.Cookie(Cookie)
	if err != nil || c.Value == "" {
		return http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>", 0
	}
	csrf, ok := a.session(c.Value)
	if !ok {
		return http.StatusUnauthorized, "the dashboard session ended (expired, or its admin key was removed); sign in again", 0
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
			return http.StatusForbidden, "missing or wrong CSRF token", 0
		}
	}
	return 0, "", 0
}

// session returns the CSRF token of the session id names, if it has not
// expired and the admin key that signed it in is still in force; a session
// that fails either is forgotten.
func (a *Auth) session(id string) (string, bool) {
	h := sha256.Sum256([]byte(id))
	a.mu.Lock()
	s, ok := a.sessions[h]
	a.mu.Unlock()
	if !ok {
		return "", false
	}
	if !s.expires.After(a.now()) || !a.isAdmin(s.admin) {
		a.mu.Lock()
		delete(a.sessions, h)
		a.mu.Unlock()
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
// it returns the cookie value and the session's CSRF token. An admin key in
// force signs in even while r's address is braked. A relay key is
// ErrRelayKey and is not counted; any other key counts against r's address
// and is ErrWrongKey, or a *BrakedError while the address is braked.
func (a *Auth) SignIn(r *http.Request, key string) (id, csrf string, err error) {
	sum := sha256.Sum256([]byte(key))
	switch {
	case key != "" && a.isAdmin(sum):
	case key != "" && a.keys.IsRelayKey(key):
		return "", "", ErrRelayKey
	default:
		if wait := a.braked(r); wait > 0 {
			return "", "", &BrakedError{Wait: wait}
		}
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
	a.sessions[sha256.Sum256([]byte(id))] = session{csrf: csrf, expires: now.Add(SessionTTL), admin: sum}
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
