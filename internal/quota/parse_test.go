package quota

import (
	"math"
	"net/http"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParseHeadersClaudeUnified(t *testing.T) {
	reset5h := t0.Add(2 * time.Hour).Unix()
	h := hdr(
		"anthropic-ratelimit-unified-status", "allowed_warning",
		"anthropic-ratelimit-unified-reset", "1796212800",
		"anthropic-ratelimit-unified-5h-utilization", "0.62",
		"anthropic-ratelimit-unified-5h-reset", time.Unix(reset5h, 0).Format(time.RFC3339),
		"anthropic-ratelimit-unified-5h-status", "allowed",
		"anthropic-ratelimit-unified-7d-utilization", "0.14",
		"anthropic-ratelimit-unified-7d-reset", "1796212800",
		"anthropic-ratelimit-unified-7d-status", "allowed_warning",
		"anthropic-ratelimit-unified-7d_oi-utilization", "0.3",
		"anthropic-ratelimit-unified-30d_new-utilization", "0.01",
		"anthropic-ratelimit-unified-representative-claim", "five_hour",
		"anthropic-ratelimit-unified-overage-status", "rejected",
		"anthropic-ratelimit-unified-overage-disabled-reason", "org_level_disabled",
		"anthropic-ratelimit-unified-fallback-percentage", "0.5",
		"Content-Type", "application/json",
	)
	s, ok := ParseHeaders(h, t0)
	if !ok {
		t.Fatal("no snapshot")
	}
	if s.Source != SourceClaude || s.Status != StatusAllowedWarning || s.RepresentativeClaim != "five_hour" ||
		s.OverageStatus != StatusRejected || s.OverageDisabledReason != "org_level_disabled" || !s.SeenAt.Equal(t0) {
		t.Fatalf("snapshot fields: %+v", s)
	}
	if s.ResetsAt.Unix() != 1796212800 {
		t.Errorf("overall reset %v", s.ResetsAt)
	}
	want := []struct {
		name    string
		u       float64
		minutes int
	}{{"5h", 0.62, 300}, {"7d", 0.14, 10080}, {"7d_oi", 0.3, 10080}, {"30d_new", 0.01, 43200}}
	if len(s.Windows) != len(want) {
		t.Fatalf("windows %+v", s.Windows)
	}
	for i, w := range want {
		got := s.Windows[i]
		if got.Name != w.name || got.Utilization != w.u || got.Minutes != w.minutes {
			t.Errorf("window %d = %+v, want %+v", i, got, w)
		}
	}
	if s.Windows[0].ResetsAt.Unix() != reset5h || s.Windows[0].Status != StatusAllowed {
		t.Errorf("5h window %+v", s.Windows[0])
	}
	if s.Windows[1].Status != StatusAllowedWarning {
		t.Errorf("7d status %q", s.Windows[1].Status)
	}
}

func TestParseHeadersRejectedWithoutUtilization(t *testing.T) {
	s, ok := ParseHeaders(hdr("anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", "1796212800"), t0)
	if !ok || len(s.Windows) != 1 || s.Windows[0].Utilization != 1 {
		t.Fatalf("got %+v %v", s, ok)
	}
}

func TestParseHeadersAPIKey(t *testing.T) {
	h := hdr(
		"anthropic-ratelimit-requests-limit", "1000",
		"anthropic-ratelimit-requests-remaining", "250",
		"anthropic-ratelimit-requests-reset", t0.Add(30*time.Second).Format(time.RFC3339),
		"anthropic-ratelimit-tokens-limit", "400000",
		"anthropic-ratelimit-tokens-remaining", "400000",
		"anthropic-ratelimit-output-tokens-limit", "junk",
		"retry-after", "3",
	)
	s, ok := ParseHeaders(h, t0)
	if !ok || s.Source != SourceAPIKey {
		t.Fatalf("got %+v", s)
	}
	r, ok := s.Window("requests")
	if !ok || r.Limit != 1000 || r.Remaining != 250 || r.Utilization != 0.75 || !r.ResetsAt.Equal(t0.Add(30*time.Second)) {
		t.Errorf("requests %+v", r)
	}
	if tk, ok := s.Window("tokens"); !ok || tk.Utilization != 0 {
		t.Errorf("tokens %+v", tk)
	}
	if _, ok := s.Window("output-tokens"); ok {
		t.Error("a window with a malformed limit is kept")
	}
}

func TestParseHeadersCodex(t *testing.T) {
	h := hdr(
		"x-codex-primary-used-percent", "42.5",
		"x-codex-primary-window-minutes", "300",
		"x-codex-primary-reset-at", "1796212800",
		"x-codex-secondary-used-percent", "7",
		"x-codex-secondary-window-minutes", "10080",
		"x-codex-secondary-reset-after-seconds", "3600",
		"x-codex-credits-has-credits", "true",
	)
	s, ok := ParseHeaders(h, t0)
	if !ok || s.Source != SourceCodex || !s.HasCredits || len(s.Windows) != 2 {
		t.Fatalf("got %+v", s)
	}
	p, _ := s.Window("primary")
	if p.Utilization != 0.425 || p.Minutes != 300 || p.ResetsAt.Unix() != 1796212800 {
		t.Errorf("primary %+v", p)
	}
	sec, _ := s.Window("secondary")
	if sec.Utilization != 0.07 || !sec.ResetsAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("secondary %+v", sec)
	}
}

func TestParseHeadersNoneAllocatesNothing(t *testing.T) {
	h := hdr("Content-Type", "text/event-stream", "Request-Id", "req_1", "Anthropic-Organization-Id", "x", "Date", "now")
	if _, ok := ParseHeaders(h, t0); ok {
		t.Fatal("snapshot from no quota header")
	}
	if n := testing.AllocsPerRun(100, func() { ParseHeaders(h, t0) }); n != 0 {
		t.Errorf("%v allocations for an answer without quota headers", n)
	}
}

func TestParseHeadersMalformedIgnored(t *testing.T) {
	h := hdr(
		"anthropic-ratelimit-unified-5h-utilization", "NaN",
		"anthropic-ratelimit-unified-7d-utilization", "-1",
		"anthropic-ratelimit-unified-7d-reset", "yesterday",
		"anthropic-ratelimit-unified-Bad Window!-utilization", "0.5",
		"anthropic-ratelimit-unified-7d_oi-utilization", "1e400",
		"anthropic-ratelimit-unified-representative-claim", "five hour\n",
		"anthropic-ratelimit-unified-status", "maybe",
		"anthropic-ratelimit-unified-1h-utilization", "0.5",
		"anthropic-ratelimit-unified-1h-reset", "99999999999999999999",
		"x-codex-primary-used-percent", "Inf",
	)
	s, ok := ParseHeaders(h, t0)
	if !ok || len(s.Windows) != 1 || s.Windows[0].Name != "1h" || !s.Windows[0].ResetsAt.IsZero() {
		t.Fatalf("got %+v", s)
	}
	if s.Status != "" || s.RepresentativeClaim != "" {
		t.Errorf("malformed values kept: %+v", s)
	}
}

func TestParseCodexEvent(t *testing.T) {
	data := []byte(`{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"primary":{"used_percent":80,"window_minutes":300,"reset_at":1796212800},"secondary":{"used_percent":12.5,"window_minutes":10080,"reset_after_seconds":60}},"credits":{"has_credits":false}}`)
	s, ok := ParseCodexEvent(data, t0)
	if !ok || s.PlanType != "pro" || len(s.Windows) != 2 {
		t.Fatalf("got %+v", s)
	}
	if p, _ := s.Window("primary"); p.Utilization != 0.8 || p.Minutes != 300 || p.ResetsAt.Unix() != 1796212800 {
		t.Errorf("primary %+v", p)
	}
	if sec, _ := s.Window("secondary"); !sec.ResetsAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("secondary %+v", sec)
	}
	for _, bad := range []string{``, `{`, `{"rate_limits":{}}`, `{"rate_limits":{"primary":{"used_percent":"x"}}}`, `[]`} {
		if _, ok := ParseCodexEvent([]byte(bad), t0); ok {
			t.Errorf("snapshot from %q", bad)
		}
	}
}

func TestParseUsageEndpoints(t *testing.T) {
	c, ok := ParseClaudeUsage([]byte(`{"five_hour":{"utilization":62,"resets_at":"2026-12-02T14:00:00Z"},"seven_day":{"utilization":14.0,"resets_at":null},"seven_day_sonnet":{"utilization":3},"extra_usage":null}`), t0)
	if !ok || len(c.Windows) != 3 {
		t.Fatalf("claude %+v", c)
	}
	if w, _ := c.Window("5h"); w.Utilization != 0.62 || w.ResetsAt.Hour() != 14 {
		t.Errorf("5h %+v", w)
	}
	if _, ok := c.Window("7d_sonnet"); !ok {
		t.Error("7d_sonnet missing")
	}
	x, ok := ParseCodexUsage([]byte(`{"plan_type":"plus","rate_limit":{"primary_window":{"used_percent":30,"limit_window_seconds":18000,"reset_at":1796212800},"secondary_window":{"used_percent":5,"limit_window_seconds":604800,"reset_after_seconds":100}}}`), t0)
	if !ok || x.PlanType != "plus" || len(x.Windows) != 2 {
		t.Fatalf("codex %+v", x)
	}
	if w, _ := x.Window("primary"); w.Utilization != 0.3 || w.Minutes != 300 {
		t.Errorf("primary %+v", w)
	}
}

func TestHeadroom(t *testing.T) {
	tests := []struct {
		name      string
		s         Snapshot
		used      float64
		load      float64
		overage   bool
		untilHour int
	}{
		{"none", Snapshot{SeenAt: t0}, 0, 0, false, 0},
		{"busiest window counts", Snapshot{SeenAt: t0, Windows: []Window{
			{Name: "5h", Utilization: 0.8, Minutes: 300, ResetsAt: t0.Add(5 * time.Hour)},
			{Name: "7d", Utilization: 0.3, Minutes: 10080, ResetsAt: t0.Add(7 * 24 * time.Hour)},
		}}, 0.8, 0.8, false, 0},
		{"near reset weighs little", Snapshot{SeenAt: t0, Windows: []Window{
			{Name: "5h", Utilization: 0.8, Minutes: 300, ResetsAt: t0.Add(30 * time.Minute)},
		}}, 0.8, 0.08, false, 0},
		{"past reset is stale", Snapshot{SeenAt: t0.Add(-6 * time.Hour), Windows: []Window{
			{Name: "5h", Utilization: 0.99, Minutes: 300, ResetsAt: t0.Add(-time.Hour)},
		}}, 0, 0, false, 0},
		{"claude overage in use", Snapshot{SeenAt: t0, OverageStatus: StatusAllowed, Windows: []Window{
			{Name: "5h", Utilization: 1, Minutes: 300, ResetsAt: t0.Add(2 * time.Hour)},
		}}, 1, 0.4, true, 14},
		{"claude spent, overage off", Snapshot{SeenAt: t0, OverageStatus: StatusRejected, Windows: []Window{
			{Name: "5h", Utilization: 1, Minutes: 300, ResetsAt: t0.Add(2 * time.Hour)},
		}}, 1, 0.4, false, 14},
		{"codex credits in use", Snapshot{Source: SourceCodex, SeenAt: t0, HasCredits: true, Windows: []Window{
			{Name: "primary", Utilization: 1, Minutes: 300, ResetsAt: t0.Add(3 * time.Hour)},
		}}, 1, 0.6, true, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.s.Headroom(t0)
			if math.Abs(h.Used-tt.used) > 1e-9 || math.Abs(h.Load-tt.load) > 1e-9 || h.OverageInUse != tt.overage {
				t.Fatalf("headroom %+v", h)
			}
			if tt.untilHour != 0 && h.Until.UTC().Hour() != tt.untilHour {
				t.Errorf("until %v", h.Until)
			}
		})
	}
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("anthropic-ratelimit-unified-5h-utilization", "0.62", "x-codex-primary-used-percent", "12", []byte(`{"rate_limits":{"primary":{"used_percent":1}}}`))
	f.Add("anthropic-ratelimit-unified-7d_oi-reset", "2026-12-02T14:00:00Z", "anthropic-ratelimit-requests-remaining", "-5", []byte(`{"five_hour":{"utilization":1e308}}`))
	f.Add("anthropic-ratelimit-unified--", "", "x-codex-", "1e999", []byte(`{"rate_limit":{"primary_window":{"used_percent":50,"reset_at":"x"}}}`))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, body []byte) {
		h := http.Header{k1: {v1}, k2: {v2}}
		for _, parse := range []func() (Snapshot, bool){
			func() (Snapshot, bool) { return ParseHeaders(h, t0) },
			func() (Snapshot, bool) { return ParseCodexEvent(body, t0) },
			func() (Snapshot, bool) { return ParseClaudeUsage(body, t0) },
			func() (Snapshot, bool) { return ParseCodexUsage(body, t0) },
		} {
			s, ok := parse()
			if !ok {
				continue
			}
			for _, w := range s.Windows {
				if math.IsNaN(w.Utilization) || w.Utilization < 0 || w.Utilization > 10 || w.Name == "" {
					t.Fatalf("window %+v", w)
				}
			}
			_ = s.Headroom(t0)
		}
	})
}
