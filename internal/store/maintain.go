package store

import (
	"context"
	"time"
)

// DefaultRetention is how long raw usage rows are kept unless SetRetention
// says otherwise (server.usage_retention_days defaults to 90).
const DefaultRetention = 90 * 24 * time.Hour

// The usage writer's maintenance: every maintainEvery it rolls up, prunes
// and vacuums in steps of these sizes, each step one short transaction, and
// writes the queued usage between steps, so a record never waits behind more
// than one step (a few ms; BENCHMARKS.md has the measured times).
const (
	maintainEvery = 10 * time.Second
	rollupBatch   = 2000
	pruneBatch    = 2000
	vacuumPages   = 256
	// smallVacuumBytes: a database created without incremental auto-vacuum
	// and smaller than this is switched with one VACUUM (well under a second
	// at this size); a larger one keeps reusing its free pages without
	// shrinking, and the log says how to switch it with the relay stopped.
	smallVacuumBytes = 64 << 20
)

// maintenance is the writer goroutine's own state (only it touches it).
type maintenance struct {
	vacuumChecked bool
	failing       bool
}

// SetRetention sets how long raw usage rows are kept (rows older than this
// survive only in the hourly rollups). It may be called at any time, e.g. on
// a config reload; d <= 0 is ignored.
func (r *Recorder) SetRetention(d time.Duration) {
	if d > 0 {
		r.retention.Store(int64(d))
	}
}

// Maintain runs one round of maintenance now (roll-up, pruning, vacuum) on
// the writer goroutine's behalf; for tests and tools. It must not run while
// the recorder's own goroutine could (use it on a database without one).
func Maintain(ctx context.Context, db *DB, retention time.Duration, now time.Time) error {
	for {
		n, err := db.RollupStep(ctx, rollupBatch)
		if err != nil {
			return err
		}
		if n < rollupBatch {
			break
		}
	}
	for {
		n, err := db.PruneStep(ctx, now.Add(-retention), pruneBatch)
		if err != nil {
			return err
		}
		if n < pruneBatch {
			break
		}
	}
	for {
		n, err := db.PruneRequestsStep(ctx, now.Add(-DefaultRequestLogRetention), now, DefaultRequestLogMaxRows, pruneBatch)
		if err != nil {
			return err
		}
		if n < pruneBatch {
			break
		}
	}
	return nil
}

// maintain runs on the writer goroutine: roll up, prune, then return free
// pages to the file system, in steps, writing queued usage between steps.
func (r *Recorder) maintain() {
	if r.db.Degraded() {
		return
	}
	ctx := context.Background()
	// between writes what queued meanwhile; false: stop (closing, or the
	// database is failing).
	between := func() bool {
		for r.flush() {
		}
		select {
		case <-r.closing:
			return false
		default:
			return r.Healthy()
		}
	}
	step := func(run func() (int, error), full int) bool {
		for {
			n, err := run()
			if err != nil {
				if !r.maint.failing {
					r.log.Warn("usage roll-up or pruning failed; retrying later", "err", err)
				}
				r.maint.failing = true
				return false
			}
			if !between() {
				return false
			}
			if n < full {
				return true
			}
		}
	}
	if !step(func() (int, error) { return r.db.RollupStep(ctx, rollupBatch) }, rollupBatch) {
		return
	}
	cutoff := time.Now().Add(-time.Duration(r.retention.Load()))
	if !step(func() (int, error) { return r.db.PruneStep(ctx, cutoff, pruneBatch) }, pruneBatch) {
		return
	}
	if !step(r.pruneRequests(ctx), pruneBatch) {
		return
	}
	if r.maint.failing {
		r.log.Info("usage roll-up and pruning work again")
		r.maint.failing = false
	}
	r.vacuum(ctx, between)
}

// vacuum returns free pages to the file system in small steps, and once per
// run switches a small database created without incremental auto-vacuum.
func (r *Recorder) vacuum(ctx context.Context, between func() bool) {
	info, err := r.db.Vacuum(ctx)
	if err != nil {
		return
	}
	if !r.maint.vacuumChecked {
		r.maint.vacuumChecked = true
		if info.Mode != AutoVacuumIncremental {
			size := info.Pages * info.PageSize
			if size >= smallVacuumBytes {
				r.log.Info("the usage database was created without incremental auto-vacuum: pruned space is reused but the file does not shrink; to switch it, stop the relay and run: sqlite3 <database_path> 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'",
					"path", r.db.Path(), "size_mb", size>>20)
				return
			}
			if err := r.db.EnableIncrementalVacuum(ctx); err != nil {
				r.log.Warn("could not switch the database to incremental auto-vacuum", "path", r.db.Path(), "err", err)
				return
			}
			r.log.Info("switched the database to incremental auto-vacuum", "path", r.db.Path())
			return
		}
	}
	for free := info.FreePages; free > 0 && info.Mode == AutoVacuumIncremental; free -= vacuumPages {
		if err := r.db.IncrementalVacuumStep(ctx, vacuumPages); err != nil || !between() {
			return
		}
	}
}
