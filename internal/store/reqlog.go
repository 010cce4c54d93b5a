package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// The request log: one row per request (request_log), written with its
// usage row in the same batched transaction; the bodies a capture took
// (request_bodies); the captures themselves (captures, capture.go). Kept
// for request_log_days and at most request_log_max_rows rows.

// requestLogMigration adds the request log's tables. request_id has no index
// on purpose: request ids are random, and keeping a B-tree of random keys
// dirtied pages all over it on every batch (relaybench, 4 KB at c=64: 0.89x
// the relay's CPU per request and 1.2 fewer read+write syscalls without
// it). A lookup by request id reads the newest rows first and stops at the
// match; the log holds at most request_log_max_rows rows.
const requestLogMigration = `CREATE TABLE IF NOT EXISTS request_log (
		id INTEGER PRIMARY KEY,
		ts_ms INTEGER NOT NULL,
		request_id TEXT NOT NULL DEFAULT '',
		key_name TEXT NOT NULL DEFAULT '',
		user_agent TEXT NOT NULL DEFAULT '',
		client_addr TEXT NOT NULL DEFAULT '',
		route TEXT NOT NULL DEFAULT '',
		dialect TEXT NOT NULL DEFAULT '',
		platform TEXT NOT NULL DEFAULT '',
		model TEXT NOT NULL DEFAULT '',
		served_model TEXT NOT NULL DEFAULT '',
		account_id TEXT NOT NULL DEFAULT '',
		status INTEGER NOT NULL DEFAULT 0,
		error TEXT NOT NULL DEFAULT '',
		attempts INTEGER NOT NULL DEFAULT 0,
		attempts_json TEXT NOT NULL DEFAULT '',
		input_tokens INTEGER NOT NULL DEFAULT 0,
		output_tokens INTEGER NOT NULL DEFAULT 0,
		cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
		cache_read_tokens INTEGER NOT NULL DEFAULT 0,
		cost_micros INTEGER,
		queue_ms INTEGER NOT NULL DEFAULT 0,
		ttfb_ms INTEGER NOT NULL DEFAULT 0,
		latency_ms INTEGER NOT NULL DEFAULT 0,
		stream INTEGER NOT NULL DEFAULT 0,
		captured INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX IF NOT EXISTS idx_reqlog_ts ON request_log(ts_ms);
	CREATE INDEX IF NOT EXISTS idx_reqlog_key ON request_log(key_name, id);
	CREATE INDEX IF NOT EXISTS idx_reqlog_account ON request_log(account_id, id);
	CREATE INDEX IF NOT EXISTS idx_reqlog_notable ON request_log(id) WHERE status >= 400 OR attempts > 1;
	CREATE TABLE IF NOT EXISTS request_bodies (
		request_id TEXT PRIMARY KEY,
		capture_id INTEGER NOT NULL,
		ts_ms INTEGER NOT NULL,
		expires_ms INTEGER NOT NULL,
		request_header TEXT NOT NULL DEFAULT '',
		request BLOB,
		response BLOB,
		request_truncated INTEGER NOT NULL DEFAULT 0,
		response_truncated INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX IF NOT EXISTS idx_bodies_expires ON request_bodies(expires_ms);
	CREATE INDEX IF NOT EXISTS idx_bodies_capture ON request_bodies(capture_id);
	CREATE TABLE IF NOT EXISTS captures (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		key_name TEXT NOT NULL DEFAULT '',
		account_id TEXT NOT NULL DEFAULT '',
		errors_only INTEGER NOT NULL DEFAULT 0,
		sample_rate REAL NOT NULL DEFAULT 1,
		max_body_bytes INTEGER NOT NULL DEFAULT 0,
		created_ms INTEGER NOT NULL,
		until_ms INTEGER NOT NULL,
		keep_ms INTEGER NOT NULL,
		stopped INTEGER NOT NULL DEFAULT 0
	);`

// Request log defaults (server.request_log_days, request_log_max_rows).
const (
	DefaultRequestLogRetention = 7 * 24 * time.Hour
	DefaultRequestLogMaxRows   = 500_000
)

// Bounds on client-controlled text a request log row keeps.
const (
	maxUserAgent = 256
	maxRoute     = 256
)

// requestLimits are the request log's bounds, set at any time (a reload).
type requestLimits struct {
	retention atomic.Int64 // nanoseconds
	maxRows   atomic.Int64
}

// SetRequestLog sets how long request log rows are kept and how many at
// most; values <= 0 are ignored.
func (r *Recorder) SetRequestLog(retention time.Duration, maxRows int) {
	if retention > 0 {
		r.reqlog.retention.Store(int64(retention))
	}
	if maxRows > 0 {
		r.reqlog.maxRows.Store(int64(maxRows))
	}
}

// AttemptRow is one attempt as stored and served.
type AttemptRow struct {
	Account string `json:"account"`
	// Target is the route target the attempt served ("openai:gpt-5"), and
	// Fallback why the targets before it were passed over; both "" without
	// routing.
	Target   string `json:"target,omitempty"`
	Fallback string `json:"fallback,omitempty"`
	Status   int    `json:"status"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	// EndMs is when the attempt ended, in ms from the request's arrival.
	EndMs int64 `json:"end_ms"`
}

func attemptRows(rec *usage.Record) []AttemptRow {
	as := rec.Request.Attempts(rec.Attempts)
	out := make([]AttemptRow, len(as))
	for i, a := range as {
		out[i] = AttemptRow{Account: a.Account, Target: a.Target, Fallback: a.Fallback, Status: a.Status, Verdict: a.Verdict, Reason: a.Reason, Message: a.Message, EndMs: a.End.Milliseconds()}
	}
	return out
}

const insertRequestSQL = `INSERT INTO request_log (ts_ms, request_id, key_name, user_agent, client_addr, route, dialect, platform, model, served_model,
	account_id, status, error, attempts, attempts_json, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_micros,
	queue_ms, ttfb_ms, latency_ms, stream, captured) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertBodiesSQL = `INSERT OR REPLACE INTO request_bodies (request_id, capture_id, ts_ms, expires_ms, request_header, request, response,
	request_truncated, response_truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertRequests writes the request log rows of recs (and captured bodies)
// in tx, the usage rows' transaction.
func insertRequests(ctx context.Context, tx *sql.Tx, recs []usage.Record) error {
	stmt, err := tx.PrepareContext(ctx, insertRequestSQL)
	if err != nil {
		return fmt.Errorf("request log: %w", err)
	}
	defer stmt.Close()
	var bodies *sql.Stmt
	for i := range recs {
		u := &recs[i]
		aj, err := json.Marshal(attemptRows(u))
		if err != nil {
			return fmt.Errorf("request log: %w", err)
		}
		var cost sql.NullInt64
		if u.CostKnown {
			cost = sql.NullInt64{Int64: u.CostMicros, Valid: true}
		}
		addr := ""
		if u.ClientAddr.IsValid() {
			addr = u.ClientAddr.String()
		}
		if _, err := stmt.ExecContext(ctx, u.Time.UnixMilli(), u.RequestID, keyLabel(u), truncate(u.UserAgent, maxUserAgent), addr,
			truncate(u.Route, maxRoute), u.Dialect, u.Platform, u.Model, storedServedModel(u.Model, u.ServedModel), u.AccountID, u.Status, u.Error, u.Attempts, string(aj),
			u.InputTokens, u.OutputTokens, u.CacheCreationTokens, u.CacheReadTokens, cost, u.QueueWait.Milliseconds(), u.TTFB.Milliseconds(),
			u.Latency.Milliseconds(), boolInt(u.Stream), boolInt(u.Bodies != nil)); err != nil {
			return fmt.Errorf("request log: %w", err)
		}
		if b := u.Bodies; b != nil {
			if bodies == nil {
				if bodies, err = tx.PrepareContext(ctx, insertBodiesSQL); err != nil {
					return fmt.Errorf("request bodies: %w", err)
				}
				defer bodies.Close()
			}
			if _, err := bodies.ExecContext(ctx, u.RequestID, b.CaptureID, u.Time.UnixMilli(), b.Expires.UnixMilli(), b.RequestHeader,
				b.Request, b.Response, boolInt(b.RequestTruncated), boolInt(b.ResponseTruncated)); err != nil {
				return fmt.Errorf("request bodies: %w", err)
			}
		}
	}
	return nil
}

// keyLabel is the key a request log row names: the key's name, else the
// start of its hash (an unnamed api_keys entry), else "" (auth off).
func keyLabel(u *usage.Record) string {
	if u.KeyName != "" {
		return u.KeyName
	}
	if u.KeyHash != "" && u.KeyHash != usage.Anonymous && len(u.KeyHash) >= 12 {
		return "sha256:" + u.KeyHash[:12]
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PruneRequestsStep deletes up to batch request log rows older than before
// or beyond the newest maxRows, and captured bodies past their expiry or
// whose row is gone. It reports how many rows it deleted.
func (db *DB) PruneRequestsStep(ctx context.Context, before, now time.Time, maxRows, batch int) (int, error) {
	var top int64
	if err := db.conn().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM request_log`).Scan(&top); err != nil {
		return 0, fmt.Errorf("prune request log: %w", err)
	}
	res, err := db.conn().ExecContext(ctx, `DELETE FROM request_log WHERE id IN (
		SELECT id FROM request_log WHERE ts_ms < ? UNION SELECT id FROM request_log WHERE id <= ? LIMIT ?)`,
		before.UnixMilli(), top-int64(maxRows), batch)
	if err != nil {
		return 0, fmt.Errorf("prune request log: %w", err)
	}
	n, _ := res.RowsAffected()
	res, err = db.conn().ExecContext(ctx, `DELETE FROM request_bodies WHERE rowid IN (
		SELECT rowid FROM request_bodies WHERE expires_ms < ? OR ts_ms < ? LIMIT ?)`, now.UnixMilli(), before.UnixMilli(), batch)
	if err != nil {
		return 0, fmt.Errorf("prune captured bodies: %w", err)
	}
	m, _ := res.RowsAffected()
	if _, err := db.conn().ExecContext(ctx, `DELETE FROM captures WHERE until_ms + keep_ms < ?`, now.Add(-DefaultRequestLogRetention).UnixMilli()); err != nil {
		return 0, fmt.Errorf("prune captures: %w", err)
	}
	return int(max(n, m)), nil
}

// pruneRequests is the writer's request log pruning step, at its bounds now.
func (r *Recorder) pruneRequests(ctx context.Context) func() (int, error) {
	return func() (int, error) {
		now := time.Now()
		before := now.Add(-time.Duration(r.reqlog.retention.Load()))
		return r.db.PruneRequestsStep(ctx, before, now, int(r.reqlog.maxRows.Load()), pruneBatch)
	}
}

// RequestRowOf is the request log row rec is stored as, as Requests reads
// it back (Seq 0: the row is not stored yet). The cluster's shared index
// (internal/cluster) keeps these rows for every relay.
func RequestRowOf(rec *usage.Record) RequestRow {
	r := RequestRow{
		ID: rec.RequestID, Time: time.UnixMilli(rec.Time.UnixMilli()).UTC(), Key: keyLabel(rec),
		UserAgent: truncate(rec.UserAgent, maxUserAgent), Route: truncate(rec.Route, maxRoute), Dialect: rec.Dialect,
		Platform: rec.Platform, Model: rec.Model, ServedModel: storedServedModel(rec.Model, rec.ServedModel),
		Account: rec.AccountID, Status: rec.Status, Error: rec.Error, Attempts: attemptRows(rec),
		InputTokens: rec.InputTokens, OutputTokens: rec.OutputTokens, CacheCreationTokens: rec.CacheCreationTokens,
		CacheReadTokens: rec.CacheReadTokens, QueueMs: rec.QueueWait.Milliseconds(), TTFBMs: rec.TTFB.Milliseconds(),
		LatencyMs: rec.Latency.Milliseconds(), Stream: rec.Stream, Captured: rec.Bodies != nil,
	}
	if rec.ClientAddr.IsValid() {
		r.Client = rec.ClientAddr.String()
	}
	if rec.CostKnown {
		usd := float64(rec.CostMicros) / 1e6
		r.CostUSD = &usd
	}
	return r
}
