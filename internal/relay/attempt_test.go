package relay

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// rotatingToken hands out token-1, token-2... and records which tokens
// were invalidated.
type rotatingToken struct {
	mu          sync.Mutex
	n           int
	invalidated []string
}

func (t *rotatingToken) Token(context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return "token-" + strconv.Itoa(t.n+1), nil
}

func (t *rotatingToken) Invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.invalidated = append(t.invalidated, tok)
	t.n++
}

// authUpstream answers 401 to the tokens in refuse, else a Messages body;
// it records the tokens it was sent.
type authUpstream struct {
	mu     sync.Mutex
	refuse map[string]bool
	seen   []string
}

func (u *authUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	u.mu.Lock()
	u.seen = append(u.seen, tok)
	refused := u.refuse[tok] || u.refuse["*"]
	u.mu.Unlock()
	status, body := 200, `{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":1,"output_tokens":1}}`
	if refused {
		status, body = 401, `{"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired"}}`
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

// A refused token of a refreshing account is refreshed once and the
// request sent again with the new one; a refused refreshed token is not
// refreshed again (the account fails, the client gets the 401).
func TestAttemptRefreshesARefusedTokenOnce(t *testing.T) {
	for _, tt := range []struct {
		name       string
		refuse     map[string]bool
		wantStatus int
		wantSeen   []string
	}{
		{"refreshed token served", map[string]bool{"token-1": true}, 200, []string{"token-1", "token-2"}},
		{"refreshed token refused too", map[string]bool{"*": true}, 401, []string{"token-1", "token-2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := &authUpstream{refuse: tt.refuse}
			tok := &rotatingToken{}
			acct := &scheduler.Account{ID: "a", Type: config.TypeClaudeOAuth, Platform: "claude", Priority: 100, Enabled: true}
			ups := []*Upstream{{Account: acct, Config: config.AccountConfig{ID: "a", Type: config.TypeClaudeOAuth, APIURL: "http://upstream.invalid"},
				Client: &http.Client{Transport: up}, Token: tok, OAuth: true}}
			sched := scheduler.New([]*scheduler.Account{acct}, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute}, nil, nil)
			t.Cleanup(sched.Close)
			rl := New(Options{Policy: testPolicy(t), FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, sched, ups, &memRecorder{}, nil)
			req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[]}`))
			req.RemoteAddr, req.Host = "127.0.0.1:1", "127.0.0.1" // a local program (protected mode)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			rl.Handler().ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if strings.Join(up.seen, ",") != strings.Join(tt.wantSeen, ",") {
				t.Errorf("upstream saw tokens %v, want %v", up.seen, tt.wantSeen)
			}
			if len(tok.invalidated) != 1 || tok.invalidated[0] != "token-1" {
				t.Errorf("invalidated %v, want [token-1]", tok.invalidated)
			}
		})
	}
}
