package alerts

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/testutil"
)

// receiver is a local webhook that records what it gets.
type receiver struct {
	mu     sync.Mutex
	got    []received
	status int
	hang   chan struct{}
	posted chan struct{}
}

type received struct {
	path string
	body map[string]any
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	rc := &receiver{status: 200, posted: make(chan struct{}, 100)}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.URL.Path, m})
		status, hang := rc.status, rc.hang
		rc.mu.Unlock()
		rc.posted <- struct{}{}
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return rc, s
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func start(t *testing.T, cfgs []config.AlertConfig, opts Options) *Dispatcher {
	t.Helper()
	for i := range cfgs {
		if cfgs[i].QuietMinutes == 0 {
			cfgs[i].QuietMinutes = 60
		}
	}
	logs := &testutil.SyncBuffer{}
	d := New(cfgs, opts, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() {
		cancel()
		d.Wait()
		for _, c := range cfgs {
			for _, secret := range []string{c.URL, c.BotToken} {
				if secret != "" && strings.Contains(logs.String(), secret) {
					t.Errorf("a webhook secret is in the logs:\n%s", logs.String())
				}
			}
		}
	})
	return d
}

func wait(t *testing.T, rc *receiver, n int) []received {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-rc.posted:
		case <-time.After(10 * time.Second):
			t.Fatalf("webhook got %d of %d posts", i, n)
		}
	}
	return rc.all()
}

// Each event reaches the webhook once however often it happens within the
// quiet period; events a webhook did not ask for are not sent.
func TestEachEventOnce(t *testing.T) {
	rc, s := newReceiver(t)
	d := start(t, []config.AlertConfig{{URL: s.URL + "/hook", Format: config.AlertJSON}}, Options{})
	for i := 0; i < 5; i++ {
		d.AccountInvalid("claude-1", "refresh token rejected (invalid_grant)")
		d.PoolExhausted("claude")
		d.Quota("claude-1", "5h", 0.81)
		d.Quota("claude-1", "5h", 0.85) // same threshold: nothing new
		d.KeyBudget("alice", "daily", 80, 0.8)
	}
	d.Quota("claude-1", "5h", 0.96) // the next threshold
	d.KeyBudget("alice", "daily", 100, 1.0)
	d.AccountServed("claude-1") // recovered, once
	d.AccountServed("claude-1")
	d.AccountServed("claude-2") // never down: nothing
	got := wait(t, rc, 7)
	// Delivery is ordered within one webhook.
	want := []struct{ event, subject string }{
		{"account_invalid", "claude-1"}, {"pool_exhausted", "claude"}, {"quota_threshold", "claude-1 5h 80%"}, {"key_budget", "alice daily 80%"},
		{"quota_threshold", "claude-1 5h 95%"}, {"key_budget", "alice daily 100%"}, {"account_recovered", "claude-1"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d posts, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].body["event"] != w.event || got[i].body["subject"] != w.subject || got[i].path != "/hook" {
			t.Errorf("post %d = %v %v, want %v", i, got[i].path, got[i].body, w)
		}
		if msg, _ := got[i].body["message"].(string); !strings.HasPrefix(msg, "ccrelay: ") {
			t.Errorf("post %d message %q", i, msg)
		}
		if _, err := time.Parse(time.RFC3339, got[i].body["time"].(string)); err != nil {
			t.Errorf("post %d time: %v", i, err)
		}
	}
	// Nothing more arrives: one more event proves the queue is drained in order.
	d.PoolExhausted("gemini")
	if got := wait(t, rc, 1); len(got) != 8 || got[7].body["subject"] != "gemini" {
		t.Fatalf("an extra post was sent: %+v", got[len(want):])
	}
}

// Events a webhook does not list are not sent to it.
func TestEventFilter(t *testing.T) {
	rc, s := newReceiver(t)
	d := start(t, []config.AlertConfig{{URL: s.URL, Events: []string{config.EventPoolExhausted}}}, Options{})
	d.AccountInvalid("a", "x")
	d.PoolExhausted("claude")
	if got := wait(t, rc, 1); len(got) != 1 || got[0].body["event"] != "pool_exhausted" {
		t.Fatalf("got %+v", got)
	}
}

// The Slack, Discord and Telegram bodies have the shape each documents.
func TestFormats(t *testing.T) {
	e := Event{Kind: config.EventAccountInvalid, Subject: "c1", Message: "ccrelay: account c1 is unusable", Time: time.Unix(0, 0)}
	tests := []struct {
		name     string
		cfg      config.AlertConfig
		wantPath string
		want     map[string]any
	}{
		{"slack", config.AlertConfig{Format: config.AlertSlack}, "/", map[string]any{"text": e.Message}},
		{"discord", config.AlertConfig{Format: config.AlertDiscord}, "/", map[string]any{"content": e.Message, "username": "ccrelay", "allowed_mentions": map[string]any{"parse": []any{}}}},
		{"telegram", config.AlertConfig{Format: config.AlertTelegram, BotToken: "123:ABCdef", ChatID: "-1001"}, "/bot123:ABCdef/sendMessage",
			map[string]any{"chat_id": "-1001", "text": e.Message, "disable_web_page_preview": true}},
		{"json", config.AlertConfig{Format: config.AlertJSON}, "/", map[string]any{"event": "account_invalid", "subject": "c1", "message": e.Message, "time": "1970-01-01T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, s := newReceiver(t)
			tt.cfg.URL = s.URL
			d := start(t, []config.AlertConfig{tt.cfg}, Options{})
			d.Notify(e)
			got := wait(t, rc, 1)[0]
			if got.path != tt.wantPath {
				t.Errorf("path %q, want %q", got.path, tt.wantPath)
			}
			gb, _ := json.Marshal(got.body)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("body %s, want %s", gb, wb)
			}
		})
	}
}

// TestRenderEscapesMarkup: text in an alert (an account's reason, a name)
// reaches each chat as plain characters: no mention, no link, no markup.
func TestRenderEscapesMarkup(t *testing.T) {
	e := Event{Kind: config.EventAccountInvalid, Subject: "c1",
		Message: "account c1 is unusable: <!channel> @everyone <https://evil.example|log in here> [log in](https://evil.example) *now*\x1b[2J\r"}
	tests := []struct {
		format string
		field  string
		want   string
	}{
		{config.AlertSlack, "text", "account c1 is unusable: &lt;!channel&gt; @everyone &lt;https://evil.example|log in here&gt; [log in](https://evil.example) *now* [2J "},
		{config.AlertDiscord, "content", `account c1 is unusable: \<!channel\> \@everyone \<https://evil.example\|log in here\> \[log in\]\(https://evil.example\) \*now\* \[2J `},
		{config.AlertTelegram, "text", "account c1 is unusable: <!channel> @everyone <https://evil.example|log in here> [log in](https://evil.example) *now* [2J "},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			_, body, err := Render(config.AlertConfig{Format: tt.format, URL: "http://127.0.0.1/", ChatID: "1", BotToken: "1:x"}, e)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			if m[tt.field] != tt.want {
				t.Errorf("%s = %q\nwant     %q", tt.field, m[tt.field], tt.want)
			}
			if _, ok := m["parse_mode"]; ok {
				t.Error("telegram parse_mode set: markup would be read")
			}
			if tt.format == config.AlertDiscord {
				am, _ := m["allowed_mentions"].(map[string]any)
				if p, ok := am["parse"].([]any); !ok || len(p) != 0 {
					t.Errorf("allowed_mentions = %v, want parse: []", m["allowed_mentions"])
				}
			}
		})
	}
}

// A failing webhook is retried with back-off until it answers.
func TestRetries(t *testing.T) {
	rc, s := newReceiver(t)
	rc.status = 500
	d := start(t, []config.AlertConfig{{URL: s.URL}}, Options{Attempts: 3, Backoff: time.Millisecond})
	d.PoolExhausted("claude")
	wait(t, rc, 2)
	rc.mu.Lock()
	rc.status = 200
	rc.mu.Unlock()
	if got := wait(t, rc, 1); len(got) != 3 {
		t.Fatalf("%d posts", len(got))
	}
}

// A hanging webhook blocks neither Notify nor another webhook: the other
// gets every event while the first still hangs; once the hanging one's
// queue is full, Notify drops its events instead of waiting.
func TestHangingWebhook(t *testing.T) {
	hung, hs := newReceiver(t)
	hung.hang = make(chan struct{})
	defer close(hung.hang)
	ok, okSrv := newReceiver(t)
	d := start(t, []config.AlertConfig{{URL: hs.URL}, {URL: okSrv.URL}}, Options{QueueSize: 64, Timeout: time.Hour})
	for i := 0; i < 50; i++ {
		d.PoolExhausted("p" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	if got := wait(t, ok, 50); len(got) != 50 {
		t.Fatalf("the healthy webhook got %d of 50", len(got))
	}
	if got := wait(t, hung, 1); len(got) != 1 {
		t.Fatalf("hung webhook: %d", len(got))
	}
	// The hung queue holds 49 of 64: 100 more fill it and the rest drop,
	// and Notify still returns at once (this test would hang otherwise).
	for i := 0; i < 100; i++ {
		d.PoolExhausted("q" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
}

// SetConfig keeps an unchanged webhook's quiet periods and drops removed ones.
func TestSetConfig(t *testing.T) {
	rc, s := newReceiver(t)
	cfg := config.AlertConfig{URL: s.URL, QuietMinutes: 60}
	d := start(t, []config.AlertConfig{cfg}, Options{})
	d.PoolExhausted("claude")
	wait(t, rc, 1)
	d.SetConfig([]config.AlertConfig{cfg})
	d.PoolExhausted("claude") // still quiet
	d.PoolExhausted("gemini")
	if got := wait(t, rc, 1); len(got) != 2 || got[1].body["subject"] != "gemini" {
		t.Fatalf("got %+v", got)
	}
	d.SetConfig(nil)
	d.PoolExhausted("openai")
	d.SetConfig([]config.AlertConfig{cfg}) // new sink: new quiet periods
	d.PoolExhausted("claude")
	if got := wait(t, rc, 1); len(got) != 3 || got[2].body["subject"] != "claude" {
		t.Fatalf("got %+v", got)
	}
}
