package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The model served. With routes (and [models] aliases) a request asked for
// one model may be served as another: claude-sonnet-4 asked, gpt-5-codex
// served on an OpenAI account. Raw rows and hourly rollups keep both; the
// served model is "" when it is the model asked (rows written before this
// column existed read so, and the common case costs no bytes). usage_daily
// keeps a "served_model" dimension of its own, its g1 the resolved name.

// servedModelMigration adds the served model to the raw usage rows and to the
// hourly rollups' group (a new primary key: the table is rebuilt, once, its
// old rows served as asked), and the served_model daily dimension, filled
// from the model dimension of the days before it.
const servedModelMigration = `ALTER TABLE usage_stats ADD COLUMN served_model TEXT NOT NULL DEFAULT '';
	CREATE TABLE usage_hourly_served (
		hour_ms INTEGER NOT NULL,
		key_hash TEXT NOT NULL,
		key_name TEXT NOT NULL,
		account_id TEXT NOT NULL,
		model TEXT NOT NULL,
		served_model TEXT NOT NULL,
		platform TEXT NOT NULL,
		status_class INTEGER NOT NULL,
		requests INTEGER NOT NULL,
		input_tokens INTEGER NOT NULL,
		output_tokens INTEGER NOT NULL,
		cache_creation_tokens INTEGER NOT NULL,
		cache_read_tokens INTEGER NOT NULL,
		cost_micros INTEGER NOT NULL,
		cost_unknown INTEGER NOT NULL,
		latency_ms_sum INTEGER NOT NULL,
		ttfb_ms_sum INTEGER NOT NULL,
		PRIMARY KEY (hour_ms, key_hash, key_name, account_id, model, served_model, platform, status_class)
	) WITHOUT ROWID;
	INSERT INTO usage_hourly_served (hour_ms, key_hash, key_name, account_id, model, served_model, platform, status_class, requests,
		input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_micros, cost_unknown, latency_ms_sum, ttfb_ms_sum)
	SELECT hour_ms, key_hash, key_name, account_id, model, '', platform, status_class, requests,
		input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_micros, cost_unknown, latency_ms_sum, ttfb_ms_sum
	FROM usage_hourly;
	DROP TABLE usage_hourly;
	ALTER TABLE usage_hourly_served RENAME TO usage_hourly;
	INSERT INTO usage_daily (day_ms, dim, g1, g2, requests, errors, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
		cost_micros, cost_unknown, successes, latency_ms_sum, ttfb_ms_sum)
	SELECT day_ms, 'served_model', g1, g2, requests, errors, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
		cost_micros, cost_unknown, successes, latency_ms_sum, ttfb_ms_sum
	FROM usage_daily WHERE dim = 'model';`

// servedModelSQL is the served model of a raw or hourly row: its
// served_model, or its model when that is "".
const servedModelSQL = `COALESCE(NULLIF(served_model, ''), model)`

// storedServedModel is what a row keeps of a record's served model: "" when
// it is the model asked.
func storedServedModel(model, served string) string {
	if served == model {
		return ""
	}
	return served
}

// hasServedModel reports whether schema's usage tables keep the served model
// (a database opened read-only may predate the column; its requests were
// all served as asked).
func hasServedModel(ctx context.Context, c *sql.Conn, schema string) (bool, error) {
	var n int
	err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('usage_stats', ?) WHERE name = 'served_model'`, schema).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("query usage: read columns: %w", err)
	}
	return n > 0, nil
}
