package app

import (
	"context"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Compile-time checks of the quota interfaces.
var (
	_ relay.QuotaObserver   = (*quota.Tracker)(nil)
	_ scheduler.QuotaSource = (*quota.Tracker)(nil)
	_ quota.Persister       = (*store.DB)(nil)
	_ quotaCluster          = (*cluster.Cluster)(nil)
)

// quotaCluster is a cluster that shares quota numbers too.
type quotaCluster interface {
	AttachQuota(t *quota.Tracker)
}

// wireQuota builds the quota tracker: restored from the database, fed by the
// relay, shared through the cluster, weighed by the scheduler.
func (a *App) wireQuota(ctx context.Context) {
	cfg := a.Config
	a.Quota = quota.NewTracker(a.DB, a.Log)
	if snaps, err := a.DB.Quotas(ctx); err != nil {
		a.Log.Warn("could not load saved quota numbers; they come back with the next answers", "err", err)
	} else {
		a.Quota.Restore(snaps)
	}
	for _, acct := range a.Sched.Accounts() {
		acct.PlanOnly = cfg.PlanOnlyFor(&cfg.Accounts[acct.Index])
	}
	sc := cfg.Scheduler
	a.Sched.SetQuota(scheduler.QuotaPolicy{
		Source: a.Quota, Headroom: sc.Spread == config.SpreadHeadroom, SoftLimit: sc.SoftLimit, HardLimit: sc.HardLimit,
	})
	a.Relay.SetQuotaObserver(a.Quota)
	if qc, ok := a.cluster.(quotaCluster); ok {
		qc.AttachQuota(a.Quota)
	}
}
