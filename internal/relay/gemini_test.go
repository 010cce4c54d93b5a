package relay

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/sse"
)

func TestUpstreamGeminiQuery(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		sse, other bool
		want       string
	}{
		{"empty", "", false, true, ""},
		{"sse only", "", true, true, "?alt=sse"},
		{"key dropped", "key=relay-secret", false, true, ""},
		{"key dropped sse", "alt=sse&key=relay-secret", true, true, "?alt=sse"},
		{"others pass", "key=s&pageSize=5&pageToken=abc", false, true, "?pageSize=5&pageToken=abc"},
		{"others with sse", "fields=candidates&alt=sse&key=s", true, true, "?alt=sse&fields=candidates"},
		{"client alt replaced", "alt=json", false, true, ""},
		{"code assist drops all", "fields=x&key=s", true, false, "?alt=sse"},
		{"repeated key", "key=a&key=b&x=1", false, true, "?x=1"},
		{"unparsable dropped", "key=%zz", false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstreamGeminiQuery(tt.raw, geminiQuery{sse: tt.sse, passOthers: tt.other})
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "key=") {
				t.Fatal("key forwarded")
			}
		})
	}
}

func TestQueryParam(t *testing.T) {
	tests := []struct{ raw, name, want string }{
		{"alt=sse", "alt", "sse"},
		{"key=x&alt=sse", "alt", "sse"},
		{"alt=%73se", "alt", "sse"},
		{"alternative=sse", "alt", ""},
		{"", "alt", ""},
	}
	for _, tt := range tests {
		if got := queryParam(tt.raw, tt.name); got != tt.want {
			t.Errorf("queryParam(%q, %q) = %q, want %q", tt.raw, tt.name, got, tt.want)
		}
	}
}

func TestUnwrapCodeAssistBody(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"object", `{"response":{"candidates":[]},"traceId":"t"}`, `{"candidates":[]}`},
		{"count tokens", `{"totalTokens":3}`, `{"totalTokens":3}`},
		{"array", "[{\"response\":{\"a\":1},\"traceId\":\"t\"},\r\n{\"response\":{\"b\":2}}]", `[{"a":1},{"b":2}]`},
		{"array with error", `[{"error":{"code":500}}]`, `[{"error":{"code":500}}]`},
		{"empty array", `[]`, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(unwrapCodeAssistBody([]byte(tt.in))); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// feed runs an upstream SSE body through a geminiStream the way pipeStream
// does (observe, then transform) and returns the client bytes and classes.
func feed(s *geminiStream, body string) (string, []provider.EventClass) {
	var p sse.Parser
	var out []byte
	var classes []provider.EventClass
	p.Feed([]byte(body), func(ev *sse.Event) bool {
		classes = append(classes, s.observe(ev))
		out = s.transform(out, ev)
		return true
	})
	return string(out), classes
}

func TestGeminiStreamCodeAssist(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &geminiStream{codeAssist: true, now: func() time.Time { return now }}
	body := "data: {\"response\":{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"He said \\\"error\\\"\"}]}}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":1,\"cachedContentTokenCount\":2}},\"traceId\":\"t1\"}\r\n\r\n" +
		// One event spread over several data lines, as SSE allows.
		"data: {\"response\": {\n" +
		"data:   \"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}]},\"finishReason\":\"STOP\"}],\n" +
		"data:   \"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":4,\"cachedContentTokenCount\":2,\"thoughtsTokenCount\":3}},\n" +
		"data: \"traceId\":\"t1\"}\n\n"
	out, classes := feed(s, body)
	if len(classes) != 2 || classes[0] != provider.Content || classes[1] != provider.Content {
		t.Fatalf("classes %v", classes)
	}
	events := strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n")
	if len(events) != 2 {
		t.Fatalf("events %q", out)
	}
	for i, ev := range events {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") || !json.Valid([]byte(data)) {
			t.Fatalf("event %d is not one data line of JSON: %q", i, ev)
		}
		if gjson.Get(data, "response").Exists() || gjson.Get(data, "traceId").Exists() || !gjson.Get(data, "candidates").Exists() {
			t.Fatalf("event %d not unwrapped: %s", i, data)
		}
	}
	if !strings.HasPrefix(events[0], `data: {"candidates":[{"content":{"parts":[{"text":"He said \"error\""}]}}]`) {
		t.Fatalf("first event bytes changed: %s", events[0])
	}
	want := provider.Usage{InputTokens: 8, OutputTokens: 7, CacheReadTokens: 2}
	if s.usage() != want || s.passthrough() || s.needsTerminal() {
		t.Fatalf("usage %+v passthrough %v terminal %v", s.usage(), s.passthrough(), s.needsTerminal())
	}
}

func TestGeminiStreamPublicPassthrough(t *testing.T) {
	s := &geminiStream{now: time.Now}
	body := "data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":2}}\r\n\r\n"
	out, classes := feed(s, body)
	if out != body || len(classes) != 1 || classes[0] != provider.Content || !s.passthrough() {
		t.Fatalf("out %q classes %v", out, classes)
	}
	if s.usage() != (provider.Usage{InputTokens: 5, OutputTokens: 2}) {
		t.Fatalf("usage %+v", s.usage())
	}
}

func TestGeminiStreamErrorEvent(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		codeAssist bool
		data       string
		kind       provider.Kind
		until      time.Time
	}{
		{"bare 429", false, `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}`, provider.RateLimited, now.Add(12 * time.Second)},
		{"wrapped 503", true, `{"response":{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}}`, provider.Overloaded, time.Time{}},
		{"status only", true, `{"error":{"message":"bad","status":"INVALID_ARGUMENT"}}`, provider.ClientError, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &geminiStream{codeAssist: tt.codeAssist, now: func() time.Time { return now }}
			ev := &sse.Event{Data: []byte(tt.data), Raw: []byte("data: " + tt.data + "\n\n")}
			if cls := s.observe(ev); cls != provider.ErrorEvent {
				t.Fatalf("class %v", cls)
			}
			v := s.errVerdict(ev)
			if v.Kind != tt.kind || !v.Until.Equal(tt.until) {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
	// A response whose text merely mentions an error is content.
	s := &geminiStream{now: time.Now}
	ev := &sse.Event{Data: []byte(`{"candidates":[{"content":{"parts":[{"text":"the \"error\" key"}]}}],"error_rate":1}`)}
	if cls := s.observe(ev); cls != provider.Content {
		t.Fatalf("class %v", cls)
	}
}

type fixedProject string

func (p fixedProject) Project(context.Context, string) (string, error) { return string(p), nil }

type failingProject struct{ err error }

func (p failingProject) Project(context.Context, string) (string, error) { return "", p.err }

func TestGeminiNewRequest(t *testing.T) {
	body := `{"contents":[{"parts":[{"text":"hi"}]}],"x":1}`
	gc := gemini.Call{Version: "v1", Model: "gemini-2.5-pro", Method: gemini.MethodStream}
	tests := []struct {
		name       string
		up         *Upstream
		sse        bool
		query      string
		wantURL    string
		wantBody   string
		wantHeader [2]string
	}{
		{"public sse", &Upstream{Config: config.AccountConfig{Type: config.TypeGeminiAPI, APIURL: "http://g.test/"}}, true, "alt=sse&key=relay",
			"http://g.test/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse", body, [2]string{"X-Goog-Api-Key", "acct-secret"}},
		{"public array", &Upstream{Config: config.AccountConfig{Type: config.TypeGeminiAPI}}, false, "key=relay",
			"https://generativelanguage.googleapis.com/v1/models/gemini-2.5-pro:streamGenerateContent", body, [2]string{"X-Goog-Api-Key", "acct-secret"}},
		{"code assist", &Upstream{Config: config.AccountConfig{Type: config.TypeGemini, APIURL: "http://ca.test/v1internal"}, Project: fixedProject("proj-1")}, true, "alt=sse&key=relay&fields=x",
			"http://ca.test/v1internal:streamGenerateContent?alt=sse", `{"model":"gemini-2.5-pro","project":"proj-1","request":` + body + `}`, [2]string{"Authorization", "Bearer acct-secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creq := httptest.NewRequest("POST", "/gemini/v1/models/gemini-2.5-pro:streamGenerateContent?"+tt.query, nil)
			creq.Header.Set("X-Goog-Api-Key", "relay")
			creq.Header.Set("X-Goog-Api-Client", "google-genai-sdk/1.0")
			c := &call{req: creq, body: []byte(body)}
			ad := geminiAdapter{call: gc, sse: tt.sse, now: time.Now}
			req, err := ad.newRequest(context.Background(), c, tt.up, "acct-secret")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(req.Body)
			if req.URL.String() != tt.wantURL || string(got) != tt.wantBody {
				t.Fatalf("%s %s\n%s", req.Method, req.URL, got)
			}
			if req.Header.Get(tt.wantHeader[0]) != tt.wantHeader[1] || req.Header.Get("X-Goog-Api-Client") != "google-genai-sdk/1.0" {
				t.Fatalf("headers %v", req.Header)
			}
			if tt.up.Config.Type == config.TypeGemini && req.Header.Get("X-Goog-Api-Key") != "" {
				t.Fatal("relay key header reached code assist")
			}
		})
	}
	// A project failure is returned as is, so its verdict is kept.
	boom := errors.New("boom")
	c := &call{req: httptest.NewRequest("POST", "/gemini/v1/models/m:generateContent", nil), body: []byte(body)}
	_, err := geminiAdapter{call: gc}.newRequest(context.Background(), c, &Upstream{Config: config.AccountConfig{Type: config.TypeGemini}, Project: failingProject{boom}}, "t")
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

// newGeminiTestRelay builds a relay over upstreams (gemini pool).
func newGeminiTestRelay(t *testing.T, ups ...*Upstream) *Relay {
	t.Helper()
	var accts []*scheduler.Account
	for i, up := range ups {
		up.Account = &scheduler.Account{ID: up.Config.ID, Type: up.Config.Type, Platform: up.Config.Platform(), Priority: 100, Enabled: true, Index: i}
		accts = append(accts, up.Account)
	}
	sched := scheduler.New(accts, scheduler.Options{StickyTTL: time.Hour, RateLimitCooldown: time.Minute, ErrorCooldown: time.Second,
		UnavailableCooldown: time.Hour, OverloadCooldown: time.Minute, MaxRateLimitHint: time.Hour}, nil, nil)
	t.Cleanup(sched.Close)
	return New(Options{Policy: testPolicy(t, "relay-key"), FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, sched, ups, nil, nil)
}

type geminiToken string

func (s geminiToken) Token(context.Context) (string, error) { return string(s), nil }
func (geminiToken) Invalidate(string)                       {}

func TestGeminiHandlerRouting(t *testing.T) {
	var mu sync.Mutex
	var got []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"candidates":[],"usageMetadata":{"promptTokenCount":3}}`)
	}))
	defer up.Close()
	ups := []*Upstream{{Config: config.AccountConfig{ID: "api", Type: config.TypeGeminiAPI, APIURL: up.URL}, Client: up.Client(), Token: geminiToken("k")}}
	h := newGeminiTestRelay(t, ups...).Handler()
	tests := []struct {
		method, target, auth string
		want                 int
		wantUp               string
	}{
		{"POST", "/gemini/v1beta/models/m-1:generateContent?key=relay-key", "", 200, "POST /v1beta/models/m-1:generateContent"},
		{"POST", "/gemini/v1beta/models/m-1:generateContent", "", 401, ""},
		{"POST", "/gemini/v1beta/models/m%2F..%2Fx:generateContent", "", 401, ""}, // auth comes first
		{"POST", "/gemini/v1beta/models/m%2F..%2Fx:generateContent", "relay-key", 400, ""},
		{"GET", "/gemini/v1/models?pageSize=2&key=relay-key", "", 200, "GET /v1/models?pageSize=2"},
		{"GET", "/gemini/v1/models/m-1", "relay-key", 200, "GET /v1/models/m-1"},
		{"DELETE", "/gemini/v1/models/m-1", "relay-key", 405, ""},
		{"POST", "/gemini/v2/models/m-1:generateContent", "relay-key", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(`{"contents":[]}`))
			if tt.auth != "" {
				req.Header.Set("X-Goog-Api-Key", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want != 200 && gjson.Get(rec.Body.String(), "error.code").Int() != int64(tt.want) {
				t.Fatalf("not Google's shape: %s", rec.Body)
			}
			mu.Lock()
			defer mu.Unlock()
			if (tt.wantUp == "" && len(got) != 0) || (tt.wantUp != "" && (len(got) != 1 || got[0] != tt.wantUp)) {
				t.Fatalf("upstream got %v, want %q", got, tt.wantUp)
			}
		})
	}
}

// A pool of Code Assist accounts only cannot list models; it says so
// without touching the account.
func TestGeminiModelsCodeAssistOnly(t *testing.T) {
	ups := []*Upstream{{Config: config.AccountConfig{ID: "ca", Type: config.TypeGemini, APIURL: "http://127.0.0.1:1"}, Client: http.DefaultClient, Token: geminiToken("t"), Project: fixedProject("p")}}
	rl := newGeminiTestRelay(t, ups...)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/gemini/v1beta/models", nil)
	req.Header.Set("Authorization", "Bearer relay-key")
	rl.Handler().ServeHTTP(rec, req)
	if rec.Code != 501 || gjson.Get(rec.Body.String(), "error.status").Str != "UNIMPLEMENTED" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if cds := rl.sched.Cooldowns(); len(cds) != 0 {
		t.Fatalf("cooldowns %+v", cds)
	}
}

// BenchmarkGeminiCodeAssistStream measures the per-event cost of reading a
// Code Assist stream: error check, unwrap, usage and rewrite.
func BenchmarkGeminiCodeAssistStream(b *testing.B) {
	ev := `data: {"response":{"candidates":[{"content":{"parts":[{"text":"` + strings.Repeat("lorem ipsum ", 40) + `"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":80,"totalTokenCount":1280,"thoughtsTokenCount":20},"modelVersion":"gemini-2.5-pro","responseId":"r1"},"traceId":"abc123"}` + "\r\n\r\n"
	chunk := []byte(strings.Repeat(ev, 16))
	s := &geminiStream{codeAssist: true, now: time.Now}
	var p sse.Parser
	out := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		out = out[:0]
		p.Feed(chunk, func(e *sse.Event) bool {
			s.observe(e)
			out = s.transform(out, e)
			return true
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/event")
}

// BenchmarkGeminiPublicStream is the same for a public API stream, which
// passes through.
func BenchmarkGeminiPublicStream(b *testing.B) {
	ev := `data: {"candidates":[{"content":{"parts":[{"text":"` + strings.Repeat("lorem ipsum ", 40) + `"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":80,"totalTokenCount":1280,"thoughtsTokenCount":20},"modelVersion":"gemini-2.5-pro","responseId":"r1"}` + "\r\n\r\n"
	chunk := []byte(strings.Repeat(ev, 16))
	s := &geminiStream{now: time.Now}
	var p sse.Parser
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		p.Feed(chunk, func(e *sse.Event) bool {
			s.observe(e)
			return true
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/event")
}
