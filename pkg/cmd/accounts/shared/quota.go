package shared

import (
	"context"
	"fmt"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/store"
)

// quotas reads the accounts' latest numbers: the cluster's when one is
// configured, else the database's.
func quotas(ctx context.Context, cfg *config.Config, db *store.DB) (map[string]quota.Snapshot, error) {
	if cfg.Cluster.RedisURL != "" {
		adm, err := cluster.Dial(ctx, cfg.Cluster)
		if err != nil {
			return nil, err
		}
		defer adm.Close()
		q, err := adm.Quotas(ctx)
		if err != nil {
			return nil, fmt.Errorf("read shared quota: %w", err)
		}
		return q, nil
	}
	if db == nil {
		return nil, nil
	}
	q, err := db.Quotas(ctx)
	if err != nil {
		return nil, fmt.Errorf("read quota: %w", err)
	}
	return q, nil
}
