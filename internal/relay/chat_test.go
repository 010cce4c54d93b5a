package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/usage"
)

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }
func (staticToken) Invalidate(string)                       {}

type memRecorder struct {
	mu   sync.Mutex
	recs []usage.Record
}

func (m *memRecorder) Record(r usage.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
}

func (m *memRecorder) all() []usage.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]usage.Record(nil), m.recs...)
}

type testAccount struct {
	id, typ, url, key string
}

// newTestRelay builds a relay over accounts (priority in list order) with
// models as the alias table, and serves it on loopback.
func newTestRelay(t *testing.T, models map[string]string, accts ...testAccount) (*httptest.Server, *memRecorder) {
	srv, rec, _ := newTestRelaySched(t, models, accts...)
	return srv, rec
}

func newTestRelaySched(t *testing.T, models map[string]string, accts ...testAccount) (*httptest.Server, *memRecorder, *scheduler.Scheduler) {
	t.Helper()
	var sa []*scheduler.Account
	var ups []*Upstream
	for i, a := range accts {
		ac := config.AccountConfig{ID: a.id, Type: a.typ, APIURL: a.url}
		acct := &scheduler.Account{ID: a.id, Type: a.typ, Platform: ac.Platform(), Priority: 100 - i, Enabled: true, Index: i}
		sa = append(sa, acct)
		ups = append(ups, &Upstream{Account: acct, Config: ac, Client: &http.Client{}, Token: staticToken(a.key), OAuth: a.typ == config.TypeClaudeOAuth})
	}
	sched := scheduler.New(sa, scheduler.Options{StickyTTL: time.Hour, RateLimitCooldown: time.Minute, ErrorCooldown: time.Minute, OverloadCooldown: time.Minute, UnavailableCooldown: time.Minute}, nil, nil)
	t.Cleanup(sched.Close)
	rec := &memRecorder{}
	rl := New(Options{Policy: testPolicy(t), FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, Models: models}, sched, ups, rec, nil)
	srv := httptest.NewServer(rl.Handler())
	t.Cleanup(srv.Close)
	return srv, rec, sched
}

func fakeClaude(t *testing.T, script func(n int, r *fakeupstream.Recorded) *fakeupstream.Reply) (*fakeupstream.Anthropic, string) {
	t.Helper()
	f := &fakeupstream.Anthropic{Script: script}
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return f, s.URL
}

func postChat(t *testing.T, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/openai/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// The converted request reaches Anthropic with the account's credential and
// none of the OpenAI client's own headers.
func TestChatUpstreamRequest(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		header   map[string]string
		wantAuth func(h http.Header) bool
		wantBeta string
		wantVer  string
	}{
		{
			name:     "api key",
			typ:      config.TypeClaudeAPI,
			header:   map[string]string{"Authorization": "Bearer client-openai-key", "OpenAI-Organization": "org-1", "User-Agent": "OpenAI/Go 3.98.0", "X-Stainless-Lang": "go"},
			wantAuth: func(h http.Header) bool { return h.Get("X-Api-Key") == "acct-secret" && h.Get("Authorization") == "" },
			wantVer:  "2023-06-01",
		},
		{
			name:   "oauth with client beta and version",
			typ:    config.TypeClaudeOAuth,
			header: map[string]string{"Authorization": "Bearer client-openai-key", "Anthropic-Beta": "context-1m-2025-08-07", "Anthropic-Version": "2099-01-01"},
			wantAuth: func(h http.Header) bool {
				return h.Get("Authorization") == "Bearer acct-secret" && h.Get("X-Api-Key") == ""
			},
			wantBeta: "context-1m-2025-08-07,oauth-2025-04-20",
			wantVer:  "2099-01-01",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := fakeClaude(t, nil)
			srv, _ := newTestRelay(t, map[string]string{"gpt-4o": "claude-sonnet-5"}, testAccount{"a", tt.typ, url, "acct-secret"})
			resp, body := postChat(t, srv.URL, `{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`, tt.header)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := f.Requests()[0]
			if got.Path != "/v1/messages" || !tt.wantAuth(got.Header) {
				t.Fatalf("path %s, headers %v", got.Path, got.Header)
			}
			for _, k := range []string{"Openai-Organization", "X-Stainless-Lang"} {
				if got.Header.Get(k) != "" {
					t.Errorf("client header %s reached Anthropic", k)
				}
			}
			if ua := tt.header["User-Agent"]; ua != "" && got.Header.Get("User-Agent") != ua {
				t.Errorf("user-agent %q, want %q", got.Header.Get("User-Agent"), ua)
			}
			if got.Header.Get("Anthropic-Beta") != tt.wantBeta || got.Header.Get("Anthropic-Version") != tt.wantVer {
				t.Errorf("beta %q version %q", got.Header.Get("Anthropic-Beta"), got.Header.Get("Anthropic-Version"))
			}
			if got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content-type %q", got.Header.Get("Content-Type"))
			}
			r := gjson.ParseBytes(got.Body)
			if r.Get("model").Str != "claude-sonnet-5" || r.Get("system.0.text").Str != "be brief" || r.Get("messages.0.content.0.text").Str != "hi" || r.Get("max_tokens").Int() == 0 {
				t.Errorf("upstream body %s", got.Body)
			}
			// The client sees the model name it asked for.
			if m := gjson.GetBytes(body, "model").Str; m != "gpt-4o" {
				t.Errorf("response model %q", m)
			}
		})
	}
}

func TestChatRequestErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		status    int
		wantParam any
	}{
		{"n above 1", `{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`, 400, "n"},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model"},
		{"temperature above claude max", `{"model":"m","temperature":1.5,"messages":[{"role":"user","content":"hi"}]}`, 400, "temperature"},
		{"not json", `{"model":`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := fakeClaude(t, nil)
			srv, rec := newTestRelay(t, nil, testAccount{"a", config.TypeClaudeAPI, url, "k"})
			resp, body := postChat(t, srv.URL, tt.body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var e struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
					Param   any    `json:"param"`
					Code    any    `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type != "invalid_request_error" || e.Error.Param != tt.wantParam {
				t.Fatalf("error body %s (param %v, want %v)", body, e.Error.Param, tt.wantParam)
			}
			if f.Count() != 0 {
				t.Fatal("a bad request reached the upstream")
			}
			if tt.wantParam != nil {
				recs := rec.all()
				if len(recs) != 1 || recs[0].Status != 400 || recs[0].Error == "" || recs[0].Platform != "claude" {
					t.Fatalf("usage records %+v", recs)
				}
			}
		})
	}
}

// An Anthropic error answer (a client error: no failover) reaches the
// client in OpenAI's shape with the upstream's wording intact, as every
// converted route hands on a foreign answer (before the Chat route ran on
// the conversion layer it got the Anthropic body as is).
func TestChatUpstreamErrorInClientShape(t *testing.T) {
	const msg = "prompt is too long: 250000 tokens > 200000 maximum"
	errBody := fakeupstream.AnthropicError("invalid_request_error", msg)
	f, url := fakeClaude(t, func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 400, Body: errBody, Header: map[string]string{"Request-Id": "req_up"}}
	})
	srv, rec := newTestRelay(t, nil, testAccount{"a", config.TypeClaudeAPI, url, "k"}, testAccount{"b", config.TypeClaudeAPI, url, "k"})
	resp, body := postChat(t, srv.URL, `{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	e := gjson.GetBytes(body, "error")
	if resp.StatusCode != 400 || e.Get("message").Str != msg || e.Get("type").Str != "invalid_request_error" || gjson.GetBytes(body, "type").Exists() {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if f.Count() != 1 {
		t.Fatalf("a client error was retried: %d upstream requests", f.Count())
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].Status != 400 || recs[0].Model != "claude-x" {
		t.Fatalf("records %+v", recs)
	}
}

// sseData returns the data payloads of an OpenAI chat stream.
func sseData(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, ev := range bytes.Split(body, []byte("\n\n")) {
		if len(bytes.TrimSpace(ev)) == 0 {
			continue
		}
		for _, line := range bytes.Split(ev, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				out = append(out, string(d))
			}
		}
	}
	return out
}

// An overloaded error event after message_start fails over; the client,
// which already has the role chunk, sees one coherent stream: one role
// chunk, one chunk id, the second account's text, [DONE].
func TestChatStreamFailoverAfterPreamble(t *testing.T) {
	_, url1 := fakeClaude(t, func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		ev := fakeupstream.MessageStream("claude-x", "unused", 1, 0)[:1]
		return &fakeupstream.Reply{Events: append(ev, fakeupstream.Event{Name: "error", Data: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`})}
	})
	f2, url2 := fakeClaude(t, nil)
	f2.Text = "answer from the second account"
	srv, rec := newTestRelay(t, nil, testAccount{"first", config.TypeClaudeAPI, url1, "k1"}, testAccount{"second", config.TypeClaudeAPI, url2, "k2"})
	resp, body := postChat(t, srv.URL, `{"model":"claude-x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	data := sseData(t, body)
	if len(data) == 0 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", body)
	}
	ids := map[string]bool{}
	roles, text := 0, ""
	var lastUsage gjson.Result
	for _, d := range data[:len(data)-1] {
		r := gjson.Parse(d)
		if r.Get("error").Exists() {
			t.Fatalf("error chunk in a failed-over stream: %s", d)
		}
		ids[r.Get("id").Str] = true
		if r.Get("choices.0.delta.role").Exists() {
			roles++
		}
		text += r.Get("choices.0.delta.content").Str
		if u := r.Get("usage"); u.IsObject() {
			lastUsage = u
		}
	}
	if roles != 1 || len(ids) != 1 || text != "answer from the second account" {
		t.Fatalf("roles %d ids %v text %q\n%s", roles, ids, text, body)
	}
	// fakeupstream.MessageStream: 12 input + 3 cache write + 5 cache read, 7 output.
	if lastUsage.Get("prompt_tokens").Int() != 20 || lastUsage.Get("completion_tokens").Int() != 7 {
		t.Fatalf("usage chunk %s", lastUsage.Raw)
	}
	recs := rec.all()
	if len(recs) != 1 || recs[0].AccountID != "second" || recs[0].Attempts != 2 || recs[0].OutputTokens != 7 || recs[0].InputTokens != 12 || !recs[0].Stream {
		t.Fatalf("records %+v", recs)
	}
}

// A stream that dies after content ends with an OpenAI error chunk, not a
// [DONE] that would pass a truncated answer off as complete.
func TestChatStreamCutAfterContent(t *testing.T) {
	_, url := fakeClaude(t, func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Events: fakeupstream.MessageStream("claude-x", "partial answer", 2, 0), CutAfter: 5}
	})
	srv, rec := newTestRelay(t, nil, testAccount{"a", config.TypeClaudeAPI, url, "k"})
	resp, body := postChat(t, srv.URL, `{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	data := sseData(t, body)
	last := data[len(data)-1]
	if last == "[DONE]" || !gjson.Get(last, "error.message").Exists() {
		t.Fatalf("stream end %q\n%s", last, body)
	}
	if !strings.Contains(string(body), `"content":"partial`) {
		t.Fatalf("content before the cut missing: %s", body)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].Status != http.StatusBadGateway {
		t.Fatalf("records %+v", recs)
	}
}

func TestChatSessionKey(t *testing.T) {
	const (
		turn1    = `{"model":"claude-x","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"turn one"}]}`
		turn2    = `{"model":"claude-x","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"turn one"},{"role":"assistant","content":"ok"},{"role":"user","content":"turn two"}]}`
		otherApp = `{"model":"claude-x","messages":[{"role":"system","content":"Another app."},{"role":"user","content":"turn one"}]}`
		imageApp = `{"model":"claude-x","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`
		claudeNo = `{"model":"claude-x","temperature":1.7,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"turn one"}]}`
	)
	key := func(chat string, h http.Header) string {
		t.Helper()
		if h == nil {
			h = http.Header{}
		}
		c := &call{req: &http.Request{Header: h}, conv: &conversion{side: clientSides["openai"]}}
		in, err := c.conv.decoded([]byte(chat))
		if err != nil {
			t.Fatal(err)
		}
		c.targets = []target{{platform: "claude", model: in.Model}}
		keyChat(c, in)
		return c.sessionKey
	}
	base := key(turn1, nil)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"later turn of the conversation", key(turn2, nil), base},
		{"prompt_cache_key wins", key(`{"model":"m","prompt_cache_key":"conv-42","messages":[{"role":"user","content":"hi"}]}`, nil), "chat:conv-42"},
		{"claude code session header", key(turn1, http.Header{"X-Claude-Code-Session-Id": {"sess-9"}}), "sess-9"},
		{"nothing to key on", key(imageApp, nil), ""},
		// Claude refuses temperature 1.7, another target may serve it: the
		// client's header still keys it.
		{"a request Claude refuses", key(claudeNo, http.Header{"X-Claude-Code-Session-Id": {"sess-9"}}), "sess-9"},
	}
	if base == "" || key(otherApp, nil) == base {
		t.Fatalf("system prompt hash: %q, other app %q", base, key(otherApp, nil))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("key %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// Two turns of one conversation, through the real converter, land on the
// same account although a higher-priority one is free again.
func TestChatStickySession(t *testing.T) {
	var mu sync.Mutex
	fail := true
	_, url1 := fakeClaude(t, func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return &fakeupstream.Reply{Status: 500, Body: fakeupstream.AnthropicError("api_error", "boom")}
		}
		return nil
	})
	f2, url2 := fakeClaude(t, nil)
	srv, _, sched := newTestRelaySched(t, nil, testAccount{"first", config.TypeClaudeAPI, url1, "k1"}, testAccount{"second", config.TypeClaudeAPI, url2, "k2"})
	turn1 := `{"model":"claude-x","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"one"}]}`
	turn2 := `{"model":"claude-x","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"one"},{"role":"assistant","content":"ok"},{"role":"user","content":"two"}]}`
	if resp, body := postChat(t, srv.URL, turn1, nil); resp.StatusCode != 200 {
		t.Fatalf("turn 1: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	sched.Reset("first") // free again: only the binding keeps turn 2 off it
	if resp, body := postChat(t, srv.URL, turn2, nil); resp.StatusCode != 200 {
		t.Fatalf("turn 2: %d %s", resp.StatusCode, body)
	}
	if f2.Count() != 2 {
		t.Fatalf("second account served %d of 2 turns", f2.Count())
	}
	// Control: a new conversation goes to the free higher-priority account.
	if resp, body := postChat(t, srv.URL, `{"model":"claude-x","messages":[{"role":"system","content":"Other app."},{"role":"user","content":"one"}]}`, nil); resp.StatusCode != 200 || f2.Count() != 2 {
		t.Fatalf("new conversation: %d %s, second account count %d", resp.StatusCode, body, f2.Count())
	}
}
