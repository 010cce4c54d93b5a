package relay_test

// Benchmarks of converted streams (the protocol matrix, PRODUCT.md §7) next
// to the passthrough stream, on the harness of bench_test.go: the same
// 4 KB request and 45 text deltas, served by an account of the client's API
// (passthrough) or of the other one (converted event by event).
//
//	go test ./internal/relay -run '^$' -bench 'RelayConverted' -benchmem
//	go test ./internal/relay -run '^$' -bench 'RelayConverted/m2r' -cpuprofile cpu.out

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// convDeltas is the text deltas of every stream here.
const convDeltas = 45

// convUpstream answers a Messages stream (2 + 45 deltas + 3 events) on
// /v1/messages, a Responses stream (4 + 45 + 4) on /v1/responses and a
// Gemini stream (45 + 1 chunks, fakeupstream.Fast's) on
// :streamGenerateContent, one event per Read.
type convUpstream struct {
	messages, responses, gemini [][]byte
	sink                        bodySink
}

func newConvUpstream() *convUpstream {
	u := &convUpstream{}
	text := strings.Repeat(" token", convDeltas)
	for _, e := range fakeupstream.MessageStream("claude-sonnet-5", text, convDeltas, 0) {
		if e.Name != "ping" {
			u.messages = append(u.messages, []byte("event: "+e.Name+"\ndata: "+e.Data+"\n\n"))
		}
	}
	for _, e := range fakeupstream.ResponseStream("gpt-5", text, convDeltas, 0) {
		u.responses = append(u.responses, []byte("event: "+e.Name+"\ndata: "+e.Data+"\n\n"))
	}
	for _, e := range fakeupstream.FastGeminiStream("gemini-2.5-pro", " token", convDeltas) {
		u.gemini = append(u.gemini, []byte("data: "+e.Data+"\n\n"))
	}
	return u
}

func (u *convUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	u.sink.drain(req, nil)
	events := u.messages
	switch {
	case strings.HasSuffix(req.URL.Path, "/responses"):
		events = u.responses
	case strings.HasSuffix(req.URL.Path, ":streamGenerateContent"):
		if req.URL.RawQuery != "alt=sse" || req.Header.Get("X-Goog-Api-Key") == "" {
			return nil, fmt.Errorf("gemini call %s without alt=sse or a key", req.URL)
		}
		events = u.gemini
	}
	h := http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "Request-Id": {"req_011CWbenchConvUpstream0001"}}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: req,
		ContentLength: -1, Body: &eventReader{events: events}}, nil
}

// newConvBenchRelay builds a relay with one claude-api, one
// openai-responses and one gemini-api account on up.
func newConvBenchRelay(b *testing.B, up http.RoundTripper) http.Handler {
	b.Helper()
	client := &http.Client{Transport: up}
	var accounts []*scheduler.Account
	var ups []*relay.Upstream
	for i, ac := range []config.AccountConfig{
		{Type: config.TypeClaudeAPI, ID: "claude", APIURL: "http://upstream.invalid"},
		{Type: config.TypeOpenAIResponses, ID: "openai", APIURL: "http://upstream.invalid/v1"},
		{Type: config.TypeGeminiAPI, ID: "gemini", APIURL: "http://upstream.invalid"},
	} {
		ac.Name, ac.Priority, ac.Enabled = ac.ID, 100, true
		a := &scheduler.Account{ID: ac.ID, Name: ac.ID, Type: ac.Type, Platform: ac.Platform(), Priority: 100, Enabled: true, Index: i}
		accounts = append(accounts, a)
		ups = append(ups, &relay.Upstream{Account: a, Client: client, Token: credential.Static("sk-bench-" + ac.ID), Config: ac})
	}
	return benchHandler(b, accounts, ups, nil)
}

// convResponsesBodies returns n ~4 KB streaming Responses requests for
// model, one session (prompt_cache_key) each.
func convResponsesBodies(n int, model string) [][]byte {
	out := make([][]byte, n)
	pad := strings.Repeat("func add(a, b int) int { return a + b } // adds two numbers. ", 62)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"model":%q,"stream":true,"input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"You are a careful assistant."}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"Please review this function:"},{"type":"input_text","text":%q}]}],"tool_choice":"auto","parallel_tool_calls":true,"store":false,"prompt_cache_key":%q}`,
			model, pad, benchSession(i))
	}
	return out
}

// BenchmarkRelayConverted is one 4 KB streaming request with 45 text
// deltas: passthrough (Messages on a Claude account), m2r (a Messages
// client asking for gpt-5, served by an openai-responses account), r2m
// (a Responses client asking for a Claude model) and m2g (a Messages client
// asking for gemini-2.5-pro, served by a gemini-api account). Besides allocs/op it
// reports allocs and bytes per upstream event.
func BenchmarkRelayConverted(b *testing.B) {
	codex := http.Header{
		"Accept":        {"text/event-stream"},
		"Content-Type":  {"application/json"},
		"Authorization": {"Bearer " + benchRelayKey},
		"User-Agent":    {"codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.169.0)"},
		"Originator":    {"codex_exec"},
	}
	up := newConvUpstream()
	cases := []struct {
		name, path string
		hdr        http.Header
		bodies     [][]byte
		events     int // upstream events
	}{
		{"passthrough", "/v1/messages?beta=true", benchHeader(true), benchBodies(256, true), len(up.messages)},
		{"m2r", "/v1/messages?beta=true", benchHeader(true), modelBodies(benchBodies(256, true), "gpt-5"), len(up.responses)},
		{"r2m", "/v1/responses", codex, convResponsesBodies(256, "claude-sonnet-4-5"), len(up.messages)},
		{"m2g", "/v1/messages?beta=true", benchHeader(true), modelBodies(benchBodies(256, true), "gemini-2.5-pro"), len(up.gemini)},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			h := newConvBenchRelay(b, up)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			n := serveStreams(b, h, bc.path, bc.hdr, bc.bodies, convDeltas)
			runtime.ReadMemStats(&after)
			ev := float64(n * bc.events)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/ev, "allocs/event")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/ev, "B/event")
		})
	}
}

// modelBodies returns bodies with their model replaced.
func modelBodies(bodies [][]byte, model string) [][]byte {
	out := make([][]byte, len(bodies))
	for i, body := range bodies {
		out[i] = bytes.Replace(body, []byte(`"model":"claude-sonnet-5"`), []byte(`"model":"`+model+`"`), 1)
	}
	return out
}

// serveStreams sends b.N streaming requests to path through h, checks each
// answer ended whole (message_stop or response.completed after at least
// wantFlushes flushes) and returns how many it sent.
func serveStreams(b *testing.B, h http.Handler, path string, hdr http.Header, bodies [][]byte, wantFlushes int) int {
	w := &tailWriter{benchWriter: benchWriter{h: http.Header{}}}
	return benchServe(b, h, path, hdr, bodies, w, func() {
		end := w.tail.Bytes()
		whole := bytes.HasSuffix(end, []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")) ||
			bytes.Contains(end, []byte("event: response.completed\n"))
		if w.status != http.StatusOK || w.flushes < wantFlushes || !whole {
			b.Fatalf("status %d, %d bytes, %d flushes, ends %q", w.status, w.n, w.flushes, end)
		}
	})
}

// tailWriter is a benchWriter that keeps the last write (the stream's end).
type tailWriter struct {
	benchWriter
	tail bytes.Buffer
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.tail.Reset()
	w.tail.Write(p)
	return w.benchWriter.Write(p)
}

func (w *tailWriter) reset() {
	w.benchWriter.reset()
	w.tail.Reset()
}
