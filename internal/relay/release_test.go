package relay

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// blockingStream answers with a stream that sends its first events and
// then stays silent until release is closed, like a long answer being
// thought about. It keeps a weak pointer to the request body it was sent.
type blockingStream struct {
	body    weak.Pointer[byte]
	release chan struct{}
}

func (b *blockingStream) RoundTrip(req *http.Request) (*http.Response, error) {
	rb, ok := req.Body.(*sentBody)
	if !ok || len(rb.b) == 0 {
		panic("upstream request body is not a sentBody")
	}
	b.body = weak.Make(&rb.b[0])
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"+
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		<-b.release
		_, _ = io.WriteString(pw, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		pw.Close()
	}()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr, Request: req}, nil
}

// A committed stream no longer holds its request body: Claude Code sends
// ~100 KB per request and a stream can stay open for minutes.
func TestCommittedStreamReleasesRequestBody(t *testing.T) {
	up := &blockingStream{release: make(chan struct{})}
	acct := &scheduler.Account{ID: "a", Type: config.TypeClaudeAPI, Platform: "claude", Priority: 100, Enabled: true}
	ups := []*Upstream{{Account: acct, Config: config.AccountConfig{ID: "a", Type: config.TypeClaudeAPI, APIURL: "http://upstream.invalid"}, Client: &http.Client{Transport: up}, Token: staticToken("k")}}
	sched := scheduler.New([]*scheduler.Account{acct}, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute}, nil, nil)
	t.Cleanup(sched.Close)
	rl := New(Options{Policy: testPolicy(t), FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: time.Minute}, sched, ups, &memRecorder{}, nil)
	srv := httptest.NewServer(rl.Handler())
	t.Cleanup(srv.Close)

	body := `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"` + strings.Repeat("x", 100<<10) + `"}]}`
	resp, err := http.Post(srv.URL+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before content_block_start: %v", err)
		}
		if strings.HasPrefix(line, "event: content_block_start") {
			break
		}
	}
	// The stream is committed and open; the body must be collectable.
	freed := false
	for range 20 {
		runtime.GC()
		if up.body.Value() == nil {
			freed = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(up.release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "message_stop") {
		t.Errorf("stream did not finish: %q", rest)
	}
	if !freed {
		t.Fatal("the request body is still reachable while the committed stream is open")
	}
}

// Once the call lets go of its body, an upstream request still reading it
// gets an error, never the bytes of whatever reuses the pooled buffer.
func TestReleasedBodyIsRevoked(t *testing.T) {
	p := getBodyBuf(10_000)
	copy(*p, strings.Repeat("a", 10_000))
	c := &call{ad: claudeAdapter{}, body: *p, bodyBuf: p}
	req, err := newUpstreamRequest(t.Context(), c, http.MethodPost, "http://upstream.invalid/v1/messages", c.body)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := req.Body.Read(buf); n != 100 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	replay, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	c.releaseBody()
	c.releaseBody() // twice is harmless
	if c.body != nil || c.bodyBuf != nil {
		t.Fatal("call still holds its body")
	}
	// Whoever takes the buffer next writes over it.
	q := getBodyBuf(10_000)
	copy(*q, strings.Repeat("b", 10_000))
	for _, r := range []io.Reader{req.Body, replay} {
		if n, err := r.Read(buf); n != 0 || err != errBodyReleased {
			t.Fatalf("read after release: %d bytes (%q), %v", n, buf[:n], err)
		}
	}
	if _, err := req.GetBody(); err != errBodyReleased {
		t.Fatalf("GetBody after release: %v", err)
	}
	if _, err := newUpstreamRequest(t.Context(), c, http.MethodPost, "http://upstream.invalid/v1/messages", []byte("{}")); err != errBodyReleased {
		t.Fatalf("new request after release: %v", err)
	}
}

func TestBodyBufSizes(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{0, 4 << 10}, {1, 4 << 10}, {4 << 10, 4 << 10}, {4<<10 + 1, 8 << 10}, {100 << 10, 128 << 10},
		{1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1},
	} {
		p := getBodyBuf(tc.n)
		if len(*p) != tc.n || cap(*p) != tc.cap {
			t.Errorf("getBodyBuf(%d): len %d cap %d, want cap %d", tc.n, len(*p), cap(*p), tc.cap)
		}
		putBodyBuf(p)
	}
}

// A body the transport sent in full reads as ended, not as an error, when
// the transport checks for more after the call let go of it (an error there
// would make the transport drop the connection under a running stream).
func TestSentBodyStaysAtEOFAfterRelease(t *testing.T) {
	p := getBodyBuf(100)
	c := &call{ad: claudeAdapter{}, body: *p, bodyBuf: p}
	req, err := newUpstreamRequest(t.Context(), c, http.MethodPost, "http://upstream.invalid/v1/messages", c.body)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(io.LimitReader(req.Body, 100)); err != nil || len(b) != 100 {
		t.Fatalf("read %d, %v", len(b), err)
	}
	c.releaseBody()
	buf := make([]byte, 10)
	if n, err := req.Body.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after a full send and release: %d, %v; want EOF", n, err)
	}
}
