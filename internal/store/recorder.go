package store

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// Recorder writes usage records off the request path: Record only queues;
// a single goroutine writes batches in one transaction each. When the database
// fails, records stay queued (bounded by MaxQueue), the failure is logged once,
// and writing resumes when the database answers again.
type Recorder struct {
	db  *DB
	log *slog.Logger

	mu    sync.Mutex
	queue []usage.Record
	// base is the start of queue's array: an emptied queue starts over
	// in it rather than growing a new one record by record.
	base []usage.Record
	// batch is the writer goroutine's copy of the records it writes.
	batch   []usage.Record
	wake    chan struct{}
	closing chan struct{}
	done    chan struct{}
	dropped int64
	failing bool
	batches int64 // transactions written

	// retention is how long raw usage rows are kept (nanoseconds; see SetRetention).
	retention atomic.Int64
	maint     maintenance
	// reqlog bounds the request log (reqlog.go).
	reqlog requestLimits

	// MaxQueue bounds the records held while the database is failing.
	MaxQueue int
	// BatchSize is the most records written in one transaction.
	BatchSize int
	// RetryEvery is the pause after a failed write.
	RetryEvery time.Duration
	// Linger is how long the writer waits after the first queued record
	// for others to join its batch. One transaction per record costs the
	// relay ~10% of its CPU under a load of many short requests; batching
	// costs a record this much delay before it is on disk (shutdown writes
	// everything queued).
	Linger time.Duration
}

// NewRecorder starts a recorder over db. Every 5 s it also checks that the
// database file still exists (see DB.RecreateIfDeleted).
func NewRecorder(db *DB, log *slog.Logger) *Recorder {
	return newRecorder(db, log, 5*time.Second, maintainEvery)
}

func newRecorder(db *DB, log *slog.Logger, fileCheckEvery, maintainEvery time.Duration) *Recorder {
	r := &Recorder{
		db: db, log: log,
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
		MaxQueue: 200_000, BatchSize: 512, RetryEvery: time.Second, Linger: 100 * time.Millisecond,
	}
	r.retention.Store(int64(DefaultRetention))
	r.SetRequestLog(DefaultRequestLogRetention, DefaultRequestLogMaxRows)
	go r.loop(fileCheckEvery, maintainEvery)
	return r
}

// Record queues one record; it never blocks on the database.
func (r *Recorder) Record(rec usage.Record) {
	r.mu.Lock()
	if len(r.queue) >= r.MaxQueue {
		// Only reachable while the database has been failing for a long time.
		r.queue = r.queue[1:]
		r.dropped++
	}
	c := cap(r.queue)
	r.queue = append(r.queue, rec)
	if cap(r.queue) != c {
		r.base = r.queue[:0] // a new array
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Pending is the number of records not yet written.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// Batches is the number of transactions written so far.
func (r *Recorder) Batches() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

// Healthy reports whether the last write succeeded.
func (r *Recorder) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.failing
}

// Close writes everything queued (bounded by ctx) and stops the writer.
func (r *Recorder) Close(ctx context.Context) error {
	select {
	case <-r.closing:
	default:
		close(r.closing)
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) loop(fileCheckEvery, maintainEvery time.Duration) {
	defer close(r.done)
	check := time.NewTicker(fileCheckEvery)
	defer check.Stop()
	maint := time.NewTicker(maintainEvery)
	defer maint.Stop()
	for {
		select {
		case <-maint.C:
			r.maintain()
		case <-r.wake:
			if r.Linger > 0 && r.Pending() < r.BatchSize {
				t := time.NewTimer(r.Linger)
				select {
				case <-t.C:
				case <-r.closing:
				}
				t.Stop()
			}
		case <-check.C:
			if r.db.Degraded() {
				if ok, _ := r.db.TryWritable(); ok {
					r.log.Info("the database can be written now", "path", r.db.Path())
				}
			}
			if ok, err := r.db.RecreateIfDeleted(context.Background()); ok {
				r.log.Error("the database file was deleted while the relay ran; created a new one at the same path (usage and state written before are gone with the old file)", "path", r.db.Path())
			} else if err != nil {
				r.log.Error("the database file was deleted and could not be recreated; usage stays queued in memory", "path", r.db.Path(), "err", err)
			}
		case <-r.closing:
			for r.flush() {
			}
			if n := r.Pending(); n > 0 {
				r.log.Error("usage records could not be written before shutdown", "records", n)
			}
			return
		}
		for r.flush() {
		}
	}
}

// flush writes one batch. It reports whether more work is ready now.
func (r *Recorder) flush() bool {
	r.mu.Lock()
	n := min(len(r.queue), r.BatchSize)
	if n == 0 {
		r.mu.Unlock()
		return false
	}
	batch := append(r.batch[:0], r.queue[:n]...)
	r.batch = batch
	defer clear(batch) // no strings kept alive by the reused array
	r.mu.Unlock()

	if r.db.Degraded() {
		if ok, _ := r.db.TryWritable(); ok {
			r.log.Info("the database can be written now; writing queued usage", "path", r.db.Path(), "queued", n)
		}
	}
	err := r.db.InsertUsage(context.Background(), batch)

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if !r.failing {
			r.log.Error("usage database write failed; keeping records in memory and retrying", "err", err, "queued", len(r.queue))
		}
		r.failing = true
		r.mu.Unlock()
		select {
		case <-time.After(r.RetryEvery):
		case <-r.closing:
			// On shutdown, try once more and give up.
			if err := r.db.InsertUsage(context.Background(), batch); err != nil {
				r.mu.Lock()
				return false
			}
			r.mu.Lock()
			r.queue = r.queue[min(n, len(r.queue)):]
			return true
		}
		r.mu.Lock()
		return true
	}
	r.batches++
	if r.failing {
		r.log.Info("usage database writable again", "written", n, "still_queued", len(r.queue)-n, "dropped", r.dropped)
		r.failing = false
	}
	// Records dropped from the front while we wrote shift the batch position.
	r.queue = r.queue[min(n, len(r.queue)):]
	if len(r.queue) == 0 {
		// Start over at the front of the array, unless an outage grew it
		// past a few batches.
		r.queue, r.base = r.base[:0], r.base[:0]
		if cap(r.base) > 4*r.BatchSize {
			r.queue, r.base = nil, nil
		}
	}
	return len(r.queue) > 0
}

// InsertUsage writes records in one transaction.
func (db *DB) InsertUsage(ctx context.Context, recs []usage.Record) error {
	tx, err := db.conn().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO usage_stats (created_at, ts_ms, request_id, client_api_key_hash, key_name, account_id, platform, model,
		input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, status, latency_ms, ttfb_ms, stream, attempts, error, cost_micros, served_model)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		tx.Rollback()
		return err
	}
	for _, u := range recs {
		stream := 0
		if u.Stream {
			stream = 1
		}
		key := u.KeyHash
		if key == "" {
			key = usage.Anonymous
		}
		var cost sql.NullInt64 // NULL: unknown, never 0
		if u.CostKnown {
			cost = sql.NullInt64{Int64: u.CostMicros, Valid: true}
		}
		if _, err := stmt.ExecContext(ctx, u.Time.UTC().Format("2006-01-02 15:04:05"), u.Time.UnixMilli(), u.RequestID, key, u.KeyName, u.AccountID, u.Platform, u.Model,
			u.InputTokens, u.OutputTokens, u.CacheCreationTokens, u.CacheReadTokens, u.Status, u.Latency.Milliseconds(), u.TTFB.Milliseconds(), stream, u.Attempts, u.Error, cost,
			storedServedModel(u.Model, u.ServedModel)); err != nil {
			stmt.Close()
			tx.Rollback()
			return err
		}
	}
	stmt.Close()
	if err := insertRequests(ctx, tx, recs); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Totals is an aggregate of usage rows.
type Totals struct {
	Requests            int64 `json:"requests"`
	Errors              int64 `json:"errors"`
	InputTokens         int64 `json:"input_tokens"`
	OutputTokens        int64 `json:"output_tokens"`
	CacheCreationTokens int64 `json:"cache_creation_tokens"`
	CacheReadTokens     int64 `json:"cache_read_tokens"`
}

// AccountTotals sums usage per account since t.
func (db *DB) AccountTotals(ctx context.Context, since time.Time) (map[string]Totals, error) {
	rows, err := db.Usage(ctx, UsageQuery{From: since, By: GroupAccount})
	if err != nil {
		return nil, err
	}
	out := make(map[string]Totals, len(rows))
	for _, r := range rows {
		out[r.Group] = Totals{Requests: r.Requests, Errors: r.Errors, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
			CacheCreationTokens: r.CacheCreationTokens, CacheReadTokens: r.CacheReadTokens}
	}
	return out, nil
}

// UsageRows returns raw usage rows since t (oldest first), for stats and tests.
func (db *DB) UsageRows(ctx context.Context, since time.Time) ([]usage.Record, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT ts_ms, request_id, client_api_key_hash, key_name, account_id, platform, model, input_tokens, output_tokens,
		cache_creation_tokens, cache_read_tokens, status, latency_ms, ttfb_ms, stream, attempts, error, cost_micros, served_model FROM usage_stats WHERE ts_ms >= ? ORDER BY id`, since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []usage.Record
	for rows.Next() {
		var u usage.Record
		var ts, lat, ttfb int64
		var stream int
		var cost sql.NullInt64
		if err := rows.Scan(&ts, &u.RequestID, &u.KeyHash, &u.KeyName, &u.AccountID, &u.Platform, &u.Model, &u.InputTokens, &u.OutputTokens,
			&u.CacheCreationTokens, &u.CacheReadTokens, &u.Status, &lat, &ttfb, &stream, &u.Attempts, &u.Error, &cost, &u.ServedModel); err != nil {
			return nil, err
		}
		u.CostMicros, u.CostKnown = cost.Int64, cost.Valid
		u.Time = time.UnixMilli(ts)
		u.Latency, u.TTFB = time.Duration(lat)*time.Millisecond, time.Duration(ttfb)*time.Millisecond
		u.Stream = stream == 1
		out = append(out, u)
	}
	return out, rows.Err()
}
