package pricing

import (
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

func TestEmbeddedTableIsDatedAndSourced(t *testing.T) {
	tb := Embedded()
	if tb.Date == "" || tb.Source == "" {
		t.Fatal("the price table needs a date and a source")
	}
	for _, m := range []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "gpt-5", "gpt-5-codex", "gemini-2.5-pro", "gemini-2.5-flash"} {
		p, ok := tb.Lookup(m)
		if !ok || p.Input <= 0 || p.Output <= 0 {
			t.Errorf("%s: %+v, %v", m, p, ok)
		}
	}
}

func TestCost(t *testing.T) {
	tb := New(map[string]config.PriceConfig{
		"claude-sonnet-4-5": {Output: ptr(20)},
		"my-local-model":    {Input: ptr(0.5), Output: ptr(1)},
	})
	u := provider.Usage{InputTokens: 1000, OutputTokens: 500, CacheCreationTokens: 2000, CacheReadTokens: 10000}
	tests := []struct {
		model     string
		wantCost  int64
		wantKnown bool
	}{
		// 1000*3 + 500*20 (override) + 2000*3.75 + 10000*0.3
		{"claude-sonnet-4-5", 3000 + 10000 + 7500 + 3000, true},
		{"claude-sonnet-4-5-20250929", 3000 + 10000 + 7500 + 3000, true},
		// 1000*1 + 500*5 + 2000*1.25 + 10000*0.1
		{"claude-haiku-4-5-20251001", 1000 + 2500 + 2500 + 1000, true},
		{"models/gemini-2.5-flash", 300 + 1250 + 600 + 300, true},
		{"gemini-2.5-flash-preview-09-2025", 300 + 1250 + 600 + 300, true},
		{"GPT-5-mini", 250 + 1000 + 500 + 250, true},
		{"my-local-model", 500 + 500 + 1000 + 5000, true},
		{"no-such-model", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			got, known := tb.Cost(tt.model, u)
			if got != tt.wantCost || known != tt.wantKnown {
				t.Fatalf("Cost = %d, %v; want %d, %v", got, known, tt.wantCost, tt.wantKnown)
			}
		})
	}
	// Overrides do not leak into the embedded table.
	if p, _ := Embedded().Lookup("claude-sonnet-4-5"); p.Output != 15 {
		t.Fatalf("embedded table changed: %+v", p)
	}
}

func ptr(f float64) *float64 { return &f }

func BenchmarkCost(b *testing.B) {
	tb := Embedded()
	u := provider.Usage{InputTokens: 1000, OutputTokens: 500, CacheReadTokens: 10000}
	b.ReportAllocs()
	for b.Loop() {
		tb.Cost("claude-sonnet-4-5-20250929", u)
	}
}

// One-hour cache writes cost the 1-hour price, the rest of the cache
// writes the 5-minute price; prices swapped by Update apply at once.
func TestCostOfOneHourCacheWrites(t *testing.T) {
	tb := New(nil)
	u := provider.Usage{InputTokens: 100, OutputTokens: 50, CacheCreationTokens: 6000, CacheCreation1hTokens: 4000, CacheReadTokens: 10000}
	// 100*3 + 50*15 + 2000*3.75 + 4000*6 + 10000*0.3
	if got, _ := tb.Cost("claude-sonnet-4-5", u); got != 300+750+7500+24000+3000 {
		t.Fatalf("cost %d", got)
	}
	tb.Update(map[string]config.PriceConfig{"claude-sonnet-4-5": {CacheWrite1h: ptr(10)}})
	if got, _ := tb.Cost("claude-sonnet-4-5", u); got != 300+750+7500+40000+3000 {
		t.Fatalf("after Update: cost %d", got)
	}
	tb.Update(nil)
	if got, _ := tb.Cost("claude-sonnet-4-5", u); got != 300+750+7500+24000+3000 {
		t.Fatalf("after removing the override: cost %d", got)
	}
}

func TestPriceUsesTheServedModel(t *testing.T) {
	tb := Embedded()
	u := provider.Usage{InputTokens: 1000, OutputTokens: 500}
	codex, _ := tb.Cost("gpt-5-codex", u)
	sonnet, _ := tb.Cost("claude-sonnet-4-5", u)
	if codex == sonnet {
		t.Fatalf("the test needs two models of different prices (%d)", codex)
	}
	tests := []struct {
		name      string
		rec       usage.Record
		wantCost  int64
		wantKnown bool
	}{
		{"served as another model", usage.Record{Model: "claude-sonnet-4-5", ServedModel: "gpt-5-codex", Usage: u}, codex, true},
		{"served as asked", usage.Record{Model: "claude-sonnet-4-5", Usage: u}, sonnet, true},
		{"served model without a price", usage.Record{Model: "claude-sonnet-4-5", ServedModel: "no-such-model", Usage: u, CostMicros: 7}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec
			tb.Price(&rec)
			if rec.CostMicros != tt.wantCost || rec.CostKnown != tt.wantKnown {
				t.Errorf("cost %d (known %v), want %d (%v)", rec.CostMicros, rec.CostKnown, tt.wantCost, tt.wantKnown)
			}
		})
	}
}
