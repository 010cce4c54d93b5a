package app

import (
	"log/slog"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
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
}

// newCluster returns nil when no cluster is configured.
func newCluster(cfg *config.Config, db *store.DB, log *slog.Logger) (Cluster, error) {
	if cfg.Cluster.RedisURL == "" {
		return nil, nil
	}
	return nil, errClusterUnavailable
}

type errString string

func (e errString) Error() string { return string(e) }

const errClusterUnavailable = errString("[cluster] redis_url is set but this build has no cluster support yet")
