package app

import (
	"log/slog"

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
	// Close stops syncing.
	Close()
	// The relay reads and writes new conversations' bindings through it.
	relay.SharedSessions
}

var (
	_ Cluster             = (*cluster.Cluster)(nil)
	_ keysCluster         = (*cluster.Cluster)(nil)
	_ usageCluster        = (*cluster.Cluster)(nil)
	_ admin.ClusterUsage  = (*cluster.UsageShare)(nil)
	_ relay.UsageRecorder = (*cluster.UsageShare)(nil)
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

// shareUsage starts merging this relay's usage into the cluster.
func (a *App) shareUsage() {
	if uc, ok := a.cluster.(usageCluster); ok {
		a.clusterUsage = uc.ShareUsage()
	}
}

// teeRecorder records into the store and the cluster's usage buckets.
type teeRecorder struct {
	store, cluster relay.UsageRecorder
}

// Record passes r to both.
func (t teeRecorder) Record(r usage.Record) {
	t.store.Record(r)
	t.cluster.Record(r)
}

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
