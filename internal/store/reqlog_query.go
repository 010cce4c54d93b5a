package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RequestQuery selects request log rows, newest first.
type RequestQuery struct {
	// Key, Account and Model match exactly; Account matches any attempt's
	// account, so a request that failed over from it is found.
	Key, Account, Model string
	// Status matches exactly; 0 = any.
	Status int
	// Errors keeps requests that ended with status 400 or more.
	Errors bool
	// From and Until bound the arrival time; zero = open.
	From, Until time.Time
	// Before pages back: rows with Seq < Before (0 = from the newest).
	Before int64
	// After follows: rows with Seq > After, oldest first (for --follow).
	After int64
	// Limit is the most rows returned; 0 = 100, at most 1000.
	Limit int
}

// MaxRequestPage is the most rows one page holds.
const MaxRequestPage = 1000

// RequestRow is one request log row.
type RequestRow struct {
	// Seq orders rows (paging cursors); ID is the request id the client saw
	// in X-Relay-Request-Id.
	Seq       int64     `json:"seq"`
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Key       string    `json:"key"`
	UserAgent string    `json:"user_agent"`
	Client    string    `json:"client"`
	Route     string    `json:"route"`
	Dialect   string    `json:"dialect"`
	Platform  string    `json:"platform"`
	Model     string    `json:"model"`
	// ServedModel is the model sent upstream when a route or the [models]
	// map rewrote the model asked; "" when it was served as asked.
	ServedModel string `json:"served_model,omitempty"`
	// Account served the request (the last tried).
	Account  string       `json:"account"`
	Status   int          `json:"status"`
	Error    string       `json:"error,omitempty"`
	Attempts []AttemptRow `json:"attempts"`

	InputTokens         int64 `json:"input_tokens"`
	OutputTokens        int64 `json:"output_tokens"`
	CacheCreationTokens int64 `json:"cache_creation_tokens"`
	CacheReadTokens     int64 `json:"cache_read_tokens"`
	// CostUSD is nil when the model has no price.
	CostUSD   *float64 `json:"cost_usd"`
	QueueMs   int64    `json:"queue_ms"`
	TTFBMs    int64    `json:"ttfb_ms"`
	LatencyMs int64    `json:"latency_ms"`
	Stream    bool     `json:"stream"`
	// Captured says a capture stored this request's bodies.
	Captured bool `json:"captured"`
	// Relay is the relay of a cluster that served the request (and holds
	// its captured bodies) when the row was read from the cluster's shared
	// request log (internal/cluster); "" in a relay's own database.
	Relay string `json:"relay,omitempty"`
}

// CapturedBodies are the bodies a capture stored for one request.
type CapturedBodies struct {
	CaptureID         int64     `json:"capture_id"`
	RequestHeader     string    `json:"request_header"`
	Request           string    `json:"request"`
	Response          string    `json:"response"`
	RequestTruncated  bool      `json:"request_truncated"`
	ResponseTruncated bool      `json:"response_truncated"`
	Expires           time.Time `json:"expires"`
}

// RequestDetail is one request with its captured bodies (nil when none).
type RequestDetail struct {
	RequestRow
	Bodies *CapturedBodies `json:"bodies"`
}

const requestColumns = `id, ts_ms, request_id, key_name, user_agent, client_addr, route, dialect, platform, model, served_model, account_id,
	status, error, attempts_json, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_micros, queue_ms, ttfb_ms,
	latency_ms, stream, captured`

// notable is the partial index's condition: a query that ANDs it in can
// read idx_reqlog_notable.
const notable = `(status >= 400 OR attempts > 1)`

// Requests returns the rows q selects.
func (db *DB) Requests(ctx context.Context, q RequestQuery) ([]RequestRow, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.Key != "" {
		add(`key_name = ?`, q.Key)
	}
	if q.Account != "" {
		// The served account by its index; accounts left in a failover in
		// the (few) notable rows' attempts.
		add(`id IN (SELECT id FROM request_log WHERE account_id = ? UNION
			SELECT id FROM request_log WHERE `+notable+` AND attempts > 1 AND instr(attempts_json, ?) > 0)`, q.Account, accountNeedle(q.Account))
	}
	if q.Model != "" {
		add(`(model = ? OR served_model = ?)`, q.Model, q.Model)
	}
	if q.Status != 0 {
		add(`status = ?`, q.Status)
	}
	if q.Errors {
		add(notable + ` AND status >= 400`)
	}
	if !q.From.IsZero() {
		add(`ts_ms >= ?`, q.From.UnixMilli())
	}
	if !q.Until.IsZero() {
		add(`ts_ms < ?`, q.Until.UnixMilli())
	}
	order := "DESC"
	switch {
	case q.After > 0:
		add(`id > ?`, q.After)
		order = "ASC"
	case q.Before > 0:
		add(`id < ?`, q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxRequestPage)
	sqlText := `SELECT ` + requestColumns + ` FROM request_log`
	if len(where) > 0 {
		sqlText += ` WHERE ` + strings.Join(where, ` AND `)
	}
	sqlText += ` ORDER BY id ` + order + ` LIMIT ?`
	args = append(args, limit)
	rows, err := db.conn().QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("read request log: %w", err)
	}
	defer rows.Close()
	out := []RequestRow{}
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// accountNeedle is how an attempt naming account appears in attempts_json.
func accountNeedle(account string) string {
	b, _ := json.Marshal(account)
	return `"account":` + string(b)
}

type scanner interface{ Scan(dest ...any) error }

func scanRequest(s scanner) (RequestRow, error) {
	var r RequestRow
	var ts int64
	var aj string
	var cost sql.NullInt64
	var stream, captured int
	if err := s.Scan(&r.Seq, &ts, &r.ID, &r.Key, &r.UserAgent, &r.Client, &r.Route, &r.Dialect, &r.Platform, &r.Model, &r.ServedModel,
		&r.Account, &r.Status, &r.Error, &aj, &r.InputTokens, &r.OutputTokens, &r.CacheCreationTokens, &r.CacheReadTokens, &cost,
		&r.QueueMs, &r.TTFBMs, &r.LatencyMs, &stream, &captured); err != nil {
		return r, fmt.Errorf("read request log: %w", err)
	}
	r.Time = time.UnixMilli(ts).UTC()
	r.Stream, r.Captured = stream == 1, captured == 1
	if cost.Valid {
		usd := float64(cost.Int64) / 1e6
		r.CostUSD = &usd
	}
	r.Attempts = []AttemptRow{}
	if aj != "" {
		if err := json.Unmarshal([]byte(aj), &r.Attempts); err != nil {
			return r, fmt.Errorf("read request %s attempts: %w", r.ID, err)
		}
	}
	return r, nil
}

// Request returns one request by its request id (or its seq as a number),
// with its captured bodies; ErrNoRow when the log has no such request. The
// request id is not indexed (see requestLogMigration): the newest rows are
// read first, so a recent request is found at once and a missing one costs
// one pass over the log.
func (db *DB) Request(ctx context.Context, id string) (RequestDetail, error) {
	var d RequestDetail
	row := db.conn().QueryRowContext(ctx, `SELECT `+requestColumns+` FROM request_log WHERE request_id = ? ORDER BY id DESC LIMIT 1`, id)
	r, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNoRow
	}
	if err != nil {
		return d, err
	}
	d.RequestRow = r
	if !r.Captured {
		return d, nil
	}
	var b CapturedBodies
	var req, resp []byte
	var rt, st int
	var exp int64
	err = db.conn().QueryRowContext(ctx, `SELECT capture_id, request_header, request, response, request_truncated, response_truncated, expires_ms
		FROM request_bodies WHERE request_id = ?`, id).Scan(&b.CaptureID, &b.RequestHeader, &req, &resp, &rt, &st, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return d, nil // expired and deleted
	case err != nil:
		return d, fmt.Errorf("read captured bodies: %w", err)
	}
	b.Request, b.Response = string(req), string(resp)
	b.RequestTruncated, b.ResponseTruncated = rt == 1, st == 1
	b.Expires = time.UnixMilli(exp).UTC()
	d.Bodies = &b
	return d, nil
}
