package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/reqlog"
)

// AddCapture stores a new capture and returns it with its id.
func (db *DB) AddCapture(ctx context.Context, c reqlog.Capture) (reqlog.Capture, error) {
	res, err := db.conn().ExecContext(ctx, `INSERT INTO captures (key_name, account_id, errors_only, sample_rate, max_body_bytes, created_ms, until_ms, keep_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.Key, c.Account, boolInt(c.ErrorsOnly), c.SampleRate, c.MaxBodyBytes,
		c.Created.UnixMilli(), c.Until.UnixMilli(), c.Keep.Milliseconds())
	if err != nil {
		return c, fmt.Errorf("save capture: %w", err)
	}
	c.ID, err = res.LastInsertId()
	return c, err
}

// StopCapture ends capture id at now; false when there is no such capture
// still running.
func (db *DB) StopCapture(ctx context.Context, id int64, now time.Time) (bool, error) {
	res, err := db.conn().ExecContext(ctx, `UPDATE captures SET stopped = 1, until_ms = MIN(until_ms, ?) WHERE id = ? AND stopped = 0 AND until_ms > ?`,
		now.UnixMilli(), id, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("stop capture %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Captures lists the captures whose bodies are still kept (running ones
// and ended ones within their keep time), newest first, with how many
// requests each stored.
func (db *DB) Captures(ctx context.Context, now time.Time) ([]reqlog.Capture, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT c.id, c.key_name, c.account_id, c.errors_only, c.sample_rate, c.max_body_bytes, c.created_ms,
		c.until_ms, c.keep_ms, c.stopped, (SELECT COUNT(*) FROM request_bodies b WHERE b.capture_id = c.id)
		FROM captures c WHERE c.until_ms + c.keep_ms > ? ORDER BY c.id DESC`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read captures: %w", err)
	}
	defer rows.Close()
	out := []reqlog.Capture{}
	for rows.Next() {
		var c reqlog.Capture
		var eo, stopped int
		var created, until, keep int64
		if err := rows.Scan(&c.ID, &c.Key, &c.Account, &eo, &c.SampleRate, &c.MaxBodyBytes, &created, &until, &keep, &stopped, &c.Captured); err != nil {
			return nil, fmt.Errorf("read captures: %w", err)
		}
		c.ErrorsOnly, c.Stopped = eo == 1, stopped == 1
		c.Created, c.Until = time.UnixMilli(created).UTC(), time.UnixMilli(until).UTC()
		c.Keep = time.Duration(keep) * time.Millisecond
		c.KeepSeconds = int64(c.Keep / time.Second)
		out = append(out, c)
	}
	return out, rows.Err()
}

// CapturedCounts returns how many requests' bodies this database holds for
// each capture in ids (absent: none), for captures kept elsewhere (a
// cluster's, in Redis).
func (db *DB) CapturedCounts(ctx context.Context, ids []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.conn().QueryContext(ctx, `SELECT capture_id, COUNT(*) FROM request_bodies WHERE capture_id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`) GROUP BY capture_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("count captured bodies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count captured bodies: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
