package quota

import (
	"context"
	"sync"
	"testing"
	"time"
)

type memPersist struct {
	mu    sync.Mutex
	saved map[string]Snapshot
}

func (m *memPersist) SaveQuota(_ context.Context, id string, s Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saved[id] = s
	return nil
}

type memObserver struct{ got []string }

func (o *memObserver) QuotaChanged(id string, s Snapshot) { o.got = append(o.got, id) }

func TestTrackerObservesMergesAndSaves(t *testing.T) {
	p := &memPersist{saved: map[string]Snapshot{}}
	tr := NewTracker(p, nil)
	now := t0
	tr.SetClock(func() time.Time { return now })
	obs := &memObserver{}
	tr.AddObserver(obs)

	tr.ObserveHeaders("a", hdr("Content-Type", "application/json"))
	if _, ok := tr.Snapshot("a"); ok {
		t.Fatal("snapshot from an answer without quota headers")
	}
	tr.ObserveHeaders("a", hdr("anthropic-ratelimit-unified-5h-utilization", "0.5", "anthropic-ratelimit-unified-5h-reset", "1796223600",
		"anthropic-ratelimit-unified-7d_sonnet-utilization", "0.2", "anthropic-ratelimit-unified-7d_sonnet-reset", "1796223600"))
	now = now.Add(time.Second)
	tr.ObserveHeaders("a", hdr("anthropic-ratelimit-unified-5h-utilization", "0.6"))
	s, ok := tr.Snapshot("a")
	if !ok || len(s.Windows) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	if w, _ := s.Window("5h"); w.Utilization != 0.6 {
		t.Errorf("5h not updated: %+v", w)
	}
	if _, ok := s.Window("7d_sonnet"); !ok {
		t.Error("a window the newer answer did not name was dropped before its reset")
	}
	// An older snapshot (a late cluster event) does not replace a newer one.
	tr.ApplyRemote("a", Snapshot{SeenAt: t0.Add(-time.Hour), Windows: []Window{{Name: "5h", Utilization: 0.1}}})
	if w, _ := tr.Snapshot("a"); w.Windows[0].Utilization != 0.6 {
		t.Errorf("older snapshot won: %+v", w)
	}
	tr.ObserveEvent("b", "response.created", []byte(`{}`))
	tr.ObserveEvent("b", CodexEventName, []byte(`{"rate_limits":{"primary":{"used_percent":40,"window_minutes":300}}}`))
	if h := tr.Headroom("b", now); !h.Known || h.Used != 0.4 {
		t.Errorf("headroom of b %+v", h)
	}
	tr.Close()
	if len(obs.got) != 3 {
		t.Errorf("observer told %v", obs.got)
	}
	if got := p.saved["a"]; len(got.Windows) != 2 || !got.SeenAt.Equal(now) {
		t.Errorf("saved %+v", got)
	}
	if _, ok := p.saved["b"]; !ok {
		t.Error("b not saved")
	}
	tr.ObserveHeaders("a", hdr("anthropic-ratelimit-unified-5h-utilization", "0.7")) // after Close: kept in memory, no panic
}

func BenchmarkObserveHeadersNone(b *testing.B) {
	tr := NewTracker(nil, nil)
	defer tr.Close()
	h := hdr("Content-Type", "text/event-stream", "Request-Id", "req_1", "Cf-Ray", "x", "Date", "now", "Server", "cloudflare")
	b.ReportAllocs()
	for b.Loop() {
		tr.ObserveHeaders("a", h)
	}
}

func BenchmarkObserveHeadersClaude(b *testing.B) {
	tr := NewTracker(nil, nil)
	defer tr.Close()
	h := hdr("Content-Type", "text/event-stream", "anthropic-ratelimit-unified-5h-utilization", "0.5", "anthropic-ratelimit-unified-5h-reset", "1796223600",
		"anthropic-ratelimit-unified-7d-utilization", "0.2", "anthropic-ratelimit-unified-7d-reset", "1796223600", "anthropic-ratelimit-unified-status", "allowed")
	b.ReportAllocs()
	for b.Loop() {
		tr.ObserveHeaders("a", h)
	}
}
