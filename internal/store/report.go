package store

import (
	"context"
	"time"
)

// Report is a usage summary as `ccrelay stats` prints it and the admin API
// serves it (the same JSON either way, so `stats --server` and `stats --db`
// agree byte for byte).
type Report struct {
	// Database is the file read (or the relay asked).
	Database string `json:"database"`
	// Since is the window start (null for "all"); Until is when the report was made.
	Since *time.Time `json:"since"`
	Until time.Time  `json:"until"`
	// By is the grouping ("" when none).
	By string `json:"by"`
	// Total sums every request of the window.
	Total ReportGroup `json:"total"`
	// Groups is one entry per group, busiest first ([] without a grouping).
	Groups []ReportGroup `json:"groups"`
	// Scope says whose requests the numbers count: ScopeCluster (every
	// relay sharing the cluster's Redis) or ScopeLocal (one relay's
	// database, or the databases read); "" from an older relay.
	Scope string `json:"scope,omitempty"`
	// ScopeReason says why a relay of a cluster answered with local
	// numbers (Redis unreachable, or a window Redis does not cover).
	ScopeReason string `json:"scope_reason,omitempty"`
}

// Report scopes.
const (
	ScopeCluster = "cluster"
	ScopeLocal   = "local"
)

// ReportGroup is one row of a Report.
type ReportGroup struct {
	// Name is the account id, model (asked or served) or platform; for keys the key name or,
	// for an unnamed key, its label (api_keys[N], "anonymous", or the hash
	// prefix of a key no longer configured).
	Name string `json:"name,omitempty"`
	UsageRow
	// CostUSD is the cost in dollars; null when any request's cost is unknown.
	CostUSD *float64 `json:"cost_usd"`
	// LatencyAvgMs and TTFBAvgMs are the means over successful requests.
	LatencyAvgMs int64 `json:"latency_avg_ms"`
	TTFBAvgMs    int64 `json:"ttfb_avg_ms"`
	// LatencyP50Ms and LatencyP95Ms are percentiles of successful
	// requests' latency over LatencySample of them: the window's most
	// recent, up to store.LatencySample, in this relay's database (also in
	// a cluster). Zeros when none was read (see DB.Latencies).
	LatencyP50Ms  int64 `json:"latency_p50_ms"`
	LatencyP95Ms  int64 `json:"latency_p95_ms"`
	LatencySample int64 `json:"latency_sample"`
}

func newReportGroup(name string, r UsageRow) ReportGroup {
	g := ReportGroup{Name: name, UsageRow: r, LatencyAvgMs: r.LatencyAvgMs(), TTFBAvgMs: r.TTFBAvgMs()}
	g.UsageRow.Group = ""
	if r.CostKnown() {
		usd := float64(r.CostMicros) / 1e6
		g.CostUSD = &usd
	}
	return g
}

// NewReport is an empty report of the window from since (zero = all time)
// to now, grouped by by.
func NewReport(database string, since, now time.Time, by string) Report {
	r := Report{Database: database, Until: now.UTC().Truncate(time.Second), By: by, Groups: []ReportGroup{}}
	if !since.IsZero() {
		s := since.UTC().Truncate(time.Second)
		r.Since = &s
	}
	return r
}

// FillReport reads the usage of r's window into r. keyLabel names a key
// without a name by its hash (api_keys[N]).
func (db *DB) FillReport(ctx context.Context, r *Report, keyLabel func(hash string) string) error {
	var since time.Time
	if r.Since != nil {
		since = *r.Since
	}
	groups, err := db.Usage(ctx, UsageQuery{From: since, By: r.By})
	if err != nil {
		return err
	}
	r.SetGroups(groups, keyLabel)
	return nil
}

// SetGroups fills r's total and groups from the rows of r's grouping (as
// Usage or GroupUsage return them). keyLabel names a key without a name by
// its hash.
func (r *Report) SetGroups(groups []UsageRow, keyLabel func(hash string) string) {
	// The total is the sum of the groups: one query, not two.
	var total UsageRow
	for _, g := range groups {
		total.add(g)
	}
	r.Total = newReportGroup("", total)
	r.Groups = make([]ReportGroup, 0, len(groups))
	if r.By == "" {
		return
	}
	for _, g := range groups {
		name := g.Group
		if r.By == GroupKey && g.KeyName == "" {
			name = keyLabel(g.KeyHash)
		}
		r.Groups = append(r.Groups, newReportGroup(name, g))
	}
}
