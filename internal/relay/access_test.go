package relay

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/usage"
)

func accessRelay(t *testing.T, allowUnauth bool, keys ...config.KeyConfig) *Relay {
	t.Helper()
	pol, err := policy.New(policy.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	sched := scheduler.New(nil, scheduler.Options{}, nil, nil)
	t.Cleanup(sched.Close)
	return New(Options{Policy: pol, Brake: policy.NewBrake(3, nil), AllowUnauthenticated: allowUnauth}, sched, nil, nil, nil)
}

// Protected mode: with no relay key, a client that is not on this machine
// gets 403 in its provider's shape saying how to fix it; a loopback client
// is served (here: 503, there are no accounts); allow_unauthenticated
// serves everyone.
func TestProtectedMode(t *testing.T) {
	body := `{"model":"claude-sonnet-4-5","messages":[]}`
	tests := []struct {
		name, remote, path, xff string
		allow                   bool
		want                    int
	}{
		{"remote client refused (anthropic)", "203.0.113.7:5555", "/v1/messages", "", false, 403},
		{"remote client refused (openai)", "10.1.2.3:5555", "/openai/v1/chat/completions", "", false, 403},
		{"remote client refused (google)", "[2001:db8::1]:5555", "/gemini/v1beta/models/gemini-2.5-pro:generateContent", "", false, 403},
		{"loopback served", "127.0.0.1:5555", "/v1/messages", "", false, 503},
		{"loopback v6 served", "[::1]:5555", "/v1/messages", "", false, 503},
		{"through an untrusted local proxy refused", "127.0.0.1:5555", "/v1/messages", "203.0.113.7", false, 403},
		{"allow_unauthenticated serves everyone", "203.0.113.7:5555", "/v1/messages", "", true, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := accessRelay(t, tt.allow)
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(body))
			req.RemoteAddr = tt.remote
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			w := httptest.NewRecorder()
			r.Handler().ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want != 403 {
				return
			}
			b := w.Body.String()
			for _, s := range []string{"protected mode", "ccrelay config init", "allow_unauthenticated = true"} {
				if !strings.Contains(b, s) {
					t.Errorf("body lacks %q: %s", s, b)
				}
			}
			var shape map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &shape); err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(tt.path, "/gemini"):
				if !strings.Contains(b, `"status":"PERMISSION_DENIED"`) {
					t.Errorf("google shape: %s", b)
				}
			case strings.HasPrefix(tt.path, "/openai"):
				if !strings.Contains(b, `"type":"permission_error"`) {
					t.Errorf("openai shape: %s", b)
				}
			default:
				if !strings.Contains(b, `"type":"permission_error"`) || shape["type"] != "error" {
					t.Errorf("anthropic shape: %s", b)
				}
			}
		})
	}
}

// Wrong relay keys are braked per client address: after the limit, 429
// with retry-after, even for the right key, until the bucket refills;
// other addresses are not affected.
func TestWrongKeyBrake(t *testing.T) {
	r := accessRelay(t, false, config.KeyConfig{Name: "a", Key: "right-key", QueueSeconds: 30})
	send := func(remote, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(`{"model":"m"}`))
		req.RemoteAddr = remote
		req.Header.Set("X-Api-Key", key)
		w := httptest.NewRecorder()
		r.Handler().ServeHTTP(w, req)
		return w
	}
	for i := 0; i < 3; i++ {
		if w := send("203.0.113.7:1", "guess"); w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := send("203.0.113.7:2", "right-key")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "rate_limit_error") {
		t.Fatalf("after 3 wrong keys: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := send("203.0.113.8:1", "right-key"); w.Code != 503 {
		t.Fatalf("another address: %d %s", w.Code, w.Body)
	}
}

// Refusals speak the client's dialect.
func TestRefusalShapes(t *testing.T) {
	tests := []struct {
		d      dialect
		status int
		reason policy.Reason
		want   []string
	}{
		{anthropicDialect{}, 429, policy.RateLimited, []string{`"type":"rate_limit_error"`}},
		{anthropicDialect{}, 429, policy.OverBudget, []string{`"type":"rate_limit_error"`}},
		{anthropicDialect{}, 403, policy.Forbidden, []string{`"type":"permission_error"`}},
		{openaiDialect{}, 429, policy.RateLimited, []string{`"code":"rate_limit_exceeded"`}},
		{openaiDialect{}, 429, policy.OverBudget, []string{`"type":"insufficient_quota"`, `"code":"insufficient_quota"`}},
		{openaiDialect{}, 403, policy.Forbidden, []string{`"type":"permission_error"`}},
		// The Responses route (Codex) speaks OpenAI's shape too, code included.
		{responsesDialect{}, 429, policy.OverBudget, []string{`"type":"insufficient_quota"`, `"code":"insufficient_quota"`}},
		{googleDialect{}, 429, policy.OverBudget, []string{`"status":"RESOURCE_EXHAUSTED"`, `"code":429`}},
		{googleDialect{}, 403, policy.Forbidden, []string{`"status":"PERMISSION_DENIED"`}},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		writeRefusalTo(w, tt.d, tt.status, tt.reason, "nope", 1500*1e6)
		if w.Code != tt.status || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%T %d: %d %s", tt.d, tt.status, w.Code, w.Body)
		}
		for _, s := range tt.want {
			if !strings.Contains(w.Body.String(), s) {
				t.Errorf("%T %d %d: %s lacks %s", tt.d, tt.status, tt.reason, w.Body, s)
			}
		}
		if w.Header().Get("Retry-After") != "2" || w.Header().Get("Retry-After-Ms") != "1500" {
			t.Errorf("retry headers %v", w.Header())
		}
	}
}

func TestClientAddrFromInfo(t *testing.T) {
	r := accessRelay(t, false)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(WithInfo(req.Context(), &Info{ClientAddr: netip.MustParseAddr("198.51.100.1")}))
	if got := r.clientAddr(req); got.String() != "198.51.100.1" {
		t.Fatal(got)
	}
}

type flatPrices struct{}

func (flatPrices) Cost(model string, u provider.Usage) (int64, bool) {
	return u.OutputTokens * 10, model == "claude-sonnet-4-5"
}

// settle prices the request once (through the Models mapping) and names the key.
func TestSettleSetsCostAndKeyName(t *testing.T) {
	pol, _ := policy.New(policy.Options{Keys: []config.KeyConfig{{Name: "eve", Key: "k", QueueSeconds: 30}}})
	r := New(Options{Policy: pol, Prices: flatPrices{}, Models: map[string]string{"gpt-4o": "claude-sonnet-4-5"}}, nil, nil, nil, nil)
	k, _ := pol.Authenticate("k")
	for _, tt := range []struct {
		model string
		cost  int64
		known bool
	}{{"gpt-4o", 70, true}, {"claude-sonnet-4-5", 70, true}, {"unpriced", 0, false}} {
		c := &call{key: k, model: tt.model, usage: provider.Usage{OutputTokens: 7}}
		var rec usage.Record
		r.settle(c, &rec)
		if rec.CostMicros != tt.cost || rec.CostKnown != tt.known || rec.KeyName != "eve" {
			t.Fatalf("%s: %+v", tt.model, rec)
		}
	}
}
