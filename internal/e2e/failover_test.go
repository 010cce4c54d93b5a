package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/shared"
)

// pool is three claude-api accounts with priorities 300, 200, 100.
type pool struct {
	fakes [3]*fakeupstream.Anthropic
	urls  [3]string
}

func newPool(t *testing.T) *pool {
	p := &pool{}
	for i := range p.fakes {
		p.fakes[i] = &fakeupstream.Anthropic{Text: fmt.Sprintf("answer from %d", i)}
		p.urls[i] = upstream(t, p.fakes[i]).URL
	}
	return p
}

func (p *pool) config() string {
	return claudeAPIAccount("a0", p.urls[0], "k0", 300) + claudeAPIAccount("a1", p.urls[1], "k1", 200) + claudeAPIAccount("a2", p.urls[2], "k2", 100)
}

func fail(status int, hdr map[string]string, body string) func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
	return func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: status, Header: hdr, Body: body}
	}
}

func cooldownOf(t *testing.T, r *relayUT, id string) state.Cooldown {
	t.Helper()
	for _, c := range r.App.Sched.Cooldowns() {
		if c.AccountID == id {
			return c
		}
	}
	return state.Cooldown{}
}

// listedAs waits until `accounts list` (which reads the database the
// scheduler writes in the background) shows the first account in state,
// and returns the list.
func listedAs(t *testing.T, r *relayUT, state string) []shared.Status {
	t.Helper()
	var sts []shared.Status
	waitFor(t, 5*time.Second, "accounts list shows the first account "+state, func() bool {
		var err error
		sts, err = shared.Statuses(context.Background(), r.App.Config, r.App.DB, time.Now())
		return err == nil && sts[0].State == state
	})
	return sts
}

func ask(t *testing.T, r *relayUT) (string, error) {
	t.Helper()
	c := r.anthropicClient()
	msg, err := c.Messages.New(context.Background(), newParams("claude-opus-4-8"))
	if err != nil {
		return "", err
	}
	return msg.Content[0].Text, nil
}

func TestFailoverOutcomes(t *testing.T) {
	reset := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	tests := []struct {
		name     string
		status   int
		hdr      map[string]string
		body     string
		kind     string
		until    time.Duration // approximate cooldown length; 0 = don't check
		exact    time.Time
		model    string
		failover bool
	}{
		{"429 retry-after", 429, map[string]string{"retry-after": "42"}, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, "rate_limited", 42 * time.Second, time.Time{}, "", true},
		{"429 http date", 429, map[string]string{"retry-after": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, `{}`, "rate_limited", 90 * time.Second, time.Time{}, "", true},
		{"429 unified 5h", 429, map[string]string{"anthropic-ratelimit-unified-5h-status": "rejected", "anthropic-ratelimit-unified-5h-reset": strconv.FormatInt(reset.Unix(), 10)}, `{}`, "quota_exhausted", 0, reset, "", true},
		{"429 opus weekly", 429, map[string]string{"anthropic-ratelimit-unified-7d_oi-status": "rejected", "anthropic-ratelimit-unified-7d_oi-reset": strconv.FormatInt(reset.Unix(), 10)}, `{}`, "quota_exhausted", 0, reset, "claude-opus-4-8", true},
		{"529", 529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "overloaded", 300 * time.Second, time.Time{}, "", true},
		{"401", 401, nil, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, "unavailable", 3600 * time.Second, time.Time{}, "", true},
		{"500", 500, nil, `{"type":"error","error":{"type":"api_error","message":"boom"}}`, "server_error", 30 * time.Second, time.Time{}, "", true},
		{"400 passes through", 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: field required"}}`, "", 0, time.Time{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(t)
			p.fakes[0].Script = fail(tt.status, tt.hdr, tt.body)
			r := startRelay(t, p.config())
			text, err := ask(t, r)
			if !tt.failover {
				var apiErr *anthropic.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status || !strings.Contains(apiErr.Error(), "max_tokens: field required") {
					t.Fatalf("client error not passed through: %v", err)
				}
				if p.fakes[1].Count() != 0 || len(r.App.Sched.Cooldowns()) != 0 {
					t.Fatal("a client error failed over or cooled the account")
				}
				return
			}
			if err != nil || text != "answer from 1" {
				t.Fatalf("want failover to a1, got %q %v", text, err)
			}
			cd := cooldownOf(t, r, "a0")
			if cd.Kind != tt.kind || cd.Model != tt.model {
				t.Fatalf("cooldown %+v", cd)
			}
			if !tt.exact.IsZero() && !cd.Until.Equal(tt.exact) {
				t.Fatalf("until %v want %v", cd.Until, tt.exact)
			}
			if tt.until > 0 {
				if d := time.Until(cd.Until); d < tt.until-5*time.Second || d > tt.until+time.Second {
					t.Fatalf("cooldown %v want ~%v", d, tt.until)
				}
			}
		})
	}
}

func TestFailoverConnectRefused(t *testing.T) {
	p := newPool(t)
	cfg := claudeAPIAccount("dead", closedURL(t), "k", 400) + p.config()
	r := startRelay(t, cfg)
	text, err := ask(t, r)
	if err != nil || text != "answer from 0" {
		t.Fatalf("%q %v", text, err)
	}
	if cooldownOf(t, r, "dead").Kind != "network" {
		t.Fatal("dead account not cooled as network")
	}
}

// An error event inside a 200 stream before any content fails over; the
// client sees one clean stream from the next account.
func TestFailoverOnErrorEventInStream(t *testing.T) {
	p := newPool(t)
	p.fakes[0].Script = func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		ev := fakeupstream.MessageStream("m", "x", 1, 0)[:1] // message_start only
		return &fakeupstream.Reply{Events: append(ev, fakeupstream.Event{Name: "error", Data: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`})}
	}
	r := startRelay(t, p.config())
	c := r.anthropicClient()
	stream := c.Messages.NewStreaming(context.Background(), newParams("m"))
	var acc anthropic.Message
	starts := 0
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "message_start" {
			starts++
		}
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Content[0].Text != "answer from 1" || starts != 1 {
		t.Fatalf("got %q with %d message_start events", acc.Content[0].Text, starts)
	}
	if cooldownOf(t, r, "a0").Kind != "overloaded" {
		t.Fatal("a0 not cooled as overloaded")
	}
	rows := r.usageRows(1)
	if rows[0].Account != "a1" || rows[0].Out != 7 {
		t.Fatalf("usage %+v", rows[0])
	}
}

// A stream that breaks after content reached the client ends with a proper
// SSE error event, not a silent truncation.
func TestMidStreamFailureEndsWithErrorEvent(t *testing.T) {
	p := newPool(t)
	p.fakes[0].Script = func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Events: fakeupstream.MessageStream("m", "partial answer", 2, 0), CutAfter: 4}
	}
	r := startRelay(t, p.config())
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Content-Type", "application/json") // protected mode takes JSON bodies only
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(body)
	if !strings.Contains(s, "content_block_delta") || !strings.HasSuffix(s, "\n\n") || !strings.Contains(s, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"") {
		t.Fatalf("stream did not end with an error event:\n%s", s)
	}
	if p.fakes[1].Count() != 0 {
		t.Fatal("failed over after content was sent")
	}
	// The SDK reports it as an error (a0 cooled down after the cut: reset it).
	r.App.Sched.Reset("a0")
	c := r.anthropicClient()
	stream := c.Messages.NewStreaming(context.Background(), newParams("m"))
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatal("SDK saw a clean end")
	}
}

// A stream that ends without message_stop is reported, not passed off as complete.
func TestStreamWithoutMessageStop(t *testing.T) {
	p := newPool(t)
	p.fakes[0].Script = func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		ev := fakeupstream.MessageStream("m", "x", 1, 0)
		return &fakeupstream.Reply{Events: ev[:len(ev)-1]}
	}
	r := startRelay(t, p.config())
	body := []byte(postStream(t, r))
	if !strings.Contains(string(body), "event: error") || !strings.Contains(string(body), "before its final event") {
		t.Fatalf("%s", body)
	}
}

func TestAllDown503RetryAfter(t *testing.T) {
	p := newPool(t)
	for i, f := range p.fakes {
		f.Script = fail(429, map[string]string{"retry-after": strconv.Itoa(100 * (i + 1))}, `{"type":"error","error":{"type":"rate_limit_error","message":"limited"}}`)
	}
	r := startRelay(t, p.config())
	// First request: all three fail; the last upstream answer goes back as is.
	resp, _ := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(`{"model":"m"}`))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), "limited") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// Now every account cools: 503 with retry-after = earliest return (~100 s).
	resp, _ = http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(`{"model":"m"}`))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 503 || ra < 95 || ra > 101 || !strings.Contains(string(b), `"type":"error"`) {
		t.Fatalf("%d retry-after %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

// Max attempts bounds the failover.
func TestMaxAttempts(t *testing.T) {
	p := newPool(t)
	for _, f := range p.fakes {
		f.Script = fail(500, nil, `{"type":"error","error":{"type":"api_error","message":"boom"}}`)
	}
	cfg := p.config() + serverWith(t, "max_attempts = 2")
	r := startRelay(t, cfg)
	resp, _ := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(`{"model":"m"}`))
	resp.Body.Close()
	if n := p.fakes[0].Count() + p.fakes[1].Count() + p.fakes[2].Count(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
}

func TestStickySessionEndToEnd(t *testing.T) {
	p := newPool(t)
	// Equal priorities so only stickiness keeps a conversation in place.
	cfg := claudeAPIAccount("a0", p.urls[0], "k0", 100) + claudeAPIAccount("a1", p.urls[1], "k1", 100) + claudeAPIAccount("a2", p.urls[2], "k2", 100)
	r := startRelay(t, cfg)
	conv := func(session string) string {
		body := `{"model":"m","max_tokens":1,"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"` + session + `\"}"},"messages":[{"role":"user","content":"hi"}]}`
		resp, err := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	first := conv("s-1")
	for i := 0; i < 5; i++ {
		conv("other-" + strconv.Itoa(i)) // other traffic rotates accounts
		if got := conv("s-1"); got != first {
			t.Fatal("conversation moved while its account was fine")
		}
	}
	// Its account starts failing: it moves and stays on the new one.
	var bound string
	for _, s := range r.App.Sched.Sessions() {
		if s.Key == "s-1" {
			bound = s.AccountID
		}
	}
	idx := int(bound[1] - '0')
	p.fakes[idx].Script = fail(529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	moved := conv("s-1")
	if moved == first || !strings.Contains(moved, "answer from") {
		t.Fatalf("did not move: %s", moved)
	}
	p.fakes[idx].Script = nil
	if got := conv("s-1"); got != moved {
		t.Fatal("rebound session did not stay on its new account")
	}
	// Restart keeps the binding and the cooldown.
	r2 := r.Restart()
	if cooldownOf(t, r2, bound).Kind != "overloaded" {
		t.Fatal("cooldown lost over restart")
	}
	r = r2
	if got := conv("s-1"); got != moved {
		t.Fatal("session lost over restart")
	}
}

// The CLI's reset reaches a running server.
func TestResetReachesRunningServer(t *testing.T) {
	p := newPool(t)
	p.fakes[0].Script = fail(529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	r := startRelay(t, p.config())
	ask(t, r)
	if cooldownOf(t, r, "a0").Kind == "" {
		t.Fatal("no cooldown")
	}
	p.fakes[0].Script = nil
	// What `ccrelay accounts reset a0` does, from another connection to the DB.
	db := r.App.DB
	if _, err := db.DeleteCooldowns(context.Background(), "a0"); err != nil {
		t.Fatal(err)
	}
	if err := db.AddCommand(context.Background(), storeCommand("reset_account", "a0")); err != nil {
		t.Fatal(err)
	}
	// The conversation is bound to a1 now; `ccrelay sessions clear --account a1`.
	if err := db.AddCommand(context.Background(), storeCommand("clear_sessions", "a1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (cooldownOf(t, r, "a0").Kind != "" || len(r.App.Sched.Sessions()) > 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if text, _ := ask(t, r); text != "answer from 0" {
		t.Fatalf("reset did not reach the server: %q", text)
	}
}
