// Package pricing holds the price table of the models the relay serves (an
// embedded, dated data file, overridable per model in the config) and turns
// a request's token counts into its cost.
//
// Costs are integers in micro-dollars (1e-6 USD). A price in US dollars per
// million tokens is exactly micro-dollars per token, so a request's cost is
// the sum of its token counts times the prices, rounded once. A model the
// table does not know has an unknown cost, never 0.
package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

//go:embed prices.json
var embedded []byte

// Price is one model's prices in US dollars per million tokens.
type Price struct {
	Input        float64 `json:"input"`
	Output       float64 `json:"output"`
	CacheWrite5m float64 `json:"cache_write_5m"`
	CacheWrite1h float64 `json:"cache_write_1h"`
	CacheRead    float64 `json:"cache_read"`
}

type file struct {
	Date   string           `json:"date"`
	Source string           `json:"source"`
	Models map[string]Price `json:"models"`
}

// Table is a price table; safe for concurrent use. Update swaps its prices
// while requests read them (one atomic load per lookup).
type Table struct {
	// Date is the day the embedded prices were taken; Source says where from.
	Date, Source string
	models       atomic.Pointer[map[string]Price]
}

func (t *Table) table() map[string]Price { return *t.models.Load() }

// Embedded returns the table shipped in the binary.
func Embedded() *Table {
	t, err := parse(embedded)
	if err != nil {
		panic("pricing: embedded prices.json: " + err.Error()) // a build defect, caught by the tests
	}
	return t
}

func parse(data []byte) (*Table, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Date == "" || f.Source == "" {
		return nil, fmt.Errorf("prices need a date and a source")
	}
	t := &Table{Date: f.Date, Source: f.Source}
	m := make(map[string]Price, len(f.Models))
	for name, p := range f.Models {
		m[strings.ToLower(name)] = fill(p)
	}
	t.models.Store(&m)
	return t, nil
}

// fill completes a price whose cache prices are absent: an absent cache
// write costs what the 5-minute one (else input) costs, an absent cache read
// what input costs. Providers without cache writes never report any.
func fill(p Price) Price {
	if p.CacheWrite5m == 0 {
		p.CacheWrite5m = p.Input
	}
	if p.CacheWrite1h == 0 {
		p.CacheWrite1h = p.CacheWrite5m
	}
	if p.CacheRead == 0 {
		p.CacheRead = p.Input
	}
	return p
}

// New returns the embedded table with the config's [prices."model"]
// overrides applied: a field given replaces that model's price, a field
// left out keeps the embedded one (for a new model, 0 for input/output).
func New(overrides map[string]config.PriceConfig) *Table {
	base := Embedded()
	if len(overrides) == 0 {
		return base
	}
	m := base.table()
	for name, o := range overrides {
		name = strings.ToLower(name)
		p, ok := m[name]
		if !ok {
			p = Price{}
		}
		set := func(dst *float64, v *float64) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.Input, o.Input)
		set(&p.Output, o.Output)
		set(&p.CacheWrite5m, o.CacheWrite5m)
		set(&p.CacheWrite1h, o.CacheWrite1h)
		set(&p.CacheRead, o.CacheRead)
		if !ok {
			p = fill(p)
		}
		m[name] = p
	}
	return base
}

// Update replaces t's prices with the embedded table plus overrides (a
// config reload). A request priced during the swap sees the old prices or
// the new ones, never a mix.
func (t *Table) Update(overrides map[string]config.PriceConfig) {
	t.models.Store(New(overrides).models.Load())
}

// Lookup finds a model's price: the exact name first, then the longest name
// in the table that the model starts with, up to a '-' (so a dated name like
// claude-sonnet-4-5-20250929 or gemini-2.5-flash-preview-09-2025 finds its
// family). "models/" and an "@version" suffix are ignored. The work is a
// few map lookups, bounded by the number of dashes in the name.
func (t *Table) Lookup(model string) (Price, bool) {
	if t == nil || model == "" {
		return Price{}, false
	}
	m := strings.TrimPrefix(model, "models/")
	if i := strings.IndexByte(m, '@'); i > 0 {
		m = m[:i]
	}
	if hasUpper(m) {
		m = strings.ToLower(m)
	}
	prices := t.table()
	if p, ok := prices[m]; ok {
		return p, true
	}
	for i := len(m) - 1; i > 0; i-- {
		if m[i] != '-' {
			continue
		}
		if p, ok := prices[m[:i]]; ok {
			return p, true
		}
	}
	return Price{}, false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Cost returns what u cost on model in micro-dollars, and false when the
// model has no price (the cost is unknown). Cache writes for one hour
// (u.CacheCreation1hTokens) are priced at the 1-hour rate, the rest of
// u.CacheCreationTokens at the 5-minute rate.
func (t *Table) Cost(model string, u provider.Usage) (int64, bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	return p.Cost(u), true
}

// Price sets rec's cost: its usage at the price of the model that served
// it (rec.Served(): a request asked as claude-sonnet-4 and served as
// gpt-5-codex costs what gpt-5-codex costs). A model without a price leaves
// the cost unknown (CostKnown false, CostMicros 0), never free.
func (t *Table) Price(rec *usage.Record) {
	rec.CostMicros, rec.CostKnown = t.Cost(rec.Served(), rec.Usage)
	if !rec.CostKnown {
		rec.CostMicros = 0
	}
}

// Cost is u's cost at these prices, in micro-dollars.
func (p Price) Cost(u provider.Usage) int64 {
	oneHour := min(max(u.CacheCreation1hTokens, 0), u.CacheCreationTokens)
	c := float64(u.InputTokens)*p.Input + float64(u.OutputTokens)*p.Output +
		float64(u.CacheCreationTokens-oneHour)*p.CacheWrite5m + float64(oneHour)*p.CacheWrite1h + float64(u.CacheReadTokens)*p.CacheRead
	return int64(math.Round(c))
}

// Models returns the names in the table (for documentation and tests).
func (t *Table) Models() []string {
	prices := t.table()
	out := make([]string, 0, len(prices))
	for m := range prices {
		out = append(out, m)
	}
	return out
}
