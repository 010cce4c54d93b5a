package relay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/routing"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// newCompatRelay serves a relay over one openai-compatible account at url
// listing deepseek-*, asked for stream usage unless noStreamUsage.
func newCompatRelay(t *testing.T, url string, noStreamUsage bool) (*httptest.Server, *memRecorder) {
	t.Helper()
	ac := config.AccountConfig{ID: "ds", Type: config.TypeOpenAICompat, APIURL: url, Enabled: true, Models: []string{"deepseek-*"}}
	if noStreamUsage {
		ac.StreamUsage = new(bool)
	}
	acct := &scheduler.Account{ID: "ds", Type: ac.Type, Platform: ac.Platform(), Priority: 100, Enabled: true}
	sched := scheduler.New([]*scheduler.Account{acct}, scheduler.Options{StickyTTL: time.Hour, RateLimitCooldown: time.Minute, ErrorCooldown: time.Minute, OverloadCooldown: time.Minute, UnavailableCooldown: time.Minute}, nil, nil)
	t.Cleanup(sched.Close)
	routes, err := routing.New(nil, []config.AccountConfig{ac})
	if err != nil {
		t.Fatal(err)
	}
	rec := &memRecorder{}
	up := &Upstream{Account: acct, Config: ac, Client: &http.Client{}, Token: staticToken("")}
	rl := New(Options{Policy: testPolicy(t), Routes: routes, FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, sched, []*Upstream{up}, rec, nil)
	srv := httptest.NewServer(rl.Handler())
	t.Cleanup(srv.Close)
	return srv, rec
}

// A Chat upstream's stream without usage is recorded as usage unknown (and
// cost unknown), not as a free request; one with usage is counted. Passed
// through (Chat) and converted (Messages) alike.
func TestCompatUsageUnknown(t *testing.T) {
	fake := &fakeupstream.ChatCompat{}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	tests := []struct {
		name, path, body string
		noStreamUsage    bool
		unknown          bool
		out              int64
	}{
		{"chat stream without include_usage", "/v1/chat/completions", `{"model":"deepseek-chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`, false, true, 0},
		{"chat stream with include_usage", "/v1/chat/completions", `{"model":"deepseek-chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, false, false, 9},
		{"messages stream, usage asked", "/v1/messages", `{"model":"deepseek-chat","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, false, false, 9},
		{"messages stream on stream_usage = false", "/v1/messages", `{"model":"deepseek-chat","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, true, true, 0},
		{"chat whole", "/v1/chat/completions", `{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}]}`, false, false, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := newCompatRelay(t, up.URL, tt.noStreamUsage)
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(rec.all()) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			recs := rec.all()
			if len(recs) != 1 || recs[0].Platform != "compat" || recs[0].UsageUnknown != tt.unknown || recs[0].OutputTokens != tt.out ||
				tt.unknown && recs[0].CostKnown {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}
