package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Cluster is shared state between relays ([cluster] redis_url).
type Cluster interface {
	// Locker is the cross-relay refresh lease.
	Locker() credential.Locker
	// CredentialStore stores rotated tokens where every relay sees them.
	CredentialStore() credential.Store
	// Attach syncs the scheduler's sessions, cooldowns and last-use times.
	Attach(s *scheduler.Scheduler)
	// Health is /health's cluster detail ("ok", "degraded: ...").
	Health() string
	// ID is this relay's id in the cluster (/health's "relay").
	ID() string
	// Close stops syncing.
	Close()
	// The relay reads and writes new conversations' bindings through it.
	relay.SharedSessions
}

var (
	_ Cluster                 = (*cluster.Cluster)(nil)
	_ keysCluster             = (*cluster.Cluster)(nil)
	_ usageCluster            = (*cluster.Cluster)(nil)
	_ admin.ClusterUsage      = (*cluster.UsageShare)(nil)
	_ relay.UsageRecorder     = (*cluster.UsageShare)(nil)
	_ requestCluster          = (*cluster.Cluster)(nil)
	_ relay.UsageRecorder     = (*cluster.RequestShare)(nil)
	_ admin.ClusterRequestLog = clusterRequestLog{}
)

// keysCluster is a cluster that shares the relay keys' limits too: budgets,
// rpm and concurrency hold across the relays on one Redis.
type keysCluster interface {
	AttachKeys(p *policy.Policy)
}

// usageCluster is a cluster that merges usage too (issue 21), so the admin
// API (stats --server, the dashboard) answers for every relay.
type usageCluster interface {
	ShareUsage() *cluster.UsageShare
}

// requestCluster is a cluster that shares the request log too (issue 34),
// so the admin API lists every relay's requests.
type requestCluster interface {
	ShareRequests() *cluster.RequestShare
}

// shareUsage starts merging this relay's usage, and writing its request
// log rows, into the cluster.
func (a *App) shareUsage(cfg *config.Config) {
	if uc, ok := a.cluster.(usageCluster); ok {
		a.clusterUsage = uc.ShareUsage()
	}
	if rc, ok := a.cluster.(requestCluster); ok {
		a.clusterRequests = rc.ShareRequests()
		a.clusterRequests.SetLimits(time.Duration(cfg.Server.RequestLogDays)*24*time.Hour, cfg.Server.RequestLogMaxRows)
	}
}

// teeRecorder records into the store and the cluster's usage buckets and
// request log (either may be nil).
type teeRecorder struct {
	store, cluster, requests relay.UsageRecorder
}

// Record passes r to each.
func (t teeRecorder) Record(r usage.Record) {
	t.store.Record(r)
	if t.cluster != nil {
		t.cluster.Record(r)
	}
	if t.requests != nil {
		t.requests.Record(r)
	}
}

// clusterRequestLog is the cluster's request log as the admin API reads it.
type clusterRequestLog struct{ s *cluster.RequestShare }

// Requests reads one page of the cluster's request log.
func (c clusterRequestLog) Requests(ctx context.Context, q store.RequestQuery) ([]store.RequestRow, int64, bool, error) {
	p, err := c.s.Requests(ctx, q)
	return p.Rows, p.Next, p.Stopped, err
}

// Request reads one row of the cluster's request log.
func (c clusterRequestLog) Request(ctx context.Context, id string) (store.RequestRow, error) {
	return c.s.Request(ctx, id)
}

// Relay is this relay's id in the cluster.
func (c clusterRequestLog) Relay() string { return c.s.Relay() }

// newCluster returns nil when no cluster is configured. An unreachable Redis
// is not an error: the relay starts degraded and syncs when Redis answers.
func newCluster(cfg *config.Config, db *store.DB, log *slog.Logger) (Cluster, error) {
	if cfg.Cluster.RedisURL == "" {
		return nil, nil
	}
	c, err := cluster.New(cfg.Cluster, db, log)
	if err != nil {
		return nil, err
	}
	return c, nil
}
