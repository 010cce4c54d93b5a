package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Compile-time checks of the request log's sources.
var (
	_ admin.RequestLog                      = (*store.DB)(nil)
	_ admin.CaptureControl                  = (*captureControl)(nil)
	_ captureCluster                        = (*cluster.Cluster)(nil)
	_ interface{ SetCaptures(*reqlog.Set) } = (*relay.Relay)(nil)
)

// CapturePollInterval is how often a running relay reads the captures from
// its database (`ccrelay capture on` without --server writes them there,
// and a capture that ran out stops being applied) and, in a cluster, the
// cluster's captures from Redis.
const CapturePollInterval = 2 * time.Second

// captureCluster is a cluster that shares the body captures too: one
// started or stopped through any relay applies on every relay.
type captureCluster interface {
	AddCapture(ctx context.Context, c reqlog.Capture) (reqlog.Capture, error)
	StopCapture(ctx context.Context, id int64, now time.Time) (bool, error)
	Captures(ctx context.Context, now time.Time) ([]reqlog.Capture, error)
	// ReportCaptured writes this relay's count of each capture (Captured).
	ReportCaptured(ctx context.Context, list []reqlog.Capture) error
	ID() string
	// Degraded reports a known outage: Redis is not asked meanwhile.
	Degraded() bool
}

// errClusterDown is the cluster's captures' error during a known outage.
var errClusterDown = errors.New("the cluster's redis is unreachable")

// captureControl keeps the body captures and gives the relay the set in
// force after every change. Without a cluster they are in the database (so
// they survive a restart and the local CLI can set them); in a cluster the
// admin API's are in Redis, applied by every relay, and the relay applies
// its database's too (the local CLI's, applying to it alone).
type captureControl struct {
	db *store.DB
	// cluster is nil without a cluster.
	cluster captureCluster
	// relay applies the set (the *relay.Relay).
	relay interface{ SetCaptures(*reqlog.Set) }
	now   func() time.Time
	log   *slog.Logger
	// mu orders refreshes, so an older read never replaces a newer one, and
	// guards the lists last read.
	mu sync.Mutex
	// local and shared are the database's and the cluster's captures last
	// read: while either cannot be read, its last list stays in force.
	local, shared []reqlog.Capture
	// reported is this relay's count of each cluster capture last written.
	reported map[int64]int64
}

// Captures lists the captures whose bodies are kept: in a cluster, the
// cluster's (with every relay's counts) and this relay's own.
func (cc *captureControl) Captures(ctx context.Context) ([]reqlog.Capture, error) {
	now := cc.now()
	local, err := cc.db.Captures(ctx, now)
	if err != nil || cc.cluster == nil {
		return local, err
	}
	shared, err := cc.sharedCaptures(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("the cluster's captures cannot be read (this relay applies the last ones it read): %w", err)
	}
	return append(shared, cc.markLocal(local)...), nil
}

// sharedCaptures reads the cluster's captures; during a known outage it
// does not wait on Redis.
func (cc *captureControl) sharedCaptures(ctx context.Context, now time.Time) ([]reqlog.Capture, error) {
	if cc.cluster.Degraded() {
		return nil, errClusterDown
	}
	return cc.cluster.Captures(ctx, now)
}

// markLocal names this relay on captures of its own database.
func (cc *captureControl) markLocal(list []reqlog.Capture) []reqlog.Capture {
	for i := range list {
		list[i].LocalTo = cc.cluster.ID()
	}
	return list
}

// StartCapture stores c and applies it at once: in a cluster, for every
// relay; while Redis is unreachable, in this relay's database (LocalTo
// says so).
func (cc *captureControl) StartCapture(ctx context.Context, c reqlog.Capture) (reqlog.Capture, error) {
	if cc.cluster != nil {
		shared, err := c, errClusterDown
		if !cc.cluster.Degraded() {
			shared, err = cc.cluster.AddCapture(ctx, c)
		}
		if err == nil {
			return shared, cc.apply(ctx, inCluster)
		}
		cc.log.Warn("the cluster's Redis is unreachable: the capture applies to this relay only", "err", err)
	}
	c, err := cc.db.AddCapture(ctx, c)
	if err != nil {
		return c, err
	}
	if cc.cluster != nil {
		c.LocalTo = cc.cluster.ID()
	}
	return c, cc.apply(ctx, inDatabase)
}

// StopCapture ends capture id and applies that at once; the cluster's ids
// (from cluster.CaptureIDBase) are stopped for every relay.
func (cc *captureControl) StopCapture(ctx context.Context, id int64) (bool, error) {
	if cc.cluster != nil && id > cluster.CaptureIDBase {
		if cc.cluster.Degraded() {
			return false, errClusterDown
		}
		ok, err := cc.cluster.StopCapture(ctx, id, cc.now())
		if err != nil || !ok {
			return ok, err
		}
		return true, cc.apply(ctx, inCluster)
	}
	ok, err := cc.db.StopCapture(ctx, id, cc.now())
	if err != nil || !ok {
		return ok, err
	}
	return true, cc.apply(ctx, inDatabase)
}

// Where a change was made: a change in the database is applied even when
// the cluster's captures cannot be read (the last ones read stay).
const (
	inCluster  = true
	inDatabase = false
)

// apply refreshes after a change; the cluster's read failing matters only
// for a change made in the cluster.
func (cc *captureControl) apply(ctx context.Context, changedInCluster bool) error {
	dbErr, clusterErr := cc.refresh(ctx)
	if changedInCluster {
		return errors.Join(dbErr, clusterErr)
	}
	return dbErr
}

// refresh gives the relay the captures in force now. A list that cannot be
// read keeps the last one read (captures in it still run out at Until).
func (cc *captureControl) refresh(ctx context.Context) (dbErr, clusterErr error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	now := cc.now()
	if local, err := cc.db.Captures(ctx, now); err != nil {
		dbErr = fmt.Errorf("the database: %w", err)
	} else {
		cc.local = local
	}
	if cc.cluster != nil {
		if shared, err := cc.sharedCaptures(ctx, now); err != nil {
			clusterErr = fmt.Errorf("the cluster: %w", err)
		} else {
			cc.shared = shared
			clusterErr = cc.report(ctx, shared)
		}
	}
	cc.relay.SetCaptures(reqlog.NewSet(append(slices.Clone(cc.shared), cc.local...), now))
	return dbErr, clusterErr
}

// report writes how many requests this relay captured for each of the
// cluster's captures, when that changed.
func (cc *captureControl) report(ctx context.Context, shared []reqlog.Capture) error {
	ids := make([]int64, len(shared))
	for i, c := range shared {
		ids[i] = c.ID
	}
	counts, err := cc.db.CapturedCounts(ctx, ids)
	if err != nil {
		return err
	}
	var changed []reqlog.Capture
	latest := make(map[int64]int64, len(shared))
	for _, c := range shared {
		latest[c.ID] = counts[c.ID]
		if n, seen := cc.reported[c.ID]; !seen || n != counts[c.ID] {
			c.Captured = counts[c.ID]
			changed = append(changed, c)
		}
	}
	if err := cc.cluster.ReportCaptured(ctx, changed); err != nil {
		return err
	}
	cc.reported = latest
	return nil
}

// wireRequestLog builds the capture control; the request log itself rides
// the usage recorder.
func (a *App) wireRequestLog() {
	a.captures = &captureControl{db: a.DB, relay: a.Relay, now: time.Now, log: a.Log}
	if cc, ok := a.cluster.(captureCluster); ok {
		a.captures.cluster = cc
	}
}

// runCaptures applies the captures in force until ctx ends.
func (a *App) runCaptures(ctx context.Context) {
	warned := false
	t := time.NewTicker(CapturePollInterval)
	defer t.Stop()
	for {
		dbErr, clusterErr := a.captures.refresh(ctx)
		if err := errors.Join(dbErr, clusterErr); err != nil && !warned && ctx.Err() == nil {
			a.Log.Warn("could not read the body captures; the last ones read stay in force", "err", err)
			warned = true
		} else if err == nil {
			warned = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
