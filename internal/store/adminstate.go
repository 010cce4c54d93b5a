package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// accountAdminMigration adds accounts disabled through the admin API.
const accountAdminMigration = `CREATE TABLE IF NOT EXISTS account_admin (
		account_id TEXT PRIMARY KEY,
		disabled INTEGER NOT NULL DEFAULT 0,
		updated_ms INTEGER NOT NULL
	);`

// SetAccountDisabled records that an operator disabled (or enabled again) an
// account through the admin API, so the choice survives a restart.
func (db *DB) SetAccountDisabled(ctx context.Context, accountID string, disabled bool) error {
	v := 0
	if disabled {
		v = 1
	}
	_, err := db.conn().ExecContext(ctx, `INSERT INTO account_admin (account_id, disabled, updated_ms) VALUES (?, ?, ?)
		ON CONFLICT(account_id) DO UPDATE SET disabled = excluded.disabled, updated_ms = excluded.updated_ms`, accountID, v, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("save account %q state: %w", accountID, err)
	}
	return nil
}

// DisabledAccounts returns the accounts an operator disabled.
func (db *DB) DisabledAccounts(ctx context.Context) (map[string]bool, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT account_id FROM account_admin WHERE disabled = 1`)
	if err != nil {
		return nil, fmt.Errorf("read disabled accounts: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read disabled accounts: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// SeriesPoint is one time bucket of one group of a usage series.
type SeriesPoint struct {
	// Start is the bucket's start.
	Start time.Time `json:"start"`
	// Group is the grouping value ("" when ungrouped); for keys the key
	// name, or "" for a key without a name (KeyHash says which).
	Group string `json:"group,omitempty"`
	// KeyHash is the hash of an unnamed key (grouped by key only); the
	// admin API shows it as a label, never as such.
	KeyHash             string `json:"-"`
	Requests            int64  `json:"requests"`
	Errors              int64  `json:"errors"`
	InputTokens         int64  `json:"input_tokens"`
	OutputTokens        int64  `json:"output_tokens"`
	CacheCreationTokens int64  `json:"cache_creation_tokens"`
	CacheReadTokens     int64  `json:"cache_read_tokens"`
	// CostMicros sums the known costs; CostUnknown counts the requests
	// without one (as in UsageRow).
	CostMicros  int64 `json:"cost_micros"`
	CostUnknown int64 `json:"cost_unknown_requests"`
}

// SeriesPart is a partial sum of one group in one bucket, as the parts of
// a series are read (rollups, raw edges, databases, relays); its UsageRow
// carries the two group values in KeyName and KeyHash, as for GroupUsage.
type SeriesPart struct {
	// Start is the bucket's start, in Unix milliseconds.
	Start int64
	UsageRow
}

// UsageSeries sums usage in [since, until) into buckets of step (aligned to
// the Unix epoch), per group (see Usage), in time order, then by group;
// empty buckets are absent. A step of whole hours reads the hourly rollups
// (and the daily ones for whole days when the step is whole days) plus the
// raw rows of the partial hours at the edges, as Usage does, so a series of
// months costs no more than one of hours. Any other step (the dashboard's
// minutes) reads the raw rows, so it reaches back as far as the raw
// retention; the admin API bounds a series to 2,000 steps.
func (db *DB) UsageSeries(ctx context.Context, since, until time.Time, step time.Duration, group string) ([]SeriesPoint, error) {
	if _, ok := groupColumns[group]; !ok {
		return nil, fmt.Errorf("unknown usage grouping %q", group)
	}
	if step < time.Second {
		return nil, fmt.Errorf("usage series step %s is under a second", step)
	}
	from, to := window(since, until)
	var parts []SeriesPart
	err := db.readUsage(ctx, func(c *sql.Conn, schema string) error {
		return db.usageOf(ctx, c, schema, group, step.Milliseconds(), from, to, func(b int64, g1, g2 string, r UsageRow) {
			r.KeyName, r.KeyHash = g1, g2
			parts = append(parts, SeriesPart{Start: b, UsageRow: r})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("query usage series: %w", err)
	}
	return GroupSeries(group, parts), nil
}

// GroupSeries merges series parts into points: one per bucket and group
// (keys by name, an unnamed key by hash), in time order, then by group.
func GroupSeries(by string, parts []SeriesPart) []SeriesPoint {
	type id struct {
		start       int64
		group, hash string
	}
	merged := map[id]*SeriesPoint{}
	var out []*SeriesPoint
	for _, p := range parts {
		k := id{start: p.Start}
		switch {
		case by == GroupNone:
		case by != GroupKey:
			k.group = p.KeyName
		case p.KeyName != "":
			k.group = p.KeyName
		default:
			k.hash = p.KeyHash
		}
		sp := merged[k]
		if sp == nil {
			sp = &SeriesPoint{Start: time.UnixMilli(p.Start).UTC(), Group: k.group, KeyHash: k.hash}
			merged[k] = sp
			out = append(out, sp)
		}
		sp.Requests += p.Requests
		sp.Errors += p.Errors
		sp.InputTokens += p.InputTokens
		sp.OutputTokens += p.OutputTokens
		sp.CacheCreationTokens += p.CacheCreationTokens
		sp.CacheReadTokens += p.CacheReadTokens
		sp.CostMicros += p.CostMicros
		sp.CostUnknown += p.CostUnknown
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.KeyHash < b.KeyHash
	})
	pts := make([]SeriesPoint, len(out))
	for i, p := range out {
		pts[i] = *p
	}
	return pts
}
