package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// rawExchange sends raw request bytes on a new connection and returns the
// response (read with a generous bound so a hang fails instead of blocking)
// and the connection.
func rawExchange(t *testing.T, r *relayUT, request string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp, conn
}

// Every refusal of a request that declared a body it did not send (a missing
// key, a body that does not arrive in time, an unknown route, a malformed
// Gemini path) is answered at once and the connection closed, whatever the
// size declared. net/http reads up to 256 KiB of an unread body after the
// handler returns, with no deadline, even on a connection it then closes: a
// small declared body used to hold the connection open for as long as the
// client liked (issue 31, item 3).
func TestRefusalDoesNotWaitForTheBody(t *testing.T) {
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", closedURL(t), "k", 100)+serverWith(t, "body_timeout_seconds = 1"))
	tests := []struct {
		name, head string
		status     int
		want       string
	}{
		{"no key, small body", "POST /v1/messages HTTP/1.1\r\nContent-Length: 100000\r\n", 401, "authentication_error"},
		{"no key, 256 KiB", "POST /v1/messages HTTP/1.1\r\nContent-Length: 262144\r\n", 401, "authentication_error"},
		{"no key, 1 byte", "POST /v1/messages HTTP/1.1\r\nContent-Length: 1\r\n", 401, "authentication_error"},
		{"no key, large body", "POST /v1/messages HTTP/1.1\r\nContent-Length: 10000000\r\n", 401, "authentication_error"},
		{"no key, chunked", "POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 401, "authentication_error"},
		{"no key, chat", "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100000\r\n", 401, "authentication_error"},
		{"no key, gemini", "POST /gemini/v1beta/models/m:generateContent HTTP/1.1\r\nContent-Length: 100000\r\n", 401, "UNAUTHENTICATED"},
		{"body timeout", "POST /v1/messages HTTP/1.1\r\nX-Api-Key: " + relayKey + "\r\nContent-Length: 1000\r\n", 408, "did not arrive"},
		{"unknown route", "POST /v1/nothing HTTP/1.1\r\nX-Api-Key: " + relayKey + "\r\nContent-Length: 100000\r\n", 404, "no route"},
		{"bad gemini path", "POST /gemini/v1beta/models/a..b:generateContent HTTP/1.1\r\nX-Goog-Api-Key: " + relayKey + "\r\nContent-Length: 100000\r\n", 400, "invalid gemini path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, conn := rawExchange(t, r, tt.head+"Host: x\r\nContent-Type: application/json\r\n\r\n")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if !resp.Close {
				t.Fatal("the refusal does not say Connection: close")
			}
			expectClosed(t, conn)
		})
	}
}

// expectClosed reads from conn until the server closes it; a read that
// times out means the server kept the connection open.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("connection still open (read %d bytes)", n)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("connection still open 10 s after the refusal")
	}
}

// A body that trickles in slower than body_timeout_seconds is cut with 408.
func TestTricklingBodyIsCut(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", upstream(t, fake).URL, "k", 100)+serverWith(t, "body_timeout_seconds = 1"))
	resp, _ := rawExchange(t, r, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: "+relayKey+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if fake.Count() != 0 {
		t.Fatal("a request reached the upstream")
	}
}

// A client that stops reading a stream is dropped after write_timeout_seconds
// and its upstream call is cancelled.
func TestStalledReaderIsDropped(t *testing.T) {
	up, cancelled := endlessStream(t)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", up, "k", 100)+serverWith(t, "write_timeout_seconds = 1"))
	askWithoutReading(t, r, `{"model":"m","stream":true,"max_tokens":10,"messages":[]}`)
	waitFor(t, 60*time.Second, "the upstream call to be cancelled", cancelled.Load)
	rows := r.usageRows(1)
	if rows[0].Status != 499 {
		t.Fatalf("usage %+v", rows[0])
	}
}

// endlessStream is an upstream that streams 32 KB events until its client
// goes; cancelled is set when it stops.
func endlessStream(t *testing.T) (url string, cancelled *atomic.Bool) {
	cancelled = new(atomic.Bool)
	chunk := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + strings.Repeat("x", 32<<10) + "\"}}\n\n"
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n")
		for {
			if _, err := io.WriteString(w, chunk); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			if req.Context().Err() != nil {
				break
			}
		}
		cancelled.Store(true)
	}))
	return up.URL, cancelled
}

// askWithoutReading posts body to /v1/messages on a connection with a small
// receive buffer and reads nothing: the relay's writes block once the
// socket buffers fill.
func askWithoutReading(t *testing.T, r *relayUT, body string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", relayKey, len(body), body)
}

// A client that stops reading a large whole (non-streamed) answer is
// dropped after write_timeout_seconds too, and the request is recorded as
// 499 (the client did not get it), not 200.
func TestStalledReaderOfALargeAnswerIsDropped(t *testing.T) {
	text := strings.Repeat("x", 16<<20)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"m","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"`+text+`"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", up.URL, "k", 100)+serverWith(t, "write_timeout_seconds = 1"))
	askWithoutReading(t, r, `{"model":"m","max_tokens":10,"messages":[]}`) // the answer is far larger than the socket buffers
	rows := r.usageRows(1)
	if rows[0].Status != 499 {
		t.Fatalf("usage %+v", rows[0])
	}
}

// A committed stream that falls silent (no bytes at all) past the idle
// timeout ends with an error event, cools the account and is recorded as a
// failure. The default idle timeout is 90 s, under Claude Code's ~180 s.
func TestSilentCommittedStreamIsEndedAndRecorded(t *testing.T) {
	stall := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		ev := fakeupstream.MessageStream("m", "partial", 1, 0)
		return &fakeupstream.Reply{Events: ev[:4], Hang: true}
	}}
	r := startRelay(t, claudeAPIAccount("a", upstream(t, stall).URL, "k", 100)+serverWith(t, "idle_timeout_seconds = 1"))
	b := []byte(postStream(t, r))
	if !strings.Contains(string(b), "event: error") || !strings.Contains(string(b), "overloaded_error") && !strings.Contains(string(b), "api_error") {
		t.Fatalf("%s", b)
	}
	if cooldownOf(t, r, "a").Kind != "network" {
		t.Fatal("silent account not cooled")
	}
	if row := r.usageRows(1)[0]; row.Status != http.StatusBadGateway {
		t.Fatalf("usage %+v", row)
	}
	if got := config.Default().Server.IdleTimeoutSeconds; got != 90 {
		t.Fatalf("default idle timeout %d, want 90", got)
	}
}

// A committed stream whose events keep coming is never cut by the idle
// timeout, however long it runs: every read restarts the allowance (the
// watchdog re-arms itself instead of ending the stream at the first expiry).
func TestLiveStreamOutlastsTheIdleTimeout(t *testing.T) {
	slow := &fakeupstream.Anthropic{StreamEvents: 12, EventGap: 250 * time.Millisecond}
	r := startRelay(t, claudeAPIAccount("a", upstream(t, slow).URL, "k", 100)+serverWith(t, "idle_timeout_seconds = 1"))
	start := time.Now()
	b := []byte(postStream(t, r))
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("the stream took %s; it should have outlasted the 1 s idle timeout", took)
	}
	if strings.Contains(string(b), "event: error") || !strings.Contains(string(b), "event: message_stop") {
		t.Fatalf("a live stream was cut: %s", b)
	}
	if len(r.App.Sched.Cooldowns()) != 0 {
		t.Fatalf("a live stream cooled its account: %+v", r.App.Sched.Cooldowns())
	}
}

// A body a Code Assist account cannot wrap ({x}) is the client's 400 before
// any account is picked: no account cools, the next valid request is served.
func TestUnwrappableBodyIsTheClientsError(t *testing.T) {
	ca := &fakeupstream.CodeAssist{}
	_, acct := codeAssistUpstream(t, "g", ca, 100)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+acct)
	code, _, body := rawGemini(t, "POST", r.URL+"/gemini/v1beta/models/gemini-2.5-pro:generateContent", `{x}`, map[string]string{"x-goog-api-key": relayKey})
	if code != 400 || !strings.Contains(body, "INVALID_ARGUMENT") {
		t.Fatalf("%d %s", code, body)
	}
	if len(r.App.Sched.Cooldowns()) != 0 {
		t.Fatalf("a client's body cooled an account: %+v", r.App.Sched.Cooldowns())
	}
	code, _, body = rawGemini(t, "POST", r.URL+"/gemini/v1beta/models/gemini-2.5-pro:generateContent", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, map[string]string{"x-goog-api-key": relayKey})
	if code != 200 {
		t.Fatalf("valid request after a bad one: %d %s", code, body)
	}
}

// A 429 that belongs to the request (long context needs extra usage) reaches
// the client word for word and cools nothing; no other account is tried.
func TestRequestScoped429IsPassedThrough(t *testing.T) {
	const msg = `{"type":"error","error":{"type":"rate_limit_error","message":"Extra usage is required for long context requests."}}`
	a := &fakeupstream.Anthropic{Script: fail(429, nil, msg)}
	b := &fakeupstream.Anthropic{}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", upstream(t, a).URL, "k1", 200)+claudeAPIAccount("b", upstream(t, b).URL, "k2", 100))
	_, err := ask(t, r)
	if err == nil || !strings.Contains(err.Error(), "Extra usage is required for long context requests.") {
		t.Fatalf("err %v", err)
	}
	if len(r.App.Sched.Cooldowns()) != 0 || b.Count() != 0 {
		t.Fatalf("cooldowns %+v, other account tried %d times", r.App.Sched.Cooldowns(), b.Count())
	}
}

// Client-controlled strings are bounded: a 5 MiB session id is kept as a
// hash, a 300-byte model name is refused, an oversized header gets 431, and
// none of it reaches the upstream.
func TestClientStringsAreBounded(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", upstream(t, fake).URL, "k", 100))
	c := r.anthropicClient()
	huge := strings.Repeat("s", 5<<20)
	p := newParams("claude-sonnet-4-5")
	p.Metadata = anthropic.MetadataParam{UserID: anthropic.String(`{"session_id":"` + huge + `"}`)}
	if _, err := c.Messages.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	for _, b := range r.App.Sched.Sessions() {
		if len(b.Key) > 128 {
			t.Fatalf("a %d-byte session key is kept", len(b.Key))
		}
	}
	_, err := c.Messages.New(context.Background(), newParams(strings.Repeat("m", 300)))
	if err == nil || !strings.Contains(err.Error(), "model name") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("long model: %v", err)
	}
	_, err = c.Messages.New(context.Background(), newParams("m"), option.WithHeader("X-Stainless-Junk", strings.Repeat("j", 20<<10)))
	if err == nil || !strings.Contains(err.Error(), "431") {
		t.Fatalf("long header: %v", err)
	}
	var many []option.RequestOption
	for i := range 100 {
		many = append(many, option.WithHeader(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", 1000)))
	}
	_, err = c.Messages.New(context.Background(), newParams("m"), many...)
	if err == nil || !strings.Contains(err.Error(), "431") {
		t.Fatalf("header block over 64 KiB: %v", err)
	}
	if fake.Count() != 1 {
		t.Fatalf("%d requests reached the upstream, want 1", fake.Count())
	}
}

// Headers pass by allow-list both ways: the client's billing and junk
// headers never reach the upstream; the upstream's organization ids never
// reach the client; what clients need (versions, betas, session and rate
// limit headers) passes.
func TestHeadersPassByAllowList(t *testing.T) {
	claude := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 200, Body: fakeupstream.MessageJSON("m", "hi"), Header: map[string]string{
			"Content-Type": "application/json", "Anthropic-Organization-Id": "org-secret-id", "Request-Id": "req_1",
			"Anthropic-Ratelimit-Unified-5h-Utilization": "0.5", "Set-Cookie": "a=b",
		}}
	}}
	oa := &fakeupstream.OpenAI{}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("a", upstream(t, claude).URL, "k", 100)+
		openaiAccount("o", upstream(t, oa).URL+"/v1", "sk-o", 100))

	c := r.anthropicClient(option.WithHeader("X-Claude-Code-Session-Id", "sess-1"), option.WithHeader("X-Junk", "j"),
		option.WithHeader("Anthropic-Beta", "claude-code-20250219"), option.WithHeader("Cookie", "c=1"))
	var got *http.Response
	if _, err := c.Messages.New(context.Background(), newParams("m"), option.WithResponseInto(&got)); err != nil {
		t.Fatal(err)
	}
	up := claude.Requests()[0].Header
	if up.Get("X-Claude-Code-Session-Id") != "sess-1" || up.Get("Anthropic-Beta") != "claude-code-20250219" || up.Get("Anthropic-Version") == "" || up.Get("X-Stainless-Lang") == "" {
		t.Fatalf("needed headers missing upstream: %v", up)
	}
	if up.Get("X-Junk") != "" || up.Get("Cookie") != "" {
		t.Fatalf("junk reached the upstream: %v", up)
	}
	if got.Header.Get("Anthropic-Organization-Id") != "" || got.Header.Get("Set-Cookie") != "" {
		t.Fatalf("upstream identity reached the client: %v", got.Header)
	}
	if got.Header.Get("Request-Id") != "req_1" || got.Header.Get("Anthropic-Ratelimit-Unified-5h-Utilization") != "0.5" {
		t.Fatalf("client-facing headers dropped: %v", got.Header)
	}

	oc := r.openaiClient("/v1", oaoption.WithHeader("OpenAI-Organization", "org-client"), oaoption.WithHeader("OpenAI-Project", "proj-client"),
		oaoption.WithHeader("Session_id", "codex-thread"))
	if _, err := oc.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}); err != nil {
		t.Fatal(err)
	}
	oh := oa.Requests()[0].Header
	if oh.Get("Openai-Organization") != "" || oh.Get("Openai-Project") != "" {
		t.Fatalf("client chose the billed organization: %v", oh)
	}
	if oh.Get("Session_id") != "codex-thread" {
		t.Fatalf("Codex session header dropped: %v", oh)
	}
}

// An upstream error that quotes the account's own key (Google's
// CONSUMER_SUSPENDED does) reaches the client with the key removed, its
// wording otherwise intact.
func TestSecretsInUpstreamErrorsAreRedacted(t *testing.T) {
	const key = "AIzaSyA-account-key-0123456789abcdefghij"
	g := &fakeupstream.GeminiAPI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 403, Body: `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:` + key + `' has been suspended.","status":"PERMISSION_DENIED"}}`}
	}}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("g", upstream(t, g).URL, key, 100))
	code, _, body := rawGemini(t, "POST", r.URL+"/gemini/v1beta/models/gemini-2.5-pro:generateContent", `{"contents":[]}`, map[string]string{"x-goog-api-key": relayKey})
	if code != 403 || strings.Contains(body, key) || strings.Contains(body, "AIza") {
		t.Fatalf("%d %s", code, body)
	}
	if !strings.Contains(body, "Permission denied: Consumer 'api_key:[redacted]' has been suspended.") {
		t.Fatalf("wording changed: %s", body)
	}
}
