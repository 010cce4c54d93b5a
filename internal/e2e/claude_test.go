package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"go.uber.org/goleak"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/usage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The SQLite driver and the HTTP client keep-alive pools are process-wide.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"), // started by init in google.golang.org/genai's dependencies
		goleak.Cleanup(func(code int) {
			// No configured key, token or relay key in any relay's log or
			// `accounts list` output, across every test of the package.
			if leaks := leakedSecrets(); len(leaks) > 0 {
				for _, l := range leaks {
					fmt.Fprintln(os.Stderr, l)
				}
				fmt.Fprintln(os.Stderr, "FAIL: secrets leaked into logs")
				os.Exit(1)
			}
			os.Exit(code)
		}),
	)
}

// streamMessage streams p through c and returns the message the SDK's
// accumulator builds from the events, failing t on any error.
func streamMessage(t *testing.T, c anthropic.Client, p anthropic.MessageNewParams) anthropic.Message {
	t.Helper()
	stream := c.Messages.NewStreaming(context.Background(), p)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return acc
}

func newParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		MaxTokens: 1024,
		Model:     anthropic.Model(model),
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("say hi"))},
	}
}

func TestMessagesJSONEndToEnd(t *testing.T) {
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant-account-1"}}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100))

	client := r.anthropicClient(option.WithHeader("anthropic-beta", "context-1m-2025-08-07,custom-beta"), option.WithHeader("X-Claude-Code-Session-Id", "sess-1"), option.WithHeader("x-app", "cli"))
	msg, err := client.Messages.New(context.Background(), newParams("claude-opus-4-8"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello from fake upstream" || msg.Usage.InputTokens != 12 {
		t.Fatalf("client got %+v", msg)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	got := reqs[0]
	if got.Path != "/v1/messages" || got.Header.Get("X-Api-Key") != "sk-ant-account-1" || got.Header.Get("Authorization") != "" {
		t.Fatalf("upstream auth wrong: path %s key %q authz %q", got.Path, got.Header.Get("X-Api-Key"), got.Header.Get("Authorization"))
	}
	if strings.Contains(strings.Join(flatten(got.Header), "\n"), relayKey) {
		t.Fatal("relay key reached the upstream")
	}
	if got.Header.Get("Anthropic-Beta") != "context-1m-2025-08-07,custom-beta" || got.Header.Get("X-App") != "cli" ||
		got.Header.Get("X-Claude-Code-Session-Id") != "sess-1" || got.Header.Get("Anthropic-Version") == "" || got.Header.Get("X-Stainless-Lang") == "" {
		t.Fatalf("client headers not passed through: %v", got.Header)
	}
	rows := r.usageRows(1)
	want := usageRow{Account: "acct-1", Model: "claude-opus-4-8", Status: 200, In: 12, Out: 7, CacheWrite: 3, CacheRead: 5, KeyHash: usage.HashKey(relayKey)}
	if rows[0] != want {
		t.Fatalf("usage row %+v, want %+v", rows[0], want)
	}
}

func flatten(h http.Header) []string {
	var out []string
	for k, vv := range h {
		out = append(out, k+": "+strings.Join(vv, ","))
	}
	return out
}

// The body goes upstream byte for byte, unknown fields and all (Claude Code
// sends role:"system" messages, output_config, defer_loading tools...), and
// the query string (?beta=true) passes through.
func TestBodyAndQueryPassThrough(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", up.URL+"/v1", "k", 100))
	body := `{"model":"claude-opus-5-5","max_tokens":128000,"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]},{"role":"system","content":"Available agent types","output_config":{"effort":"medium"}}],"tools":[{"name":"DeferredToolPlaceholder","input_schema":{"type":"object"},"defer_loading":true}],"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},"output_config":{"effort":"medium"},"thinking":{"type":"adaptive","display":"omitted"},"metadata":{"user_id":"{\"device_id\":\"ab\",\"account_uuid\":\"\",\"session_id\":\"9f1c0e34-5b7a-4d2e-8c61-0a1b2c3d4e5f\"}"},"future_field":{"x":[1,2,3]}}`
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages?beta=true", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+relayKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "keep-alive, X-Hop")
	req.Header.Set("X-Hop", "must-not-pass")
	req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	got := fake.Requests()[0]
	if string(got.Body) != body {
		t.Fatalf("body changed:\n got %s\nwant %s", got.Body, body)
	}
	if got.RawQuery != "beta=true" || got.Path != "/v1/messages" {
		t.Fatalf("query/path: %s?%s", got.Path, got.RawQuery)
	}
	if got.Header.Get("X-Hop") != "" || got.Header.Get("Authorization") != "" {
		t.Fatal("hop-by-hop or client credential header reached upstream")
	}
	// The response passes unmodified, extra fields included.
	if string(out) != fakeupstream.MessageJSON("claude-opus-5-5", "Hello from fake upstream") {
		t.Fatalf("response changed: %s", out)
	}
	// Session key from the JSON user_id form.
	r.Close()
	sessions, _ := r.App.DB.Sessions(context.Background(), time.Now())
	_ = sessions
}

func TestMessagesStreamEndToEnd(t *testing.T) {
	fake := &fakeupstream.Anthropic{Text: "streamed answer text", StreamEvents: 4, EventGap: 5 * time.Millisecond}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("acct-1", up.URL, "k", 100))
	client := r.anthropicClient()
	stream := client.Messages.NewStreaming(context.Background(), newParams("claude-sonnet-5"))
	var acc anthropic.Message
	events := 0
	for stream.Next() {
		events++
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Content[0].Text != "streamed answer text" || acc.StopReason != "end_turn" || acc.Usage.OutputTokens != 7 {
		t.Fatalf("accumulated %+v", acc)
	}
	// 10 events upstream; the SDK does not surface the ping.
	if events != 9 {
		t.Fatalf("want 9 events, got %d", events)
	}
	rows := r.usageRows(1)
	if !rows[0].Stream || rows[0].In != 12 || rows[0].Out != 7 || rows[0].CacheRead != 5 || rows[0].Status != 200 {
		t.Fatalf("usage %+v", rows[0])
	}
}

// Each event reaches the client when the upstream sends it, not batched.
func TestStreamIsNotBuffered(t *testing.T) {
	gap := 150 * time.Millisecond
	fake := &fakeupstream.Anthropic{StreamEvents: 3, EventGap: gap}
	up := upstream(t, fake)
	r := startRelay(t, claudeAPIAccount("a", up.URL, "k", 100))
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":1,"stream":true,"messages":[]}`))
	req.Header.Set("Content-Type", "application/json") // protected mode takes JSON bodies only
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	buf := make([]byte, 4096)
	start := time.Now()
	n, _ := resp.Body.Read(buf)
	if !bytes.Contains(buf[:n], []byte("message_start")) {
		t.Fatalf("first read: %q", buf[:n])
	}
	// message_start is sent at once; the rest comes gap apart. If the relay
	// buffered, the first read would only return after several gaps.
	if el := time.Since(start); el > 3*gap {
		t.Fatalf("first event took %v: the relay buffers", el)
	}
}

func TestRelayKeyRequired(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`", "second-key"]`+"\n"+claudeAPIAccount("a", up.URL, "k", 100))
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"missing", nil, 401},
		{"wrong x-api-key", map[string]string{"X-Api-Key": "nope"}, 401},
		{"wrong bearer", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"x-api-key", map[string]string{"X-Api-Key": relayKey}, 200},
		{"bearer", map[string]string{"Authorization": "Bearer second-key"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":1,"messages":[]}`))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want == 401 {
				var e struct {
					Type  string `json:"type"`
					Error struct{ Type, Message string }
				}
				if json.Unmarshal(body, &e) != nil || e.Type != "error" || e.Error.Type != "authentication_error" {
					t.Fatalf("not Anthropic's error shape: %s", body)
				}
			}
		})
	}
	// A key in the query string is refused on Anthropic routes.
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages?key="+relayKey, strings.NewReader(`{}`))
	req.Header.Set("X-Api-Key", relayKey)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("?key= on /v1/messages: %d", resp.StatusCode)
	}
	// /health needs no key and says nothing secret.
	resp, _ = http.Get(r.URL + "/health")
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(hb), "acct") || strings.Contains(string(hb), relayKey) {
		t.Fatalf("/health: %d %s", resp.StatusCode, hb)
	}
	// The SDK surfaces the 401 as an API error.
	wc := r.anthropicClient(option.WithAPIKey("wrong"))
	_, err := wc.Messages.New(context.Background(), newParams("m"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("sdk error %v", err)
	}
}

func TestNoAccounts503(t *testing.T) {
	r := startRelay(t, "")
	c := r.anthropicClient()
	_, err := c.Messages.New(context.Background(), newParams("m"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("want 503, got %v", err)
	}
	if !strings.Contains(apiErr.Error(), "no claude accounts are configured") || !strings.Contains(apiErr.Error(), "[[accounts]]") {
		t.Fatalf("503 should say how to fix it: %v", apiErr)
	}
}

func TestOversizedBody413(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	cfg := claudeAPIAccount("a", up.URL, "k", 100) + serverWith(t, "max_body_bytes = 1024")
	r := startRelay(t, cfg)
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 2048) + `"}]}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // unknown length: chunked
		}
		req, _ := http.NewRequest("POST", r.URL+"/v1/messages", body)
		req.Header.Set("Content-Type", "application/json") // protected mode takes JSON bodies only
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), `"request_too_large"`) {
			t.Fatalf("chunked=%v: %d %s", chunked, resp.StatusCode, b)
		}
	}
	if fake.Count() != 0 {
		t.Fatal("oversized request reached the upstream")
	}
	// Invalid JSON: 400 in Anthropic's shape.
	resp, _ := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(`{"model":`))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_request_error") {
		t.Fatalf("invalid json: %d %s", resp.StatusCode, b)
	}
}

func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

func TestUpstreamDown(t *testing.T) {
	r := startRelay(t, claudeAPIAccount("dead", closedURL(t), "k", 100))
	c := r.anthropicClient()
	_, err := c.Messages.New(context.Background(), newParams("m"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || !strings.Contains(apiErr.Error(), "connect") {
		t.Fatalf("want 502 connect error, got %v", err)
	}
	// The account now cools down: the next request gets 503 with retry-after.
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Content-Type", "application/json") // protected mode takes JSON bodies only
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("want 503 with retry-after, got %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	rows := r.usageRows(2)
	if rows[0].Status != 502 || rows[1].Status != 503 {
		t.Fatalf("usage statuses %+v", rows)
	}
}

func TestFirstByteTimeout(t *testing.T) {
	slow := &fakeupstream.Anthropic{Script: func(n int, _ *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Stall: 10 * time.Second, Events: fakeupstream.MessageStream("m", "x", 1, 0)}
	}}
	fast := &fakeupstream.Anthropic{}
	us, uf := upstream(t, slow), upstream(t, fast)
	cfg := claudeAPIAccount("slow", us.URL, "k", 200) + claudeAPIAccount("fast", uf.URL, "k", 100) +
		serverWith(t, "first_byte_timeout_seconds = 1")
	r := startRelay(t, cfg)
	streamFailsOverWithin(t, r, 5*time.Second)
	rows := r.usageRows(1)
	if rows[0].Account != "fast" {
		t.Fatalf("served by %s", rows[0].Account)
	}
}

// A client that goes away mid-stream cancels the upstream request, and the
// usage seen so far is recorded.
func TestClientDisconnectMidStream(t *testing.T) {
	var upstreamDone atomic.Bool
	events := fakeupstream.MessageStream("m", strings.Repeat("word ", 50), 50, 20*time.Millisecond)
	fake := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Events: events}
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fake.ServeHTTP(w, req)
		if req.Context().Err() != nil {
			upstreamDone.Store(true)
		}
	})
	up := upstream(t, h)
	r := startRelay(t, claudeAPIAccount("a", up.URL, "k", 100))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Content-Type", "application/json") // protected mode takes JSON bodies only
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	resp.Body.Read(buf)
	time.Sleep(100 * time.Millisecond)
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(3 * time.Second)
	for !upstreamDone.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !upstreamDone.Load() {
		t.Fatal("upstream request was not cancelled")
	}
	rows := r.usageRows(1)
	if rows[0].Status != 499 || rows[0].In != 12 {
		t.Fatalf("usage after disconnect: %+v", rows[0])
	}
}

// Shutdown waits for an open stream to finish and flushes its usage.
func TestShutdownDrainsStream(t *testing.T) {
	fake := &fakeupstream.Anthropic{StreamEvents: 5, EventGap: 100 * time.Millisecond}
	up := upstream(t, fake)
	r := startRelay(t, claudeAPIAccount("a", up.URL, "k", 100))
	done := make(chan anthropic.Message)
	go func() {
		c := r.anthropicClient()
		stream := c.Messages.NewStreaming(context.Background(), newParams("m"))
		var acc anthropic.Message
		for stream.Next() {
			acc.Accumulate(stream.Current())
		}
		done <- acc
	}()
	waitFor(t, 10*time.Second, "the stream to reach the upstream", func() bool { return fake.Count() > 0 })
	time.Sleep(50 * time.Millisecond)
	db := r.App.DB
	r.Close() // drains
	acc := <-done
	if len(acc.Content) == 0 || acc.Content[0].Text != "Hello from fake upstream" {
		t.Fatalf("stream cut by shutdown: %+v", acc)
	}
	_ = db
	r2 := startRelayAt(t, r.cfg, r.DBPath)
	rows := r2.usageRows(1)
	if rows[0].Out != 7 {
		t.Fatalf("usage not flushed: %+v", rows)
	}
}
