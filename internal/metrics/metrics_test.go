package metrics

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// The Grafana dashboard uses only metrics this package exports.
func TestGrafanaDashboardUsesOurMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "contrib", "grafana", "ccrelay.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := New(Sources{})
	ours := map[string]bool{}
	ch := make(chan *prometheus.Desc, 200)
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.ttfb, m.tokens, m.cost, m.costUnknown, m.failovers,
		m.poolExhausted, m.cooldowns, m.refreshes, m.keyWait, scrapeCollector{m}} {
		c.Describe(ch)
	}
	close(ch)
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		name := fq.FindStringSubmatch(d.String())[1]
		ours[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			ours[name+suffix] = true
		}
	}
	used := regexp.MustCompile(`ccrelay_[a-z_]+`).FindAllString(string(data), -1)
	if len(used) < 10 {
		t.Fatalf("the dashboard uses %d metrics", len(used))
	}
	for _, u := range used {
		if !ours[u] {
			t.Errorf("the dashboard uses %s, which ccrelay does not export", u)
		}
	}
}

func TestRoute(t *testing.T) {
	tests := []struct{ path, route, platform string }{
		{"/v1/messages", "messages", "claude"},
		{"/claude/v1/messages", "messages", "claude"},
		{"/api/v1/messages/count_tokens", "count_tokens", "claude"},
		{"/openai/v1/chat/completions", "chat_completions", "claude"},
		{"/v1/responses", "responses", "openai"},
		{"/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent", "gemini_stream_generate", "gemini"},
		{"/gemini/v1/models/x:generateContent", "gemini_generate", "gemini"},
		{"/gemini/v1beta/models", "gemini_other", "gemini"},
		{"/v1/models", "models", "none"},
		{"/anything/the/client/sends", "other", "none"},
		// A lookalike of a route under another prefix is not that route.
		{"/x/v1/messages", "other", "none"},
		{"/openai/v1/embeddings", "other", "none"},
		{"/health", "", ""},
	}
	for _, tt := range tests {
		if r, p := Route(tt.path); r != tt.route || p != tt.platform {
			t.Errorf("Route(%q) = %q, %q; want %q, %q", tt.path, r, p, tt.route, tt.platform)
		}
	}
}

// BenchmarkPerRequest is what metrics add to one served request: the
// server's observer and the usage record's counters and histograms.
func BenchmarkPerRequest(b *testing.B) {
	m := New(Sources{})
	rec := usage.Record{Platform: "claude", Stream: true, AccountID: "acct-1", KeyName: "alice", Attempts: 1, Status: 200,
		Latency: 1200 * time.Millisecond, TTFB: 300 * time.Millisecond, CostKnown: true, CostMicros: 12345,
		Usage: provider.Usage{InputTokens: 1200, OutputTokens: 300, CacheCreationTokens: 4000, CacheReadTokens: 20000}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("/v1/messages", 200, "acct-1")
			m.Observe(rec)
		}
	})
}
