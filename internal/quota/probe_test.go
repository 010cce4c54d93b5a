package quota

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestProberAsksIdleAccountsAtMostEveryInterval(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/oauth/usage" || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("anthropic-beta") != "oauth-2025-04-20" {
			http.Error(w, "bad request", 400)
			return
		}
		hits.Add(1)
		w.Write([]byte(`{"five_hour":{"utilization":37,"resets_at":"2026-12-02T15:00:00Z"},"seven_day":{"utilization":9}}`))
	}))
	defer srv.Close()
	tr := NewTracker(nil, nil)
	defer tr.Close()
	target := func(id string) ProbeTarget {
		return ProbeTarget{AccountID: id, Client: srv.Client(), Parse: ParseClaudeUsage,
			NewRequest: func(ctx context.Context) (*http.Request, error) { return ClaudeUsageRequest(ctx, srv.URL, "tok") }}
	}
	p := &Prober{Tracker: tr, Every: 10 * time.Minute, Targets: []ProbeTarget{target("idle"), target("busy")}}
	// busy's answers keep its numbers fresh: it is not probed.
	tr.Apply("busy", Snapshot{SeenAt: t0, Windows: []Window{{Name: "5h", Utilization: 0.5}}})

	if n, err := p.ProbeDue(context.Background(), t0); n != 1 || err != nil || hits.Load() != 1 {
		t.Fatalf("first round: %d probes, %v, %d hits", n, err, hits.Load())
	}
	s, _ := tr.Snapshot("idle")
	if w, _ := s.Window("5h"); w.Utilization != 0.37 || s.Source != SourceUsage {
		t.Fatalf("idle after probe %+v", s)
	}
	if n, _ := p.ProbeDue(context.Background(), t0.Add(9*time.Minute)); n != 0 {
		t.Fatalf("probed again within the interval: %d", n)
	}
	if n, _ := p.ProbeDue(context.Background(), t0.Add(11*time.Minute)); n != 2 || hits.Load() != 3 {
		t.Fatalf("after the interval: %d probes, %d hits", n, hits.Load())
	}
}
