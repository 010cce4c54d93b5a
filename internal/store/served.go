package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The model served. With routes (and [models] aliases) a request asked for
// one model may be served as another: claude-sonnet-4 asked, gpt-5-codex
// served on an OpenAI account. Raw rows keep both (served_model "" when it
// is the model asked: rows written before the column read so, and the
// common case costs no bytes). usage_hourly stays as it was (its key
// unchanged: rewriting years of hourly rows on upgrade would hold the
// relay's start for many seconds); the served model's hours are a table of
// their own, usage_hourly_served (usage_daily's shape, one row per hour and
// served model), and usage_daily has a served_model dimension.
//
// usage_rollup_state.served_from_ms is the first hour whose hourly sums
// are all in usage_hourly_served: the hour after the newest hourly row at
// the upgrade (0 for a database without one). Hours before it were rolled
// up before the relay kept the served model, so they are read by model
// from usage_hourly, which is what they mean: served as asked. Rows rolled
// up later (a raw tail older than the upgrade) go to both tables, and
// usage_hourly_served is read from served_from_ms only, so nothing counts
// twice.

// servedModelMigration adds the served model to the raw rows, the hourly
// served-model sums, where they start, and the served_model daily
// dimension, filled from the model dimension of the days before it.
const servedModelMigration = `ALTER TABLE usage_stats ADD COLUMN served_model TEXT NOT NULL DEFAULT '';
	CREATE TABLE IF NOT EXISTS usage_hourly_served (
		hour_ms INTEGER NOT NULL,
		served_model TEXT NOT NULL,
		requests INTEGER NOT NULL,
		errors INTEGER NOT NULL,
		input_tokens INTEGER NOT NULL,
		output_tokens INTEGER NOT NULL,
		cache_creation_tokens INTEGER NOT NULL,
		cache_read_tokens INTEGER NOT NULL,
		cost_micros INTEGER NOT NULL,
		cost_unknown INTEGER NOT NULL,
		successes INTEGER NOT NULL,
		latency_ms_sum INTEGER NOT NULL,
		ttfb_ms_sum INTEGER NOT NULL,
		PRIMARY KEY (hour_ms, served_model)
	) WITHOUT ROWID;
	ALTER TABLE usage_rollup_state ADD COLUMN served_from_ms INTEGER NOT NULL DEFAULT 0;
	UPDATE usage_rollup_state SET served_from_ms = COALESCE((SELECT MAX(hour_ms) FROM usage_hourly) + 3600000, 0);
	INSERT INTO usage_daily (day_ms, dim, g1, g2, requests, errors, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
		cost_micros, cost_unknown, successes, latency_ms_sum, ttfb_ms_sum)
	SELECT day_ms, 'served_model', g1, g2, requests, errors, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
		cost_micros, cost_unknown, successes, latency_ms_sum, ttfb_ms_sum
	FROM usage_daily WHERE dim = 'model';`

// servedModelSQL is the served model of a raw row (or a roll-up batch
// row): its served_model, or its model when that is "".
const servedModelSQL = `COALESCE(NULLIF(served_model, ''), model)`

// servedUpsert adds to a usage_hourly_served row.
const servedUpsert = ` ON CONFLICT (hour_ms, served_model) DO UPDATE SET `

var (
	// servedFromBatchSQL adds a roll-up step's batch to usage_hourly_served.
	servedFromBatchSQL = `INSERT INTO usage_hourly_served (hour_ms, served_model, ` + dailyMeasureColumns + `)
	SELECT hour_ms, ` + servedModelSQL + `, ` + rollupSums + ` FROM temp.rollup_batch GROUP BY 1, 2` + servedUpsert + dailyUpsertSet

	// servedFromHourlySQL adds the usage_hourly rows of [?, ?) to
	// usage_hourly_served, served as asked (generated histories).
	servedFromHourlySQL = `INSERT INTO usage_hourly_served (hour_ms, served_model, ` + dailyMeasureColumns + `)
	SELECT hour_ms, model, ` + rollupSums + ` FROM usage_hourly WHERE hour_ms >= ? AND hour_ms < ? GROUP BY 1, 2` + servedUpsert + dailyUpsertSet
)

// storedServedModel is what a row keeps of a record's served model: "" when
// it is the model asked.
func storedServedModel(model, served string) string {
	if served == model {
		return ""
	}
	return served
}

// servedFrom is schema's served_from_ms, and false when the database
// predates the served model (one opened read-only, not migrated: its
// requests were all served as asked).
func servedFrom(ctx context.Context, c *sql.Conn, schema string) (int64, bool, error) {
	var n int
	err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('usage_rollup_state', ?) WHERE name = 'served_from_ms'`, schema).Scan(&n)
	if err != nil || n == 0 {
		return 0, false, wrapErr("query usage: read columns", err)
	}
	var from int64
	if err := c.QueryRowContext(ctx, `SELECT served_from_ms FROM `+schema+`.usage_rollup_state WHERE id = 1`).Scan(&from); err != nil {
		return 0, false, fmt.Errorf("query usage: read rollup state: %w", err)
	}
	return from, true, nil
}

// wrapErr wraps err with what, and is nil for a nil err.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
