package credential

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

func TestStatic(t *testing.T) {
	var s Source = Static("sk-key")
	s.Invalidate("sk-key")
	tok, err := s.Token(context.Background())
	if tok != "sk-key" || err != nil {
		t.Fatalf("Static.Token = %q, %v", tok, err)
	}
}

func TestOriginHash(t *testing.T) {
	// sha256("abc")
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := OriginHash("abc"); got != want {
		t.Fatalf("OriginHash = %s, want %s", got, want)
	}
}

func TestCachedToken(t *testing.T) {
	e := newEnv(t, Claude, true)
	o := e.newOAuth(e.cfg(), nil)
	first := e.mustToken(o)
	if n := e.ep.postCount(); n != 1 {
		t.Fatalf("posts = %d, want 1", n)
	}
	e.clock.Advance(7 * time.Hour) // 8 h token, 48 min margin: still fresh
	if got := e.mustToken(o); got != first {
		t.Fatalf("cached token changed: %q -> %q", first, got)
	}
	if n := e.ep.postCount(); n != 1 {
		t.Fatalf("posts = %d after cached use, want 1", n)
	}
	if st := o.Status(); st.State != StateOK || !st.ExpiresAt.Equal(newClock().Now().Add(8*time.Hour)) || st.LastError != "" {
		t.Fatalf("Status = %+v", st)
	}
}

func TestMargin(t *testing.T) {
	tests := []struct {
		lifetime, want time.Duration
	}{
		{8 * time.Hour, 48 * time.Minute},
		{time.Hour, 6 * time.Minute},
		{5 * time.Minute, time.Minute},
		{time.Minute, 30 * time.Second},
		{15 * time.Second, 10 * time.Second},
		{0, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.lifetime.String(), func(t *testing.T) {
			if got := margin(tt.lifetime); got != tt.want {
				t.Fatalf("margin(%v) = %v, want %v", tt.lifetime, got, tt.want)
			}
		})
	}
}

func TestProactiveRefreshMargin(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.lifetime = 3600 }) // margin max(60 s, 6 min) = 6 min
	o := e.newOAuth(e.cfg(), nil)
	first := e.mustToken(o)
	e.clock.Advance(54*time.Minute - time.Second)
	if got := e.mustToken(o); got != first || e.ep.postCount() != 1 {
		t.Fatalf("refreshed %v before the margin", 6*time.Minute+time.Second)
	}
	e.clock.Advance(2 * time.Second) // 5m59s left: inside the margin
	if got := e.mustToken(o); got == first || e.ep.postCount() != 2 {
		t.Fatalf("no refresh inside the margin (posts %d)", e.ep.postCount())
	}
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.gate = make(chan struct{}) })
	o := e.newOAuth(e.cfg(), nil)

	const n = 100
	var started, done sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	started.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			started.Done()
			toks[i], errs[i] = o.Token(context.Background())
		}()
	}
	started.Wait()
	for e.ep.postCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	e.ep.set(func(ep *tokenEndpoint) { close(ep.gate) })
	done.Wait()
	if p := e.ep.postCount(); p != 1 {
		t.Fatalf("posts = %d, want exactly 1", p)
	}
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] || toks[i] == "" {
			t.Fatalf("caller %d got %q, %v; caller 0 got %q", i, toks[i], errs[i], toks[0])
		}
	}
}

func TestWaiterContextIsRespected(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.gate = make(chan struct{}) })
	o := e.newOAuth(e.cfg(), nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := o.Token(ctx)
		errc <- err
	}()
	for e.ep.postCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Token with a cancelled ctx = %v, want context.Canceled", err)
	}
	// The refresh itself was not cancelled: once it ends, its token is cached.
	e.ep.set(func(ep *tokenEndpoint) { close(ep.gate) })
	e.mustToken(o)
	if p := e.ep.postCount(); p != 1 {
		t.Fatalf("posts = %d, want 1 (the abandoned refresh must complete and be reused)", p)
	}
}

func TestRotationIsPersistedAndNeverReused(t *testing.T) {
	e := newEnv(t, Claude, true)
	o := e.newOAuth(e.cfg(), nil)
	for i := range 5 {
		tok := e.mustToken(o)
		c, ok := e.store.get(acct)
		if !ok {
			t.Fatal("nothing stored after a refresh")
		}
		if c.AccessToken != tok || c.RefreshToken != e.ep.lastIssuedRefresh() || c.OriginHash != OriginHash(claudeRT) ||
			!c.ExpiresAt.Equal(e.clock.Now().Add(8*time.Hour)) || !c.UpdatedAt.Equal(e.clock.Now()) {
			t.Fatalf("refresh %d stored %+v", i, redacted(c))
		}
		e.clock.Advance(8 * time.Hour)
	}
	if e.ep.postCount() != 5 || e.ep.reuseCount() != 0 {
		t.Fatalf("posts %d reuses %d", e.ep.postCount(), e.ep.reuseCount())
	}
}

func (ep *tokenEndpoint) lastIssuedRefresh() string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for rt := range ep.live {
		return rt
	}
	return ""
}

func redacted(c state.Credential) string {
	return fmt.Sprintf("{rt:%t at:%t exp:%v origin:%.8s}", c.RefreshToken != "", c.AccessToken != "", c.ExpiresAt, c.OriginHash)
}

func TestSaveFailureKeepsTheNewestRefreshToken(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.store.setSaveErr(errors.New("disk I/O error"))
	o := e.newOAuth(e.cfg(), nil)

	// The token endpoint consumed the config token: the access token is still
	// handed out, and the new refresh token kept in memory.
	at1 := e.mustToken(o)
	if _, ok := e.store.get(acct); ok {
		t.Fatal("store has a credential although saving fails")
	}
	if st := o.Status(); st.State != StateOK || !strings.Contains(st.LastError, "not saved") || !strings.Contains(st.LastError, "disk I/O error") {
		t.Fatalf("Status after a failed save = %+v", st)
	}
	// Next refresh: still failing to save, but the strict endpoint sees the
	// rotated token, never the consumed one.
	e.clock.Advance(8 * time.Hour)
	at2 := e.mustToken(o)
	if at2 == at1 || e.ep.reuseCount() != 0 || e.ep.lastUsed() == claudeRT {
		t.Fatalf("reused a consumed refresh token (reuses %d)", e.ep.reuseCount())
	}
	if n := strings.Count(e.logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("logged %d errors for repeated save failures, want 1:\n%s", n, e.logs.String())
	}

	// The store recovers: Run's next tick saves the newest credential.
	e.store.setSaveErr(nil)
	e.clock.Advance(time.Minute) // past the save retry back-off
	ctx, cancel := context.WithCancel(context.Background())
	o.sleep = func(context.Context, time.Duration) bool { cancel(); return false }
	o.Run(ctx)
	c, ok := e.store.get(acct)
	if !ok || c.AccessToken != at2 || c.OriginHash != OriginHash(claudeRT) {
		t.Fatalf("Run did not save the pending credential: %v %s", ok, redacted(c))
	}
	if st := o.Status(); st.State != StateOK || st.LastError != "" {
		t.Fatalf("Status after the save = %+v", st)
	}

	// A restart continues the chain from the saved token.
	o2 := e.newOAuth(e.cfg(), nil)
	e.clock.Advance(8 * time.Hour)
	e.mustToken(o2)
	if e.ep.reuseCount() != 0 || e.ep.postCount() != 3 {
		t.Fatalf("restart: posts %d reuses %d", e.ep.postCount(), e.ep.reuseCount())
	}
}

func TestRestartAfterPersistBeforeUse(t *testing.T) {
	e := newEnv(t, Claude, true)
	saved := make(chan struct{})
	frozen := make(chan struct{})
	var first atomic.Bool
	e.store.afterSave = func(state.Credential) {
		if first.CompareAndSwap(false, true) {
			close(saved)
			<-frozen // the "process" dies here: after the save, before using it
		}
	}
	t.Cleanup(func() {
		select {
		case <-frozen:
		default:
			close(frozen)
		}
	})
	o1 := e.newOAuth(e.cfg(), nil)
	go func() { _, _ = o1.Token(context.Background()) }()
	<-saved
	if !o1.Status().ExpiresAt.IsZero() {
		t.Fatal("the refreshed credential was relied on before its save returned")
	}

	o2 := e.newOAuth(e.cfg(), nil) // the restarted process, same store and config
	stored, _ := e.store.get(acct)
	if got := e.mustToken(o2); got != stored.AccessToken || e.ep.postCount() != 1 {
		t.Fatalf("restart did not reuse the persisted fresh access token (posts %d)", e.ep.postCount())
	}
	e.clock.Advance(9 * time.Hour)
	e.mustToken(o2)
	if e.ep.reuseCount() != 0 || e.ep.lastUsed() != stored.RefreshToken {
		t.Fatal("restart did not continue with the persisted refresh token")
	}
}

func TestStartupConfigVersusStore(t *testing.T) {
	const storedRT = "sk-ant-ort01-stored-chain-abcdefgh"
	const storedAT = "sk-ant-oat01-stored-access-abcdefgh"
	tests := []struct {
		name       string
		origin     string
		wantPosts  int
		wantUsedRT string
	}{
		// The chain grew from the config token: it is newer, use it (its
		// access token is fresh, so not even a POST).
		{"same origin uses the stored chain", OriginHash(claudeRT), 0, ""},
		// A new login put another token in the config: the config wins.
		{"changed config token wins", OriginHash("sk-ant-ort01-previous-login"), 1, claudeRT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Claude, true)
			e.secrets = append(e.secrets, storedRT, storedAT)
			e.ep.set(func(ep *tokenEndpoint) { ep.live[storedRT] = true }) // would work too: the test checks which is chosen
			now := e.clock.Now()
			e.store.m[acct] = state.Credential{AccountID: acct, RefreshToken: storedRT, AccessToken: storedAT,
				ExpiresAt: now.Add(4 * time.Hour), OriginHash: tt.origin, UpdatedAt: now.Add(-4 * time.Hour)}
			o := e.newOAuth(e.cfg(), nil)
			tok := e.mustToken(o)
			if e.ep.postCount() != tt.wantPosts || e.ep.lastUsed() != tt.wantUsedRT {
				t.Fatalf("posts %d, used config token %t", e.ep.postCount(), e.ep.lastUsed() == claudeRT)
			}
			if tt.wantPosts == 0 {
				if tok != storedAT {
					t.Fatal("did not use the stored access token")
				}
				// Expired: the next refresh spends the stored refresh token.
				e.clock.Advance(5 * time.Hour)
				e.mustToken(o)
				if e.ep.lastUsed() != storedRT {
					t.Fatal("refresh did not use the stored (newest) refresh token")
				}
				return
			}
			if tok == storedAT {
				t.Fatal("used the stored access token of a discarded chain")
			}
			if c, _ := e.store.get(acct); c.OriginHash != OriginHash(claudeRT) || c.RefreshToken == storedRT {
				t.Fatalf("stored chain not replaced: %s", redacted(c))
			}
		})
	}
}

func TestStoreLoadError(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.store.loadErr = errors.New("database is locked")
	o := e.newOAuth(e.cfg(), nil)
	_, err := e.token(o)
	var re *RefreshError
	if !errors.As(err, &re) || re.Kind != provider.ServerError || e.ep.postCount() != 0 {
		t.Fatalf("load error: %v (posts %d); the config token must not be spent blindly", err, e.ep.postCount())
	}
}

func TestNotFoundAdapter(t *testing.T) {
	errNoRow := errors.New("not found") // like store.ErrNoRow
	e := newEnv(t, Claude, true)
	e.store.notFoundErr = errNoRow
	cfg := e.cfg()
	cfg.NotFound = func(err error) bool { return errors.Is(err, errNoRow) }
	e.mustToken(e.newOAuth(cfg, nil))
	if e.ep.lastUsed() != claudeRT {
		t.Fatal("a not-found error from the store did not fall back to the config token")
	}
}

func TestInvalidGrant(t *testing.T) {
	for _, style := range []Style{Claude, Google} {
		t.Run(style.String(), func(t *testing.T) {
			e := newEnv(t, style, style == Claude)
			e.ep.set(func(ep *tokenEndpoint) { ep.live = map[string]bool{} }) // the config token was revoked
			o := e.newOAuth(e.cfg(), nil)
			_, err := e.token(o)
			var re *RefreshError
			if !errors.As(err, &re) || re.Kind != provider.TokenInvalid || !re.Until.IsZero() {
				t.Fatalf("err = %#v, want TokenInvalid with zero Until", err)
			}
			if v := re.Verdict(); v.Kind != provider.TokenInvalid || v.Reason == "" {
				t.Fatalf("Verdict = %+v", v)
			}
			if !strings.Contains(err.Error(), "invalid_grant") || !strings.Contains(err.Error(), "[redacted]") {
				t.Fatalf("error %q lacks the code or the scrubbed description", err)
			}
			st := o.Status()
			hint := "run: ccrelay login " + style.loginName() + " --account " + acct
			if st.State != StateTokenInvalid || st.Hint != hint || !strings.Contains(st.LastError, "invalid_grant") {
				t.Fatalf("Status = %+v, want token_invalid with hint %q", st, hint)
			}
			// No hammering: the same error, no new POST.
			_, err2 := e.token(o)
			if err2 != err || e.ep.postCount() != 1 {
				t.Fatalf("second call: %v, posts %d", err2, e.ep.postCount())
			}
		})
	}
}

func TestServerErrorBackoff(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.setRespond(func(w http.ResponseWriter, n int) bool {
		if n <= 2 {
			writeJSON(w, http.StatusBadGateway, `<html>bad gateway</html>`)
			return true
		}
		return false
	})
	o := e.newOAuth(e.cfg(), nil)
	start := e.clock.Now()
	_, err := e.token(o)
	var re *RefreshError
	if !errors.As(err, &re) || re.Kind != provider.ServerError || !re.Until.Equal(start.Add(5*time.Second)) {
		t.Fatalf("first failure = %#v", err)
	}
	if st := o.Status(); st.State != StateRefreshFailing || !strings.Contains(st.LastError, "HTTP 502") {
		t.Fatalf("Status = %+v", st)
	}
	e.clock.Advance(4 * time.Second)
	if _, err2 := e.token(o); err2 != err || e.ep.postCount() != 1 {
		t.Fatalf("within back-off: %v, posts %d", err2, e.ep.postCount())
	}
	e.clock.Advance(time.Second)
	_, err = e.token(o) // second failure: back-off doubles
	if !errors.As(err, &re) || !re.Until.Equal(e.clock.Now().Add(10*time.Second)) || e.ep.postCount() != 2 {
		t.Fatalf("second failure = %#v, posts %d", err, e.ep.postCount())
	}
	e.clock.Advance(9 * time.Second)
	if _, err := e.token(o); err == nil || e.ep.postCount() != 2 {
		t.Fatal("retried within the doubled back-off")
	}
	e.clock.Advance(time.Second)
	e.mustToken(o)
	if st := o.Status(); st.State != StateOK || st.LastError != "" {
		t.Fatalf("Status after recovery = %+v", st)
	}
}

func TestRateLimited(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"seconds", map[string]string{"Retry-After": "120"}, 120 * time.Second},
		{"clamped up", map[string]string{"Retry-After": "1"}, 5 * time.Second},
		{"clamped down", map[string]string{"Retry-After": "86400"}, 5 * time.Minute},
		{"absent", nil, 5 * time.Second},
		{"milliseconds", map[string]string{"Retry-After-Ms": "15000"}, 15 * time.Second},
		{"http date", map[string]string{"Retry-After": newClock().Now().Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Claude, true)
			e.ep.setRespond(func(w http.ResponseWriter, n int) bool {
				if n > 1 {
					return false
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, http.StatusTooManyRequests, `{"error":"rate_limit_error","error_description":"slow down"}`)
				return true
			})
			o := e.newOAuth(e.cfg(), nil)
			_, err := e.token(o)
			var re *RefreshError
			if !errors.As(err, &re) || re.Kind != provider.RateLimited {
				t.Fatalf("err = %#v, want RateLimited", err)
			}
			if got := re.Until.Sub(e.clock.Now()); got != tt.want {
				t.Fatalf("Until in %v, want %v", got, tt.want)
			}
			e.clock.Advance(tt.want - time.Second)
			if _, err := e.token(o); err != re || e.ep.postCount() != 1 {
				t.Fatalf("retried before Until (posts %d)", e.ep.postCount())
			}
			e.clock.Advance(time.Second)
			e.mustToken(o)
		})
	}
}

func TestNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/token"
	ln.Close()
	e := newEnv(t, Claude, true)
	cfg := e.cfg()
	cfg.TokenURL = dead
	o := e.newOAuth(cfg, nil)
	_, err = e.token(o)
	var re *RefreshError
	if !errors.As(err, &re) || re.Kind != provider.Network || !re.Until.Equal(e.clock.Now().Add(5*time.Second)) {
		t.Fatalf("err = %#v, want Network", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Fatalf("the transport error is not unwrappable: %v", err)
	}
}

func TestFailingRefreshFallsBackToUsableToken(t *testing.T) {
	e := newEnv(t, Claude, true)
	o := e.newOAuth(e.cfg(), nil)
	at1 := e.mustToken(o)
	e.ep.setRespond(func(w http.ResponseWriter, _ int) bool {
		writeJSON(w, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
		return true
	})
	e.clock.Advance(7*time.Hour + 30*time.Minute) // 30 min left: inside the margin
	if got := e.mustToken(o); got != at1 {
		t.Fatal("a failing refresh did not fall back to the still valid token")
	}
	if st := o.Status(); st.State != StateRefreshFailing {
		t.Fatalf("Status = %+v", st)
	}
	e.clock.Advance(30*time.Minute - 10*time.Second) // only 10 s left: unusable
	if _, err := e.token(o); err == nil {
		t.Fatal("handed out a token with 10 s left")
	}
}

func TestInvalidate(t *testing.T) {
	e := newEnv(t, Claude, true)
	o := e.newOAuth(e.cfg(), nil)
	at1 := e.mustToken(o)
	o.Invalidate("sk-ant-oat01-someone-else")
	if e.mustToken(o) != at1 || e.ep.postCount() != 1 {
		t.Fatal("Invalidate of another token caused a refresh")
	}
	o.Invalidate(at1)
	at2 := e.mustToken(o)
	if at2 == at1 || e.ep.postCount() != 2 {
		t.Fatal("Invalidate of the current token did not cause a refresh")
	}
	for range 10 { // late reports about the old token
		o.Invalidate(at1)
	}
	if e.mustToken(o) != at2 || e.ep.postCount() != 2 {
		t.Fatal("stale Invalidate calls caused a refresh")
	}
}

func TestLockerRereadsStore(t *testing.T) {
	e := newEnv(t, Claude, true)
	lk := newMemLocker()
	a := e.newOAuth(e.cfg(), lk) // two processes sharing store and lock
	b := e.newOAuth(e.cfg(), lk)

	e.mustToken(a)
	atB := e.mustToken(b) // loads what a stored: no POST
	if e.ep.postCount() != 1 {
		t.Fatalf("posts = %d, want 1", e.ep.postCount())
	}

	// Both expire; a refreshes first.
	e.clock.Advance(8 * time.Hour)
	atA := e.mustToken(a)
	// b holds a stale token and a consumed refresh token; under the lock it
	// re-reads the store, finds a's fresh token, and does not POST.
	if got := e.mustToken(b); got != atA || got == atB || e.ep.postCount() != 2 {
		t.Fatalf("b did not adopt a's refreshed token (posts %d)", e.ep.postCount())
	}

	// a refreshes again; then the clock passes its token's margin too, so b
	// must refresh, but with the refresh token a stored, not its own.
	e.clock.Advance(8 * time.Hour)
	e.mustToken(a)
	e.clock.Advance(8 * time.Hour)
	e.mustToken(b)
	if e.ep.postCount() != 4 || e.ep.reuseCount() != 0 {
		t.Fatalf("posts %d reuses %d", e.ep.postCount(), e.ep.reuseCount())
	}
	// And a, in turn, picks up b's rotation.
	e.clock.Advance(8 * time.Hour)
	e.mustToken(a)
	if e.ep.reuseCount() != 0 {
		t.Fatal("a reused a refresh token b had consumed")
	}
	if lk.count == 0 {
		t.Fatal("the locker was never used")
	}
}

func TestLockerRereadIgnoresRejectedToken(t *testing.T) {
	e := newEnv(t, Claude, true)
	o := e.newOAuth(e.cfg(), newMemLocker())
	at1 := e.mustToken(o)
	o.Invalidate(at1) // the stored copy is the same rejected token
	if at2 := e.mustToken(o); at2 == at1 || e.ep.postCount() != 2 {
		t.Fatal("the re-read adopted the token the upstream rejected")
	}
}

func TestRequestFormat(t *testing.T) {
	t.Run("claude json", func(t *testing.T) {
		e := newEnv(t, Claude, true)
		e.mustToken(e.newOAuth(e.cfg(), nil))
		h, f := e.ep.last()
		if h.Get("Content-Type") != "application/json" || h.Get("Accept") != "application/json" || h.Get("User-Agent") != "ccrelay" {
			t.Fatalf("headers %v", h)
		}
		want := map[string]string{"grant_type": "refresh_token", "refresh_token": claudeRT, "client_id": claudeClientID}
		if fmt.Sprint(f) != fmt.Sprint(want) {
			t.Fatalf("body fields %v, want %v", keys(f), keys(want))
		}
	})
	t.Run("google form", func(t *testing.T) {
		e := newEnv(t, Google, false)
		o := e.newOAuth(e.cfg(), nil)
		tok := e.mustToken(o)
		h, f := e.ep.last()
		if h.Get("Content-Type") != "application/x-www-form-urlencoded" || h.Get("Accept") != "application/json" || h.Get("User-Agent") != "ccrelay" {
			t.Fatalf("headers %v", h)
		}
		if f["grant_type"] != "refresh_token" || f["refresh_token"] != googleRT || f["client_id"] != googleClientID || f["client_secret"] != googleClientSecret || len(f) != 4 {
			t.Fatalf("form fields %v", keys(f))
		}
		// No refresh_token in the answer: the current one stays.
		c, _ := e.store.get(acct)
		if c.RefreshToken != googleRT || c.AccessToken != tok {
			t.Fatalf("stored %s", redacted(c))
		}
		e.clock.Advance(9 * time.Hour)
		e.mustToken(o)
		if e.ep.lastUsed() != googleRT {
			t.Fatal("the unrotated refresh token was not kept")
		}
	})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMalformedAnswers(t *testing.T) {
	big := strings.Repeat("x", maxTokenResponse+10)
	tests := []struct {
		name    string
		code    int
		body    string
		kind    provider.Kind
		wantMsg string
	}{
		{"oversized", http.StatusBadRequest, big, provider.ServerError, "larger than"},
		{"malformed 200", http.StatusOK, `{"access_token":"sk-ant-oat01-half-a-token`, provider.ServerError, "malformed"},
		{"200 without token", http.StatusOK, `{"refresh_token":"sk-ant-ort01-orphan-abcdefgh"}`, provider.ServerError, "without an access_token"},
		{"redirect not followed", http.StatusTemporaryRedirect, ``, provider.ServerError, "HTTP 307"},
		{"moved endpoint", http.StatusNotFound, `not found`, provider.ServerError, "HTTP 404"},
		{"forbidden", http.StatusForbidden, `{"error":"access_denied","error_description":"blocked; Bearer sk-ant-oat01-echoed-abcdefgh"}`, provider.Unavailable, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Claude, true)
			e.secrets = append(e.secrets, "sk-ant-oat01-half", "sk-ant-ort01-orphan", "sk-ant-oat01-echoed")
			e.ep.setRespond(func(w http.ResponseWriter, n int) bool {
				if tt.code == http.StatusTemporaryRedirect {
					w.Header().Set("Location", "http://127.0.0.1:1/steal")
				}
				writeJSON(w, tt.code, tt.body)
				return true
			})
			_, err := e.token(e.newOAuth(e.cfg(), nil))
			var re *RefreshError
			if !errors.As(err, &re) || re.Kind != tt.kind || !strings.Contains(re.Msg, tt.wantMsg) {
				t.Fatalf("err = %v, want kind %v containing %q", err, tt.kind, tt.wantMsg)
			}
		})
	}
}

// runClock drives Run with a fake sleep that advances the fake clock.
func runUntil(t *testing.T, e *env, o *OAuth, stop func() bool) (sleeps []time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.sleep = func(_ context.Context, d time.Duration) bool {
		sleeps = append(sleeps, d)
		if stop() || len(sleeps) > 10000 {
			return false
		}
		e.clock.Advance(d)
		return true
	}
	o.Run(ctx)
	return sleeps
}

func TestRunRefreshesAheadOfExpiry(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.lifetime = 3600 })
	o := e.newOAuth(e.cfg(), nil)
	sleeps := runUntil(t, e, o, func() bool { return e.ep.postCount() >= 3 })
	postTimes := e.ep.times()
	if len(postTimes) != 3 {
		t.Fatalf("posts at %v", postTimes)
	}
	for i := 1; i < len(postTimes); i++ {
		if d := postTimes[i].Sub(postTimes[i-1]); d != 54*time.Minute {
			t.Fatalf("refresh %d came %v after the previous, want 54m (6 min margin)", i, d)
		}
	}
	for _, d := range sleeps {
		if d <= 0 || d > maxRunSleep {
			t.Fatalf("sleep %v outside (0, %v]", d, maxRunSleep)
		}
	}
	// An idle account meets no expired token: the token is fresh right now.
	e.mustToken(o)
	if e.ep.postCount() != 3 {
		t.Fatal("Token refreshed although Run kept the token fresh")
	}
}

func TestRunBackoff(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.setRespond(func(w http.ResponseWriter, _ int) bool {
		writeJSON(w, http.StatusInternalServerError, `{"error":"server_error"}`)
		return true
	})
	o := e.newOAuth(e.cfg(), nil)
	runUntil(t, e, o, func() bool { return e.ep.postCount() >= 9 })
	postTimes := e.ep.times()
	want := []time.Duration{5, 10, 20, 40, 80, 160, 300, 300}
	for i := 1; i < len(postTimes); i++ {
		if d := postTimes[i].Sub(postTimes[i-1]); d != want[i-1]*time.Second {
			t.Fatalf("retry %d after %v, want %vs", i, d, want[i-1])
		}
	}
}

func TestRunStopsOnInvalidGrant(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.live = map[string]bool{} })
	o := e.newOAuth(e.cfg(), nil)
	ticks := 0
	runUntil(t, e, o, func() bool { ticks++; return ticks > 200 })
	if e.ep.postCount() != 1 {
		t.Fatalf("Run kept spending a rejected refresh token: %d posts", e.ep.postCount())
	}
}

func TestRunStopsOnContext(t *testing.T) {
	e := newEnv(t, Claude, true)
	o := e.newOAuth(e.cfg(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	for e.ep.postCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// A token that lives 3 s is renewed when it has actually expired, not on
// every request (the fixed 10 s margin once exceeded its whole life: every
// request refreshed), and never handed out after its end.
func TestShortLivedTokenIsNotRefreshedOnEveryRequest(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.lifetime = 3 })
	o := e.newOAuth(e.cfg(), nil)
	start := e.clock.Now()
	expiry := map[string]time.Time{}
	for e.clock.Now().Sub(start) < time.Minute {
		posts := e.ep.postCount()
		tok := e.mustToken(o)
		if e.ep.postCount() != posts {
			expiry[tok] = e.clock.Now().Add(3 * time.Second)
		}
		if !e.clock.Now().Before(expiry[tok]) {
			t.Fatalf("handed out a token %v after its expiry", e.clock.Now().Sub(expiry[tok]))
		}
		e.clock.Advance(10 * time.Millisecond)
	}
	// One refresh per 2.7 s of token life (renewed a tenth of its life
	// early), not one per request (6,000).
	if n := e.ep.postCount(); n > 23 {
		t.Fatalf("%d refreshes in a minute of requests on a 3 s token, want at most 23", n)
	}
}

// Refreshes of one account are at least 30 s apart unless the token expired
// or a 401 demands one.
func TestRefreshesAreSpaced(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.lifetime = 40 }) // margin 20 s: renewed 20 s after issue before
	o := e.newOAuth(e.cfg(), nil)
	for i := range 12_000 { // two minutes of a request every 10 ms
		if i > 0 {
			e.clock.Advance(10 * time.Millisecond)
		}
		e.mustToken(o)
	}
	times := e.ep.times()
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d < minRefreshGap {
			t.Fatalf("refresh %d came %v after the previous one, want at least %v", i, d, minRefreshGap)
		}
	}
	if len(times) != 4 {
		t.Fatalf("%d refreshes in two minutes, want 4 (at 0, 30, 60, 90 s)", len(times))
	}
	// A 401 still forces one at once.
	at := e.mustToken(o)
	o.Invalidate(at)
	if e.mustToken(o) == at || e.ep.postCount() != 5 {
		t.Fatal("a rejected token was not refreshed at once")
	}
}

// Run does not spin on a token shorter than the refresh gap: an idle
// account is refreshed at most every 30 s.
func TestRunSpacesShortLivedTokens(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.lifetime = 3 })
	o := e.newOAuth(e.cfg(), nil)
	runUntil(t, e, o, func() bool { return e.ep.postCount() >= 5 })
	times := e.ep.times()
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d < minRefreshGap {
			t.Fatalf("Run refreshed %v after the previous refresh, want at least %v", d, minRefreshGap)
		}
	}
}

// expires_in is bounded to [1 s, 31 days]; nonsense means the default
// lifetime (an hour) and one warning, never an instantly expired token.
func TestExpiresInIsBounded(t *testing.T) {
	tests := []struct {
		expiresIn string
		want      time.Duration
		warn      bool
	}{
		{`3600`, time.Hour, false},
		{`"7200"`, 2 * time.Hour, false},
		{`0.2`, time.Second, false},
		{`1e9`, 31 * 24 * time.Hour, false},
		{`null`, time.Hour, false},
		{`1e300`, time.Hour, true},
		{`"NaN"`, time.Hour, true},
		{`"+Inf"`, time.Hour, true},
		{`-60`, time.Hour, true},
		{`0`, time.Hour, true},
		{`"soon"`, time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.expiresIn, func(t *testing.T) {
			e := newEnv(t, Google, false)
			e.ep.setRespond(func(w http.ResponseWriter, _ int) bool {
				writeJSON(w, http.StatusOK, `{"access_token":"ya29.short-lived-abcdefgh","expires_in":`+tt.expiresIn+`}`)
				return true
			})
			o := e.newOAuth(e.cfg(), nil)
			e.mustToken(o)
			if got := o.Status().ExpiresAt.Sub(e.clock.Now()); got != tt.want {
				t.Fatalf("token lives %v, want %v", got, tt.want)
			}
			if n := strings.Count(e.logs.String(), "nonsensical token lifetime"); n != map[bool]int{true: 1}[tt.warn] {
				t.Fatalf("%d warnings, want warn=%v:\n%s", n, tt.warn, e.logs.String())
			}
		})
	}
}

// TestOnIDToken: the id_token of a refresh answer (OpenAI sends one naming
// the ChatGPT account) reaches OnIDToken before the new access token is
// cached or returned; an answer without one does not call it.
func TestOnIDToken(t *testing.T) {
	e := newEnv(t, Claude, true)
	e.ep.setRespond(func(w http.ResponseWriter, n int) bool {
		body := fmt.Sprintf(`{"access_token":"access-%d-abcdefgh","refresh_token":"sk-ant-ort01-refresh-%d-abcdefgh","expires_in":3600`, n, n)
		if n == 1 {
			body += `,"id_token":"header.claims-1.sig"`
		}
		writeJSON(w, http.StatusOK, body+"}")
		return true
	})
	cfg := e.cfg()
	var got []string
	var o *OAuth
	cfg.OnIDToken = func(idToken string) {
		o.mu.Lock()
		cached := o.access
		o.mu.Unlock()
		if cached != "" {
			t.Errorf("the access token was cached before OnIDToken ran")
		}
		got = append(got, idToken)
	}
	o = e.newOAuth(cfg, nil)
	if tok := e.mustToken(o); tok != "access-1-abcdefgh" {
		t.Fatalf("token %q", tok)
	}
	e.clock.Advance(2 * time.Hour)
	e.mustToken(o)
	if len(got) != 1 || got[0] != "header.claims-1.sig" {
		t.Fatalf("OnIDToken got %q, want the first answer's id token only", got)
	}
	if strings.Contains(e.logs.String(), "claims-1") {
		t.Error("the id token reached the log")
	}
}

// TestOldChainCannotOverwriteNewLogin: after a new login (a reload gives
// the account a source for the new config token), a request still running
// on the old source refreshes the old chain; that save must not replace the
// new chain, or the next start would drop it for the (consumed) config
// token and need yet another login (issue #31 item 13).
func TestOldChainCannotOverwriteNewLogin(t *testing.T) {
	const newRT = "sk-ant-ort01-second-login-token-abcdefgh"
	e := newEnv(t, Claude, true)
	e.ep.set(func(ep *tokenEndpoint) { ep.live[newRT] = true; ep.secrets = append(ep.secrets, newRT) })
	old := e.newOAuth(e.cfg(), nil)
	oldTok := e.mustToken(old)

	e.clock.Advance(time.Minute)
	cfg := e.cfg()
	cfg.ConfigRefreshToken = newRT
	fresh := e.newOAuth(cfg, nil)
	e.mustToken(fresh)
	saved, _ := e.store.get(acct)
	if saved.OriginHash != OriginHash(newRT) {
		t.Fatalf("the new login's chain was not saved: %+v", saved)
	}

	// The old source's request gets a 401 and refreshes its own chain.
	e.clock.Advance(time.Minute)
	old.Invalidate(oldTok)
	if tok := e.mustToken(old); tok == oldTok {
		t.Fatal("the old source did not refresh")
	}
	if got, _ := e.store.get(acct); got.RefreshToken != saved.RefreshToken || got.OriginHash != OriginHash(newRT) {
		t.Fatalf("the old chain replaced the new login's: stored %+v", got)
	}
	if st := old.Status(); st.LastError != "" {
		t.Fatalf("a superseded save is reported as a failure: %+v", st)
	}
	if !strings.Contains(e.logs.String(), "newer login") {
		t.Errorf("no log line says why the old chain was not saved:\n%s", e.logs.String())
	}

	// A restart with the new config continues the new chain: no refresh of
	// the consumed config token, no invalid_grant.
	posts := e.ep.postCount()
	restarted := e.newOAuth(cfg, nil)
	e.mustToken(restarted)
	if e.ep.postCount() != posts || e.ep.reuseCount() != 0 {
		t.Fatalf("restart refreshed %d times, %d reuses", e.ep.postCount()-posts, e.ep.reuseCount())
	}
}
