package credential

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/testutil"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	m       map[string]state.Credential
	saveErr error
	loadErr error
	// notFoundErr is returned for a missing row (default: wrapped ErrNotStored).
	notFoundErr error
	saves       int
	// afterSave, when set, runs after a successful save (outside the lock).
	afterSave func(state.Credential)
}

func newMemStore() *memStore { return &memStore{m: map[string]state.Credential{}} }

func (s *memStore) Credential(_ context.Context, id string) (state.Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return state.Credential{}, s.loadErr
	}
	c, ok := s.m[id]
	if !ok {
		if s.notFoundErr != nil {
			return c, s.notFoundErr
		}
		return c, fmt.Errorf("mem store: %w", ErrNotStored)
	}
	return c, nil
}

func (s *memStore) SaveCredential(_ context.Context, c state.Credential) error {
	s.mu.Lock()
	if s.saveErr != nil {
		err := s.saveErr
		s.mu.Unlock()
		return err
	}
	if old, ok := s.m[c.AccountID]; ok && old.Generation > c.Generation {
		s.mu.Unlock()
		return state.ErrSuperseded // the store contract (store.DB.SaveCredential)
	}
	s.m[c.AccountID] = c
	s.saves++
	hook := s.afterSave
	s.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return nil
}

func (s *memStore) get(id string) (state.Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	return c, ok
}

func (s *memStore) setSaveErr(err error) {
	s.mu.Lock()
	s.saveErr = err
	s.mu.Unlock()
}

// memLocker is an in-memory Locker shared by the "processes" of a test.
type memLocker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
	count int
}

func newMemLocker() *memLocker { return &memLocker{locks: map[string]chan struct{}{}} }

func (l *memLocker) Lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	ch, ok := l.locks[id]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[id] = ch
	}
	l.count++
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tokenEndpoint is a strict fake token endpoint: it knows which refresh
// tokens are live, rotates them when asked, and flags any reuse of a
// consumed one as a test failure.
type tokenEndpoint struct {
	t     *testing.T
	srv   *httptest.Server
	style Style

	mu       sync.Mutex
	live     map[string]bool
	consumed map[string]bool
	secrets  []string // every token issued or accepted, for leak checks
	posts    int
	reuses   int
	next     int
	rotate   bool
	lifetime int // expires_in seconds
	// gate, when set, holds every request until it is closed.
	gate chan struct{}
	// respond, when set, may answer a request itself (returns true).
	respond func(w http.ResponseWriter, n int) bool
	// Last request seen.
	header http.Header
	fields map[string]string
	used   []string // refresh tokens presented, in order
	// clock stamps each POST into postTimes.
	clock     func() time.Time
	postTimes []time.Time
}

// set changes the endpoint's behaviour under its lock.
func (ep *tokenEndpoint) set(f func(*tokenEndpoint)) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	f(ep)
}

func (ep *tokenEndpoint) reuseCount() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.reuses
}

func (ep *tokenEndpoint) last() (http.Header, map[string]string) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.header, ep.fields
}

func (ep *tokenEndpoint) times() []time.Time {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]time.Time(nil), ep.postTimes...)
}

func newEndpoint(t *testing.T, style Style, rotate bool, liveTokens ...string) *tokenEndpoint {
	t.Helper()
	ep := &tokenEndpoint{t: t, style: style, live: map[string]bool{}, consumed: map[string]bool{}, rotate: rotate, lifetime: 8 * 3600}
	for _, rt := range liveTokens {
		ep.live[rt] = true
		ep.secrets = append(ep.secrets, rt)
	}
	ep.srv = httptest.NewServer(http.HandlerFunc(ep.serve))
	t.Cleanup(func() {
		ep.mu.Lock()
		if ep.gate != nil {
			select {
			case <-ep.gate:
			default:
				close(ep.gate)
			}
		}
		ep.mu.Unlock()
		ep.srv.Close()
	})
	return ep
}

func (ep *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	if ep.style == Google {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		for k := range r.PostForm {
			fields[k] = r.PostForm.Get(k)
		}
	} else if err := json.NewDecoder(r.Body).Decode(&fields); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	ep.mu.Lock()
	ep.posts++
	n := ep.posts
	ep.header = r.Header.Clone()
	if ep.clock != nil {
		ep.postTimes = append(ep.postTimes, ep.clock())
	}
	ep.fields = fields
	gate, respond := ep.gate, ep.respond
	ep.mu.Unlock()

	if r.Method != http.MethodPost {
		ep.t.Errorf("token endpoint got %s", r.Method)
	}
	if gate != nil {
		<-gate
	}
	if respond != nil && respond(w, n) {
		return
	}
	if fields["grant_type"] != "refresh_token" {
		writeJSON(w, http.StatusBadRequest, `{"error":"unsupported_grant_type"}`)
		return
	}
	rt := fields["refresh_token"]
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.used = append(ep.used, rt)
	if ep.consumed[rt] {
		ep.reuses++
		ep.t.Errorf("a consumed refresh token was sent again (use #%d)", n)
	}
	if !ep.live[rt] {
		// Echo the token, as some servers do, to prove messages scrub it.
		writeJSON(w, http.StatusBadRequest, fmt.Sprintf(`{"error":"invalid_grant","error_description":"Invalid refresh token %s"}`, rt))
		return
	}
	ep.next++
	resp := map[string]any{"token_type": "Bearer", "expires_in": ep.lifetime}
	if ep.style == Google {
		resp["access_token"] = fmt.Sprintf("ya29.access-%d-abcdefgh", ep.next)
	} else {
		resp["access_token"] = fmt.Sprintf("sk-ant-oat01-access-%d-abcdefgh", ep.next)
	}
	ep.secrets = append(ep.secrets, resp["access_token"].(string))
	if ep.rotate {
		nrt := fmt.Sprintf("sk-ant-ort01-refresh-%d-abcdefgh", ep.next)
		if ep.style == Google {
			nrt = fmt.Sprintf("1//refresh-%d-abcdefghijkl", ep.next)
		}
		delete(ep.live, rt)
		ep.consumed[rt] = true
		ep.live[nrt] = true
		ep.secrets = append(ep.secrets, nrt)
		resp["refresh_token"] = nrt
	}
	b, _ := json.Marshal(resp)
	writeJSON(w, http.StatusOK, string(b))
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func (ep *tokenEndpoint) postCount() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.posts
}

func (ep *tokenEndpoint) lastUsed() string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.used) == 0 {
		return ""
	}
	return ep.used[len(ep.used)-1]
}

func (ep *tokenEndpoint) allSecrets() []string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]string(nil), ep.secrets...)
}

func (ep *tokenEndpoint) setRespond(f func(w http.ResponseWriter, n int) bool) {
	ep.mu.Lock()
	ep.respond = f
	ep.mu.Unlock()
}

// env is one test's world: a clock, a store, an endpoint and a log.
type env struct {
	t     *testing.T
	clock *fakeClock
	store *memStore
	ep    *tokenEndpoint
	logs  *testutil.SyncBuffer
	// extra secrets that must never appear in logs or errors.
	secrets []string
}

// Style picks the token endpoint a test talks to: Anthropic's (a JSON body,
// rotating refresh tokens) or Google's (a form body with a client secret).
type Style int

const (
	Claude Style = iota
	Google
)

// spec is the account type that refreshes in this style.
func (s Style) spec() *accounttype.Spec {
	if s == Google {
		return accounttype.Lookup("gemini")
	}
	return accounttype.Lookup("claude-oauth")
}

// String names the style in subtests.
func (s Style) String() string { return s.spec().Type }

// loginName is the `ccrelay login` argument of the style's type.
func (s Style) loginName() string { return s.spec().Login.Name }

// The types' default clients.
const (
	claudeClientID     = accounttype.ClaudeClientID
	googleClientID     = accounttype.GoogleClientID
	googleClientSecret = accounttype.GoogleClientSecret
)

const (
	acct     = "acct-1"
	claudeRT = "sk-ant-ort01-config-token-abcdefgh"
	googleRT = "1//config-token-abcdefghijkl"
)

func newEnv(t *testing.T, style Style, rotate bool) *env {
	t.Helper()
	rt := claudeRT
	if style == Google {
		rt = googleRT
	}
	e := &env{t: t, clock: newClock(), store: newMemStore(), logs: &testutil.SyncBuffer{}, secrets: []string{rt, googleClientSecret}}
	e.ep = newEndpoint(t, style, rotate, rt)
	e.ep.clock = e.clock.Now
	t.Cleanup(func() { e.assertNoSecrets("logs", e.logs.String()) })
	return e
}

func (e *env) cfg() OAuthConfig {
	style, rt := Claude, claudeRT
	if e.ep.style == Google {
		style, rt = Google, googleRT
	}
	return OAuthConfig{AccountID: acct, ConfigRefreshToken: rt, TokenURL: e.ep.srv.URL + "/v1/oauth/token", Type: style.spec()}
}

// newOAuth builds a source against the env ("a process").
func (e *env) newOAuth(cfg OAuthConfig, lk Locker) *OAuth {
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := NewOAuth(cfg, e.ep.srv.Client(), e.store, lk, log)
	o.now = e.clock.Now
	return o
}

func (e *env) assertNoSecrets(what, s string) {
	e.t.Helper()
	for _, sec := range append(e.ep.allSecrets(), e.secrets...) {
		if sec != "" && strings.Contains(s, sec) {
			e.t.Errorf("%s leak a secret (%.12s...): %s", what, sec, s)
		}
	}
}

// token calls Token and checks the error text for secrets.
func (e *env) token(o *OAuth) (string, error) {
	e.t.Helper()
	tok, err := o.Token(context.Background())
	if err != nil {
		e.assertNoSecrets("error", err.Error())
		e.assertNoSecrets("status", fmt.Sprintf("%+v", o.Status()))
	}
	return tok, err
}

func (e *env) mustToken(o *OAuth) string {
	e.t.Helper()
	tok, err := e.token(o)
	if err != nil {
		e.t.Fatalf("Token: %v", err)
	}
	if tok == "" {
		e.t.Fatal("Token returned an empty token")
	}
	return tok
}
