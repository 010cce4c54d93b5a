package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Usage at scale: raw rows (usage_stats, one per request) are kept for the
// retention period; every row is also summed into usage_hourly (one row per
// UTC hour, key, account, model, platform and status class), which is kept
// for good. Queries read usage_hourly for whole hours and raw rows only for
// the partial hours at the edges of their window, so their cost does not grow
// with history.
//
// usage_daily holds the same sums per UTC day for each grouping on its own
// (dim "key": g1 key name, g2 key hash; "account", "model", "platform",
// "served_model": g1 the value), a few dozen rows a day: a window of months or years reads
// whole days from it, whole hours at its edges from usage_hourly. (Summing
// usage_hourly alone over two years means millions of rows, since its rows
// are per key, account, model and status at once.)
//
// Rolling up goes by row id, not by time: usage_rollup_state.rolled_id is the
// highest raw id already summed into usage_hourly. A record written late (a
// long stream is recorded when it ends, under its start time) has a higher id
// than everything rolled before it, so it is rolled up later into the hour it
// belongs to; nothing waits for an hour to "close". Queries add the raw rows
// above rolled_id to the rollups, in one read transaction, so a window's
// totals are exact whether or not the roll-up has caught up.
//
// Pruning deletes only rows already rolled up (id <= rolled_id) and older
// than the hour-aligned cutoff, and first records that cutoff
// (pruned_before_ms): a query whose window starts before it reads the whole
// first hour from the rollups instead of a raw edge that is partly gone.
// rollupMigration adds key names and costs per request and the rollups.
const rollupMigration = `ALTER TABLE usage_stats ADD COLUMN key_name TEXT NOT NULL DEFAULT '';
	ALTER TABLE usage_stats ADD COLUMN cost_micros INTEGER;
	DROP INDEX IF EXISTS idx_usage_account;
	DROP INDEX IF EXISTS idx_usage_key;
	CREATE TABLE IF NOT EXISTS usage_hourly (
		hour_ms INTEGER NOT NULL,
		key_hash TEXT NOT NULL,
		key_name TEXT NOT NULL,
		account_id TEXT NOT NULL,
		model TEXT NOT NULL,
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
		PRIMARY KEY (hour_ms, key_hash, key_name, account_id, model, platform, status_class)
	) WITHOUT ROWID;
	CREATE TABLE IF NOT EXISTS usage_daily (
		day_ms INTEGER NOT NULL,
		dim TEXT NOT NULL,
		g1 TEXT NOT NULL,
		g2 TEXT NOT NULL,
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
		PRIMARY KEY (dim, day_ms, g1, g2)
	) WITHOUT ROWID;
	CREATE TABLE IF NOT EXISTS usage_rollup_state (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		rolled_id INTEGER NOT NULL,
		pruned_before_ms INTEGER NOT NULL
	);
	INSERT OR IGNORE INTO usage_rollup_state (id, rolled_id, pruned_before_ms) VALUES (1, 0, 0);`

const (
	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs
)

// dailyDims maps each usage_daily dimension to its two columns in a roll-up
// step's batch table and in usage_hourly (which has the batch's columns but
// the served model: its requests were served as asked, see served.go).
// Constants: the only values put into the SQL text.
var dailyDims = []struct{ dim, batch, hourly string }{
	{"key", "key_name, key_hash", "key_name, key_hash"},
	{"account", "account_id, ''", "account_id, ''"},
	{"model", "model, ''", "model, ''"},
	{"platform", "platform, ''", "platform, ''"},
	{"served_model", servedModelSQL + ", ''", "model, ''"},
}

// dailyColumns and dailyUpsert insert and add to usage_daily rows.
var (
	dailyColumns = `day_ms, dim, g1, g2, ` + dailyMeasureColumns
	dailyUpsert  = ` ON CONFLICT (dim, day_ms, g1, g2) DO UPDATE SET ` + dailyUpsertSet
)

// dailySumSQL sums hourly-shaped rows (usage_hourly's columns) of from
// into usage_daily, one statement per dimension; from ends the FROM clause
// (a table and its WHERE), the batch table's when batch.
func dailySumSQL(from string, batch bool) []string {
	var out []string
	for _, d := range dailyDims {
		cols := d.hourly
		if batch {
			cols = d.batch
		}
		out = append(out, `INSERT INTO usage_daily (`+dailyColumns+`)
	SELECT hour_ms - hour_ms % 86400000, '`+d.dim+`', `+cols+`, `+rollupSums+`
	FROM `+from+` GROUP BY 1, 3, 4`+dailyUpsert)
	}
	return out
}

// dailyFromHourlySQL sums usage_hourly rows of [?, ?) into usage_daily and
// usage_hourly_served (for generated histories whose rollups have no raw
// rows behind them).
func dailyFromHourlySQL() []string {
	const fromHourly = false
	return append(dailySumSQL(`usage_hourly WHERE hour_ms >= ? AND hour_ms < ?`, fromHourly), servedFromHourlySQL)
}

// hourlyKeys are usage_hourly's group columns; hourlyColumns adds the
// measures.
const hourlyKeys = `hour_ms, key_hash, key_name, account_id, model, platform, status_class`

var hourlyColumns = hourlyKeys + `, ` + hourlyMeasureColumns

// A roll-up step reads its raw rows once: it sums them per hour and group
// into rollup_batch (a temporary table of the connection, emptied before
// and after), then adds that to usage_hourly and to each usage_daily
// dimension. Summing the raw rows again for each table cost four more
// passes (BENCHMARKS.md, session 5: 3.4 -> 1.5 µs per row).
var (
	// rollup_batch has usage_hourly's columns and the served model.
	rollupBatchTable = `CREATE TEMP TABLE IF NOT EXISTS rollup_batch (hour_ms INTEGER, key_hash TEXT, key_name TEXT, account_id TEXT,
		model TEXT, platform TEXT, status_class INTEGER, served_model TEXT, ` + rollupBatchMeasures + `)`

	// rollupBatchSQL sums the raw rows with ? < id <= ? per hour and group.
	// status / 100 is the status class: 2 and 3 are successes, 0 (no
	// status) and 4 and up errors, as UsageRow counts them.
	rollupBatchSQL = `INSERT INTO temp.rollup_batch (` + hourlyKeys + `, served_model, ` + hourlyMeasureColumns + `)
	SELECT ts_ms - ts_ms % 3600000, client_api_key_hash, key_name, account_id, model, platform, status / 100, served_model,
		` + hourlyFromRaw + `
	FROM usage_stats WHERE id > ? AND id <= ?
	GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`

	// hourlyFromBatchSQL adds the batch to usage_hourly (the batch rows of
	// one group that differ by served model add up in the upsert).
	hourlyFromBatchSQL = `INSERT INTO usage_hourly (` + hourlyColumns + `)
	SELECT ` + hourlyColumns + ` FROM temp.rollup_batch WHERE true
	ON CONFLICT (` + hourlyKeys + `) DO UPDATE SET ` + hourlyUpsert
)

const rollupBatchClear = `DELETE FROM temp.rollup_batch`

// execer is a transaction or a connection pinned to one (the batch table is
// the connection's own).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// rollupRange sums the raw rows with lo < id <= hi into usage_hourly and
// usage_daily; the caller records hi as rolled up in the same transaction.
func rollupRange(ctx context.Context, ex execer, lo, hi int64) error {
	exec := func(q string, args ...any) error {
		_, err := ex.ExecContext(ctx, q, args...)
		return err
	}
	for _, q := range []string{rollupBatchTable, rollupBatchClear} {
		if err := exec(q); err != nil {
			return err
		}
	}
	if err := exec(rollupBatchSQL, lo, hi); err != nil {
		return err
	}
	const fromBatch = true
	for _, q := range append([]string{hourlyFromBatchSQL, servedFromBatchSQL}, dailySumSQL(`temp.rollup_batch`, fromBatch)...) {
		if err := exec(q); err != nil {
			return err
		}
	}
	return exec(rollupBatchClear)
}

// pruneSQL deletes up to ? rolled-up raw rows older than the cutoff, oldest first.
const pruneSQL = `DELETE FROM usage_stats WHERE id IN (
	SELECT id FROM usage_stats WHERE ts_ms < ? AND id <= ? ORDER BY ts_ms LIMIT ?)`

// RollupStep sums up to maxRows raw usage rows not yet rolled up into the
// hourly rollups, in one short transaction. It returns how many row ids it
// covered (0 when the rollups are up to date).
func (db *DB) RollupStep(ctx context.Context, maxRows int) (int, error) {
	tx, err := db.conn().BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("roll up usage: %w", err)
	}
	defer tx.Rollback()
	var rolled, top int64
	if err := tx.QueryRowContext(ctx, `SELECT rolled_id FROM usage_rollup_state WHERE id = 1`).Scan(&rolled); err != nil {
		return 0, fmt.Errorf("roll up usage: read state: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM usage_stats`).Scan(&top); err != nil {
		return 0, fmt.Errorf("roll up usage: %w", err)
	}
	if top <= rolled {
		return 0, nil
	}
	upper := min(top, rolled+int64(maxRows))
	if err := rollupRange(ctx, tx, rolled, upper); err != nil {
		return 0, fmt.Errorf("roll up usage: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE usage_rollup_state SET rolled_id = ? WHERE id = 1`, upper); err != nil {
		return 0, fmt.Errorf("roll up usage: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("roll up usage: %w", err)
	}
	return int(upper - rolled), nil
}

// PruneStep deletes up to maxRows raw usage rows older than before (rounded
// down to the hour) that are already rolled up, in one short transaction. It
// returns how many it deleted; fewer than maxRows means none is left.
func (db *DB) PruneStep(ctx context.Context, before time.Time, maxRows int) (int, error) {
	cutoff := before.UnixMilli()
	cutoff -= cutoff % hourMs
	tx, err := db.conn().BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("prune usage: %w", err)
	}
	defer tx.Rollback()
	var rolled int64
	if err := tx.QueryRowContext(ctx, `SELECT rolled_id FROM usage_rollup_state WHERE id = 1`).Scan(&rolled); err != nil {
		return 0, fmt.Errorf("prune usage: read state: %w", err)
	}
	// Recorded before the first delete, so a query never reads a raw edge
	// that is partly gone.
	if _, err := tx.ExecContext(ctx, `UPDATE usage_rollup_state SET pruned_before_ms = MAX(pruned_before_ms, ?) WHERE id = 1`, cutoff); err != nil {
		return 0, fmt.Errorf("prune usage: %w", err)
	}
	res, err := tx.ExecContext(ctx, pruneSQL, cutoff, rolled, maxRows)
	if err != nil {
		return 0, fmt.Errorf("prune usage: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune usage: %w", err)
	}
	return int(n), nil
}

// AutoVacuum is the database's auto_vacuum mode.
type AutoVacuum int

// The auto_vacuum modes (SQLite's numbering).
const (
	AutoVacuumNone        AutoVacuum = 0
	AutoVacuumFull        AutoVacuum = 1
	AutoVacuumIncremental AutoVacuum = 2
)

// VacuumInfo describes the file's auto-vacuum mode and free space.
type VacuumInfo struct {
	Mode      AutoVacuum
	PageSize  int64
	Pages     int64
	FreePages int64
}

// Vacuum reads the file's auto-vacuum mode and free space.
func (db *DB) Vacuum(ctx context.Context) (VacuumInfo, error) {
	var v VacuumInfo
	for _, p := range []struct {
		pragma string
		dst    any
	}{{"auto_vacuum", &v.Mode}, {"page_size", &v.PageSize}, {"page_count", &v.Pages}, {"freelist_count", &v.FreePages}} {
		if err := db.conn().QueryRowContext(ctx, `PRAGMA `+p.pragma).Scan(p.dst); err != nil {
			return v, fmt.Errorf("read %s: %w", p.pragma, err)
		}
	}
	return v, nil
}

// IncrementalVacuumStep returns up to pages free pages to the file system
// (incremental auto-vacuum only; a no-op otherwise).
func (db *DB) IncrementalVacuumStep(ctx context.Context, pages int) error {
	// The pragma returns a row per page freed: drain it.
	rows, err := db.conn().QueryContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, pages))
	if err != nil {
		return fmt.Errorf("incremental vacuum: %w", err)
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// EnableIncrementalVacuum switches a database created without auto-vacuum
// to incremental auto-vacuum. SQLite only changes that mode with a full
// VACUUM, which rewrites the file and holds the write lock meanwhile: call it
// only for small files (the relay does below smallVacuumBytes) or with the
// relay stopped.
func (db *DB) EnableIncrementalVacuum(ctx context.Context) error {
	c, err := db.conn().Conn(ctx)
	if err != nil {
		return fmt.Errorf("enable incremental vacuum: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return fmt.Errorf("enable incremental vacuum: %w", err)
	}
	if _, err := c.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("enable incremental vacuum: %w", err)
	}
	return nil
}
