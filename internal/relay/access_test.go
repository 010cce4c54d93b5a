package relay

import (
	"encoding/json"
	"io"
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
			req.Host = "127.0.0.1:3000"
			req.Header.Set("Content-Type", "application/json")
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

// Protected mode serves only what a program on this machine sends, not
// what a web page in the operator's browser can: the Host must name
// loopback (DNS rebinding uses a name of its own), no Origin, and a body as
// JSON (a page can post text/plain, forms and untyped bodies without a CORS
// preflight). What Claude Code, Codex, Gemini CLI and the SDKs send passes.
// Refusals come in the route's shape.
func TestProtectedModeRefusesWebPages(t *testing.T) {
	const (
		messages = "/v1/messages?beta=true"
		chat     = "/openai/v1/chat/completions"
		gemini   = "/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
	)
	tests := []struct {
		name, method, path, host string
		hdr                      []string
		want                     int
	}{
		{"Claude Code", "POST", messages, "127.0.0.1:3000", []string{"Content-Type", "application/json", "Accept", "application/json", "anthropic-dangerous-direct-browser-access", "true"}, 503},
		{"Codex", "POST", "/v1/responses", "127.0.0.1:3000", []string{"content-type", "application/json", "accept", "text/event-stream"}, 503},
		{"Gemini CLI (undici: sec-fetch-mode cors, no Origin)", "POST", gemini, "127.0.0.1:3000", []string{"Content-Type", "application/json", "sec-fetch-mode", "cors", "accept", "*/*"}, 503},
		{"JSON with a charset, localhost", "POST", chat, "localhost:3000", []string{"Content-Type", "application/json; charset=utf-8"}, 503},
		{"[::1] with a port", "POST", messages, "[::1]:3000", []string{"Content-Type", "application/json"}, 503},
		{"[::1] without a port", "POST", messages, "[::1]", []string{"Content-Type", "application/json"}, 503},
		{"LOCALHOST. without a port", "POST", messages, "LOCALHOST.", []string{"Content-Type", "application/json"}, 503},
		{"another loopback address", "POST", messages, "127.0.0.2:3000", []string{"Content-Type", "application/json"}, 503},
		{"GET needs no content type", "GET", "/v1/models", "127.0.0.1:3000", nil, 503},

		{"rebound name", "POST", messages, "rebind.attacker.example:3000", []string{"Content-Type", "application/json"}, 403},
		{"rebound name, GET", "GET", "/v1/models", "attacker.example", nil, 403},
		{"rebound name (openai)", "POST", chat, "attacker.example:3000", []string{"Content-Type", "application/json"}, 403},
		{"localhost as a subdomain", "POST", messages, "localhost.attacker.example", []string{"Content-Type", "application/json"}, 403},
		{"all interfaces", "POST", messages, "0.0.0.0:3000", []string{"Content-Type", "application/json"}, 403},
		{"no host", "POST", messages, "", []string{"Content-Type", "application/json"}, 403},
		{"an Origin", "POST", messages, "127.0.0.1:3000", []string{"Content-Type", "application/json", "Origin", "https://attacker.example"}, 403},
		{"Origin null (google)", "POST", gemini, "127.0.0.1:3000", []string{"Content-Type", "application/json", "Origin", "null"}, 403},
		{"a localhost Origin too", "GET", "/v1/models", "localhost:3000", []string{"Origin", "http://localhost:8080"}, 403},
		{"text/plain", "POST", messages, "127.0.0.1:3000", []string{"Content-Type", "text/plain;charset=UTF-8"}, 400},
		{"form", "POST", chat, "127.0.0.1:3000", []string{"Content-Type", "application/x-www-form-urlencoded"}, 400},
		{"multipart (google)", "POST", gemini, "127.0.0.1:3000", []string{"Content-Type", "multipart/form-data; boundary=x"}, 400},
		{"no content type", "POST", messages, "127.0.0.1:3000", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := accessRelay(t, false)
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],"input":"hi"}`)
			}
			req := httptest.NewRequest(tt.method, tt.path, body)
			req.RemoteAddr, req.Host = "127.0.0.1:5555", tt.host
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			w := httptest.NewRecorder()
			r.Handler().ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want != 403 && tt.want != 400 {
				return
			}
			b := w.Body.String()
			if !strings.Contains(b, "protected mode") || !strings.Contains(b, "ccrelay keys add") {
				t.Errorf("the refusal does not say why and how to fix it: %s", b)
			}
			typ := map[int]string{403: "permission_error", 400: "invalid_request_error"}[tt.want]
			switch {
			case strings.HasPrefix(tt.path, "/gemini"):
				typ = map[int]string{403: "PERMISSION_DENIED", 400: "INVALID_ARGUMENT"}[tt.want]
				if !strings.Contains(b, `"status":"`+typ+`"`) {
					t.Errorf("google shape: %s", b)
				}
			default:
				if !strings.Contains(b, `"type":"`+typ+`"`) {
					t.Errorf("%s shape: %s", tt.path, b)
				}
			}
		})
	}
}

// Wrong relay keys are braked per client address: after the limit, a
// wrong key gets 429 with retry-after (no longer 401) until the bucket
// refills. The right key is served all along, from that address too: one
// person's guesses behind a NAT or proxy do not lock out the others. Other
// addresses are not affected.
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
	w := send("203.0.113.7:2", "guess-4")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "rate_limit_error") {
		t.Fatalf("a wrong key after 3 wrong keys: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// 503: served (there are no accounts behind this relay).
	if w := send("203.0.113.7:3", "right-key"); w.Code != 503 {
		t.Fatalf("the right key from the braked address: %d %s", w.Code, w.Body)
	}
	if w := send("203.0.113.7:4", "guess-5"); w.Code != 429 {
		t.Fatalf("a wrong key after the right one: %d, want still braked", w.Code)
	}
	if w := send("203.0.113.7:5", ""); w.Code != 401 || !strings.Contains(w.Body.String(), "x-api-key") {
		t.Fatalf("no key at all (not a guess): %d %s", w.Code, w.Body)
	}
	if w := send("203.0.113.8:1", "right-key"); w.Code != 503 {
		t.Fatalf("another address: %d %s", w.Code, w.Body)
	}
	if w := send("203.0.113.8:1", "guess"); w.Code != 401 {
		t.Fatalf("another address's first wrong key: %d", w.Code)
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
		rec := usage.Record{Model: c.model, ServedModel: r.servedModel(c)}
		r.settle(c, &rec)
		if rec.CostMicros != tt.cost || rec.CostKnown != tt.known || rec.KeyName != "eve" {
			t.Fatalf("%s: %+v", tt.model, rec)
		}
	}
}
