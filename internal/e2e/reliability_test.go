package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// SIGTERM-style shutdown during 100 open streams: every stream finishes
// within the drain timeout and every request's usage is written.
func TestShutdownDrains100Streams(t *testing.T) {
	fake := &fakeupstream.Anthropic{StreamEvents: 8, EventGap: 40 * time.Millisecond}
	up := upstream(t, fake)
	r := startRelay(t, claudeAPIAccount("a", up.URL, "k", 100))
	const n = 100
	var wg sync.WaitGroup
	var complete atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "event: message_stop") && !strings.Contains(string(b), "event: error") {
				complete.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.App.Server.InFlight() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := r.App.Server.InFlight(); got < n {
		t.Fatalf("only %d streams open", got)
	}
	r.Close() // what SIGTERM does: drain, flush usage
	wg.Wait()
	if complete.Load() != n {
		t.Fatalf("%d of %d streams completed", complete.Load(), n)
	}
	r2 := startRelayAt(t, r.cfg, r.DBPath)
	if rows := r2.usageRows(n); len(rows) != n {
		t.Fatalf("%d usage rows", len(rows))
	}
}

// Huge headers are refused by the server before any handler runs.
func TestHugeHeaders(t *testing.T) {
	r := startRelay(t, "")
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(`{}`))
	req.Header.Set("X-Big", strings.Repeat("a", 2<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // the server may close the connection instead of answering
	}
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// A 1 GiB body is refused early: a declared length at once, a chunked one
// after at most the limit, so the relay never holds it.
func TestGiantBodyRejectedEarly(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	r := startRelay(t, claudeAPIAccount("a", up.URL, "k", 100))
	host := strings.TrimPrefix(r.URL, "http://")

	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 1<<30)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(b), "request_too_large") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}

	var sent atomic.Int64
	body := &countingZeros{limit: 1 << 30, sent: &sent}
	req, _ := http.NewRequest("POST", r.URL+"/v1/messages", body) // unknown length: chunked
	req.Header.Set("Content-Type", "application/json")            // protected mode takes JSON bodies only
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("chunked: %d", resp.StatusCode)
		}
	}
	if s := sent.Load(); s > 256<<20 {
		t.Fatalf("client sent %d MiB before being refused", s>>20)
	}
	if fake.Count() != 0 {
		t.Fatal("giant body reached the upstream")
	}
}

type countingZeros struct {
	limit int64
	sent  *atomic.Int64
}

func (z *countingZeros) Read(p []byte) (int, error) {
	if z.sent.Load() >= z.limit {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = ' '
	}
	z.sent.Add(int64(len(p)))
	return len(p), nil
}

// A client that disconnects while the relay fails over stops the failover.
func TestClientGoneDuringFailover(t *testing.T) {
	var second atomic.Int32
	slow := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Stall: 300 * time.Millisecond, Status: 529, Body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}
	}}
	next := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply { second.Add(1); return nil }}
	us, un := upstream(t, slow), upstream(t, next)
	r := startRelay(t, claudeAPIAccount("slow", us.URL, "k", 200)+claudeAPIAccount("next", un.URL, "k", 100))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Content-Type", "application/json") // protected mode takes JSON bodies only
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("expected the client to give up")
	}
	rows := r.usageRows(1)
	time.Sleep(500 * time.Millisecond)
	if rows[0].Status != 499 || second.Load() != 0 {
		t.Fatalf("status %d, second account called %d times", rows[0].Status, second.Load())
	}
	if len(r.App.Sched.Cooldowns()) != 0 {
		t.Fatal("a client that went away cooled the account")
	}
}

// Upstream faults that must fail over to the next account: a TLS failure
// (untrusted certificate), a 200 whose body is not JSON, and a connection
// reset in the middle of a JSON body.
func TestUpstreamFaultsFailOver(t *testing.T) {
	tlsUp := httptest.NewTLSServer(&fakeupstream.Anthropic{})
	defer tlsUp.Close()
	malformed := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Body: "<html>502 from some proxy</html>"}
	}}
	reset := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		io.WriteString(w, `{"id":"msg_1","content":[`)
		w.(http.Flusher).Flush()
		if hj, ok := w.(http.Hijacker); ok {
			c, _, _ := hj.Hijack()
			c.Close()
		}
	})
	for _, tc := range []struct {
		name, url, kind string
	}{
		{"tls", tlsUp.URL, "network"},
		{"malformed 200", upstream(t, malformed).URL, "server_error"},
		{"reset mid-body", upstream(t, reset).URL, "network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := &fakeupstream.Anthropic{Text: "from good"}
			r := startRelay(t, claudeAPIAccount("bad", tc.url, "k", 200)+claudeAPIAccount("good", upstream(t, good).URL, "k", 100))
			text, err := ask(t, r)
			if err != nil || text != "from good" {
				t.Fatalf("%q %v", text, err)
			}
			if cd := cooldownOf(t, r, "bad"); cd.Kind != tc.kind {
				t.Fatalf("cooldown %+v", cd)
			}
		})
	}
}

// A stream that stalls after content: the idle timeout fires, the client
// gets an error event, the account cools down.
func TestStreamStallsAfterContent(t *testing.T) {
	stall := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		ev := fakeupstream.MessageStream("m", "partial", 1, 0)
		return &fakeupstream.Reply{Events: ev[:4], Hang: true}
	}}
	cfg := claudeAPIAccount("a", upstream(t, stall).URL, "k", 100) +
		serverWith(t, "idle_timeout_seconds = 1")
	r := startRelay(t, cfg)
	start := time.Now()
	b := []byte(postStream(t, r))
	if !strings.Contains(string(b), "content_block_delta") || !strings.Contains(string(b), "event: error") || !strings.Contains(string(b), "stalled") {
		t.Fatalf("%s", b)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("idle timeout did not fire")
	}
	if cooldownOf(t, r, "a").Kind != "network" {
		t.Fatal("stalled account not cooled")
	}
}

// An account whose proxy is down or refuses its credentials fails over to
// the next account, which serves; the account cools down as a network
// failure. A working proxy carries the request.
func TestProxyFaultsFailOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	socks := &fakeupstream.Proxy{User: "u", Pass: "right"}
	if err := socks.StartSOCKS5(); err != nil {
		t.Fatal(err)
	}
	defer socks.Close()
	hp := &fakeupstream.Proxy{User: "u", Pass: "right"}
	if err := hp.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	defer hp.Close()
	behind := upstream(t, &fakeupstream.Anthropic{Text: "through the proxy"}).URL
	proxied := func(id, typ string, port int, pass string, priority int) string {
		return claudeAPIAccount(id, behind, "k", priority) +
			fmt.Sprintf("[accounts.proxy]\ntype = %q\nhost = \"127.0.0.1\"\nport = %d\nusername = \"u\"\npassword = %q\n", typ, port, pass)
	}
	for _, tc := range []struct {
		name, typ string
		port      int
		pass      string
	}{
		{"socks5 down", "socks5", deadPort, "right"},
		{"http down", "http", deadPort, "right"},
		{"socks5 wrong password", "socks5", socks.Port(), "wrong"},
		{"http wrong password", "http", hp.Port(), "wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := upstream(t, &fakeupstream.Anthropic{Text: "from good"}).URL
			r := startRelay(t, proxied("bad", tc.typ, tc.port, tc.pass, 200)+claudeAPIAccount("good", good, "k", 100))
			text, err := ask(t, r)
			if err != nil || text != "from good" {
				t.Fatalf("%q %v", text, err)
			}
			if cd := cooldownOf(t, r, "bad"); cd.Kind != "network" {
				t.Fatalf("cooldown %+v", cd)
			}
		})
	}
	for _, typ := range []string{"socks5", "http"} {
		t.Run(typ+" works", func(t *testing.T) {
			port := socks.Port()
			if typ == "http" {
				port = hp.Port()
			}
			r := startRelay(t, proxied("via", typ, port, "right", 100))
			if text, err := ask(t, r); err != nil || text != "through the proxy" {
				t.Fatalf("%q %v", text, err)
			}
		})
	}
	if socks.Conns.Load() == 0 || hp.Conns.Load() == 0 || socks.AuthFailures.Load() == 0 || hp.AuthFailures.Load() == 0 {
		t.Fatalf("proxies saw socks5 %d conns / %d auth failures, http %d / %d", socks.Conns.Load(), socks.AuthFailures.Load(), hp.Conns.Load(), hp.AuthFailures.Load())
	}
}

// An upstream that answers a stream with message_start and then only pings,
// forever: within the idle timeout the request moves to the next account,
// and the client sees one clean stream.
func TestPingsForeverFailOver(t *testing.T) {
	pinger := drip("text/event-stream",
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_p\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n",
		"event: ping\ndata: {\"type\": \"ping\"}\n\n", 200*time.Millisecond)
	fast := &fakeupstream.Anthropic{}
	cfg := claudeAPIAccount("pinger", upstream(t, pinger).URL, "k", 200) + claudeAPIAccount("fast", upstream(t, fast).URL, "k", 100) +
		serverWith(t, "first_byte_timeout_seconds = 1; idle_timeout_seconds = 1")
	r := startRelay(t, cfg)
	streamFailsOverWithin(t, r, 5*time.Second)
	if cd := cooldownOf(t, r, "pinger"); cd.Kind != "network" {
		t.Fatalf("cooldown %+v", cd)
	}
}

// A non-stream answer that trickles forever (a byte now and then, never
// the end): the response timeout ends it and the next account serves.
func TestTricklingAnswerFailsOver(t *testing.T) {
	trickle := drip("application/json", `{"id":"msg_t","content":[{"type":"text","text":"`, "x", 100*time.Millisecond)
	good := &fakeupstream.Anthropic{Text: "from good"}
	cfg := claudeAPIAccount("trickle", upstream(t, trickle).URL, "k", 200) + claudeAPIAccount("good", upstream(t, good).URL, "k", 100) +
		serverWith(t, "response_timeout_seconds = 1")
	r := startRelay(t, cfg)
	start := time.Now()
	text, err := ask(t, r)
	if err != nil || text != "from good" {
		t.Fatalf("%q %v", text, err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("failover took %v", el)
	}
	if cd := cooldownOf(t, r, "trickle"); cd.Kind != "network" {
		t.Fatalf("cooldown %+v", cd)
	}
}

// drip answers 200 with first, then writes more every interval, flushed,
// until the client goes away: an upstream that answers slowly forever.
func drip(contentType, first, more string, every time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(200)
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := io.WriteString(w, more); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}
}

// streamFailsOverWithin streams one answer through r with the Anthropic SDK
// and checks that it is the fake's whole answer, within d.
func streamFailsOverWithin(t *testing.T, r *relayUT, d time.Duration) {
	t.Helper()
	start := time.Now()
	c := r.anthropicClient()
	acc := streamMessage(t, c, newParams("m"))
	if len(acc.Content) == 0 || acc.Content[0].Text != "Hello from fake upstream" {
		t.Fatalf("got %+v", acc)
	}
	if el := time.Since(start); el > d {
		t.Fatalf("failover took %v", el)
	}
}
