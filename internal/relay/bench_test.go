package relay_test

// Benchmarks of the relay's request path in process: the handler from intake
// to the last byte written, with the upstream replaced by an in-memory
// transport so that only the relay's own work (and a small, shared harness
// cost) is measured. BenchmarkHarness is that harness alone and
// BenchmarkReverseProxy the bare httputil.ReverseProxy on the same harness,
// the yardstick for ns/op and allocs/op.
//
//	go test ./internal/relay -run '^$' -bench . -benchmem
//	go test ./internal/relay -run '^$' -bench 'Relay/json4k/accounts=1$' -cpuprofile cpu.out

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/usage"
)

const benchRelayKey = "bench-relay-key-0123456789"

// memUpstream answers every request from memory: a Messages JSON body, or a
// 50-event stream returned one event per Read (as a flushed upstream would).
type memUpstream struct {
	json   []byte
	events [][]byte
	header http.Header
	sink   bodySink
}

// bodySink reads request bodies into one reused buffer: the benchmarks
// measure the relay, not the fake upstreams.
type bodySink struct {
	mu      sync.Mutex
	scratch bytes.Buffer
}

// drain reads and closes req's body, if any, and returns what check says
// of it (false without a body or a check).
func (s *bodySink) drain(req *http.Request, check func(body []byte) bool) bool {
	if req.Body == nil {
		return false
	}
	s.mu.Lock()
	s.scratch.Reset()
	_, _ = s.scratch.ReadFrom(req.Body)
	ok := check != nil && check(s.scratch.Bytes())
	s.mu.Unlock()
	req.Body.Close()
	return ok
}

func newMemUpstream() *memUpstream {
	m := &memUpstream{
		json: []byte(fakeupstream.MessageJSON("claude-sonnet-5", "Sure. Here is the change you asked for: the function now returns early when the list is empty.")),
		header: http.Header{
			"Request-Id":                         {"req_011CWbenchMemUpstream00001"},
			"Anthropic-Organization-Id":          {"00000000-0000-4000-8000-000000000000"},
			"Anthropic-Ratelimit-Requests-Limit": {"4000"},
			"Via":                                {"1.1 google"},
		},
	}
	// 3 preamble + 44 deltas + 3 closing = 50 events.
	for _, e := range fakeupstream.MessageStream("claude-sonnet-5", strings.Repeat("token ", 44), 44, 0) {
		m.events = append(m.events, []byte("event: "+e.Name+"\ndata: "+e.Data+"\n\n"))
	}
	return m
}

func (m *memUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	// The relay forwards only the headers real clients send, so the body
	// says whether the client asked for a stream.
	stream := m.sink.drain(req, func(body []byte) bool {
		// benchBodies end with the stream flag: no scan of the whole body.
		return bytes.HasSuffix(bytes.TrimSpace(body), []byte(`"stream":true}`))
	})
	// A real transport parses a fresh header map for every response.
	h := m.header.Clone()
	resp := &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: req}
	if stream {
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		resp.ContentLength = -1
		resp.Body = &eventReader{events: m.events}
		return resp, nil
	}
	h.Set("Content-Type", "application/json")
	resp.ContentLength = int64(len(m.json))
	resp.Body = io.NopCloser(bytes.NewReader(m.json))
	return resp, nil
}

// eventReader returns one event per Read.
type eventReader struct {
	events [][]byte
	i, off int
}

func (r *eventReader) Read(p []byte) (int, error) {
	if r.i >= len(r.events) {
		return 0, io.EOF
	}
	n := copy(p, r.events[r.i][r.off:])
	r.off += n
	if r.off == len(r.events[r.i]) {
		r.i, r.off = r.i+1, 0
	}
	return n, nil
}

func (r *eventReader) Close() error { return nil }

// benchWriter is a ResponseWriter that keeps nothing but counts.
type benchWriter struct {
	h       http.Header
	status  int
	n       int
	flushes int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}
func (w *benchWriter) Flush() { w.flushes++ }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n, w.flushes = 0, 0, 0
}

type discardRecorder struct{ n int }

func (d *discardRecorder) Record(usage.Record) { d.n++ }

// benchBodies returns n ~4 KB Messages requests with Claude Code's metadata,
// one session each.
func benchBodies(n int, stream bool) [][]byte {
	out := make([][]byte, n)
	pad := strings.Repeat("func add(a, b int) int { return a + b } // adds two numbers. ", 62)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"model":"claude-sonnet-5","messages":[{"role":"user","content":[{"type":"text","text":"Please review this function:"},{"type":"text","text":%q,"cache_control":{"type":"ephemeral"}}]}],"system":[{"type":"text","text":"You are a careful assistant."}],"metadata":{"user_id":"{\"device_id\":\"%064x\",\"account_uuid\":\"\",\"session_id\":\"%s\"}"},"max_tokens":1024,"stream":%v}`,
			pad, i+1, benchSession(i), stream)
	}
	return out
}

// benchBigBodies returns n ~100 KB requests shaped like Claude Code's: the
// bulk (messages, system, tools) comes before metadata and stream.
func benchBigBodies(n int) [][]byte {
	out := make([][]byte, n)
	result := strings.Repeat("ok   github.com/example/project/internal/pkg   0.012s | ", 300)
	tool := `{"name":"Tool","description":"` + strings.Repeat("Runs an operation in the workspace and returns its output. ", 20) + `","input_schema":{"type":"object","properties":{"command":{"type":"string"}}}}`
	for i := range out {
		var b []byte
		b = append(b, `{"model":"claude-opus-4-8","messages":[{"role":"user","content":"Find why the tests fail and fix them."}`...)
		for turn := range 6 {
			b = fmt.Appendf(b, `,{"role":"assistant","content":[{"type":"tool_use","id":"toolu_%d","name":"Tool","input":{"command":"go test ./..."}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_%d","content":%q}]}`, turn, turn, result)
		}
		b = append(b, `],"system":[{"type":"text","text":"You are a Claude agent.","cache_control":{"type":"ephemeral"}}],"tools":[`...)
		for t := range 24 {
			if t > 0 {
				b = append(b, ',')
			}
			b = append(b, tool...)
		}
		b = fmt.Appendf(b, `],"metadata":{"user_id":"{\"device_id\":\"%064x\",\"account_uuid\":\"\",\"session_id\":\"%s\"}"},"max_tokens":64000,"thinking":{"type":"adaptive"},"stream":false}`, i+1, benchSession(i))
		out[i] = b
	}
	return out
}

func benchSession(i int) string { return fmt.Sprintf("5e55%04x-0000-4000-8000-%012x", i&0xffff, i) }

// benchHeader is what Claude Code sends (reference/clients.md).
func benchHeader(stream bool) http.Header {
	h := http.Header{
		"Accept":                      {"application/json"},
		"Content-Type":                {"application/json"},
		"User-Agent":                  {"claude-cli/2.1.197 (external, sdk-cli)"},
		"X-Stainless-Arch":            {"x64"},
		"X-Stainless-Lang":            {"js"},
		"X-Stainless-Os":              {"Linux"},
		"X-Stainless-Package-Version": {"0.94.0"},
		"X-Stainless-Retry-Count":     {"0"},
		"X-Stainless-Runtime":         {"node"},
		"X-Stainless-Runtime-Version": {"v26.3.0"},
		"X-Stainless-Timeout":         {"600"},
		"Anthropic-Beta":              {"claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,effort-2025-11-24"},
		"Anthropic-Version":           {"2023-06-01"},
		"X-Api-Key":                   {benchRelayKey},
		"X-App":                       {"cli"},
	}
	if stream {
		h.Set("Accept", "text/event-stream")
	}
	return h
}

// newBenchRelay builds a relay over n claude-api accounts on mem, with
// sessions sticky bindings already in place (spread over the accounts).
func newBenchRelay(b *testing.B, n, sessions int, mem http.RoundTripper) http.Handler {
	b.Helper()
	var accounts []*scheduler.Account
	var ups []*relay.Upstream
	client := &http.Client{Transport: mem}
	for i := range n {
		id := fmt.Sprintf("acct-%02d", i)
		a := &scheduler.Account{ID: id, Name: id, Type: config.TypeClaudeAPI, Platform: "claude", Priority: 100, Enabled: true, Index: i}
		accounts = append(accounts, a)
		ups = append(ups, &relay.Upstream{
			Account: a, Client: client, Token: credential.Static("sk-ant-api03-bench"),
			Config: config.AccountConfig{Type: config.TypeClaudeAPI, ID: id, Name: id, Priority: 100, Enabled: true, APIURL: "http://upstream.invalid"},
		})
	}
	exp := time.Now().Add(time.Hour)
	bindings := make([]state.Binding, sessions)
	for i := range bindings {
		bindings[i] = state.Binding{Key: benchSession(i), AccountID: accounts[i%n].ID, ExpiresAt: exp}
	}
	return benchHandler(b, accounts, ups, bindings)
}

// benchHandler builds the relay's handler over accounts and ups, taking
// benchRelayKey, with the sticky bindings already in place.
func benchHandler(b *testing.B, accounts []*scheduler.Account, ups []*relay.Upstream, bindings []state.Binding) http.Handler {
	b.Helper()
	sched := scheduler.New(accounts, scheduler.Options{StickyTTL: time.Hour, RenewalThreshold: 5 * time.Minute, ErrorCooldown: 30 * time.Second}, nil, nil)
	b.Cleanup(sched.Close)
	if len(bindings) > 0 {
		sched.Restore(bindings, nil, nil)
	}
	pol, err := policy.New(policy.Options{APIKeys: []string{benchRelayKey}})
	if err != nil {
		b.Fatal(err)
	}
	r := relay.New(relay.Options{
		Policy: pol, MaxBodyBytes: 32 << 20, FirstByteTimeout: time.Minute,
		ResponseTimeout: 10 * time.Minute, IdleTimeout: 5 * time.Minute, MaxAttempts: 3,
	}, sched, ups, &discardRecorder{}, nil)
	return r.Handler()
}

// serveLoop sends b.N requests through h and checks every answer.
func serveLoop(b *testing.B, h http.Handler, bodies [][]byte, stream bool, wantFlushes int) {
	w := &benchWriter{h: http.Header{}}
	benchServe(b, h, "/v1/messages?beta=true", benchHeader(stream), bodies, w, func() {
		if w.status != http.StatusOK || w.n == 0 || w.flushes < wantFlushes {
			b.Fatalf("status %d, %d bytes, %d flushes", w.status, w.n, w.flushes)
		}
	})
}

// resetWriter is a ResponseWriter a benchmark reuses for every request.
type resetWriter interface {
	http.ResponseWriter
	reset()
}

// benchServe sends b.N requests to path through h, the bodies in turn,
// each answered into w (reset first), calls check after each and returns
// how many it sent.
func benchServe(b *testing.B, h http.Handler, path string, hdr http.Header, bodies [][]byte, w resetWriter, check func()) int {
	u, _ := url.Parse("http://127.0.0.1:3000" + path)
	ctx := context.Background()
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body := bodies[i%len(bodies)]
		i++
		req := (&http.Request{Method: http.MethodPost, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: hdr, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Host: u.Host,
			RemoteAddr: "127.0.0.1:40000", RequestURI: u.RequestURI()}).WithContext(ctx)
		w.reset()
		h.ServeHTTP(w, req)
		check()
	}
	return i
}

type benchCase struct {
	name     string
	stream   bool
	big      bool
	accounts int
	sessions int
}

var benchCases = []benchCase{
	{"json4k/accounts=1", false, false, 1, 0},
	{"json4k/accounts=20/sessions=10k", false, false, 20, 10000},
	{"json100k/accounts=1", false, true, 1, 0},
	{"stream50/accounts=1", true, false, 1, 0},
	{"stream50/accounts=20/sessions=10k", true, false, 20, 10000},
}

func (bc benchCase) bodies() [][]byte {
	if bc.big {
		return benchBigBodies(16)
	}
	return benchBodies(256, bc.stream)
}

func (bc benchCase) flushes() int {
	if bc.stream {
		return 50
	}
	return 0
}

// BenchmarkRelay is the relay's handler: auth, body intake, session key,
// account pick, upstream request, response (50 events flushed one by one for
// streams), usage record.
func BenchmarkRelay(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			h := newBenchRelay(b, bc.accounts, bc.sessions, newMemUpstream())
			serveLoop(b, h, bc.bodies(), bc.stream, bc.flushes())
		})
	}
}

// BenchmarkReverseProxy is the bare standard-library proxy on the same
// harness and upstream: the floor ccrelay is compared with.
func BenchmarkReverseProxy(b *testing.B) {
	target, _ := url.Parse("http://upstream.invalid")
	for _, bc := range benchCases {
		if bc.accounts != 1 {
			continue
		}
		b.Run(bc.name, func(b *testing.B) {
			rp := &httputil.ReverseProxy{
				Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
				FlushInterval: -1,
				Transport:     newMemUpstream(),
			}
			serveLoop(b, rp, bc.bodies(), bc.stream, bc.flushes())
		})
	}
}

// BenchmarkHarness is the cost of the loop itself (request, writer, upstream
// bytes) with a handler that only copies the upstream answer.
func BenchmarkHarness(b *testing.B) {
	for _, bc := range benchCases {
		if bc.accounts != 1 {
			continue
		}
		b.Run(bc.name, func(b *testing.B) {
			mem := newMemUpstream()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				resp, _ := mem.RoundTrip(r)
				defer resp.Body.Close()
				w.WriteHeader(resp.StatusCode)
				buf := make([]byte, 4<<10)
				for {
					n, err := resp.Body.Read(buf)
					if n > 0 {
						_, _ = w.Write(buf[:n])
						w.(http.Flusher).Flush()
					}
					if err != nil {
						return
					}
				}
			})
			serveLoop(b, h, bc.bodies(), bc.stream, bc.flushes())
		})
	}
}
