package store

import (
	"context"
	"fmt"
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
	// Group is the grouping value ("" when ungrouped).
	Group               string `json:"group,omitempty"`
	Requests            int64  `json:"requests"`
	Errors              int64  `json:"errors"`
	InputTokens         int64  `json:"input_tokens"`
	OutputTokens        int64  `json:"output_tokens"`
	CacheCreationTokens int64  `json:"cache_creation_tokens"`
	CacheReadTokens     int64  `json:"cache_read_tokens"`
}

// seriesColumns is the raw-row column of each grouping. Series cover the
// dashboard's recent windows (hours to days), inside the raw rows' retention.
var seriesColumns = map[string]string{
	GroupNone: "''", GroupKey: "CASE WHEN key_name != '' THEN key_name ELSE client_api_key_hash END",
	GroupAccount: "account_id", GroupModel: "model", GroupPlatform: "platform",
}

// UsageSeries sums usage in [since, until) into buckets of step (aligned to
// the Unix epoch), per group (see UsageSummary), in one query. Empty buckets
// are absent; points come in time order, then by group.
func (db *DB) UsageSeries(ctx context.Context, since, until time.Time, step time.Duration, group string) ([]SeriesPoint, error) {
	col, ok := seriesColumns[group]
	if !ok {
		return nil, fmt.Errorf("unknown usage grouping %q", group)
	}
	if step < time.Second {
		return nil, fmt.Errorf("usage series step %s is under a second", step)
	}
	stepMS := step.Milliseconds()
	to := int64(1 << 62)
	if !until.IsZero() {
		to = until.UnixMilli()
	}
	rows, err := db.conn().QueryContext(ctx, `SELECT (ts_ms / ?) * ?, `+col+`, COUNT(*),
		SUM(CASE WHEN status >= 400 OR status = 0 THEN 1 ELSE 0 END),
		SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), SUM(cache_read_tokens)
		FROM usage_stats WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1, 2 ORDER BY 1, 2`, stepMS, stepMS, since.UnixMilli(), to)
	if err != nil {
		return nil, fmt.Errorf("query usage series: %w", err)
	}
	defer rows.Close()
	var out []SeriesPoint
	for rows.Next() {
		var p SeriesPoint
		var start int64
		if err := rows.Scan(&start, &p.Group, &p.Requests, &p.Errors, &p.InputTokens, &p.OutputTokens, &p.CacheCreationTokens, &p.CacheReadTokens); err != nil {
			return nil, fmt.Errorf("read usage series: %w", err)
		}
		p.Start = time.UnixMilli(start).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
