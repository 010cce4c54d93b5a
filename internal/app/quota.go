package app

import (
	"context"
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
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

// startProbe reads idle subscription accounts' usage endpoints every
// quota_probe_minutes (off when 0). Claude OAuth accounts only for now; a
// Codex (ChatGPT) account type adds its target here with
// quota.CodexUsageRequest and quota.ParseCodexUsage.
func (a *App) startProbe(ctx context.Context) {
	every := time.Duration(a.Config.Scheduler.QuotaProbeMinutes) * time.Minute
	if every <= 0 {
		return
	}
	p := &quota.Prober{Tracker: a.Quota, Every: every}
	for _, up := range a.upstreams {
		if up.Config.Type != config.TypeClaudeOAuth || !up.Config.Enabled {
			continue
		}
		p.Targets = append(p.Targets, quota.ProbeTarget{
			AccountID: up.Config.ID, Client: up.Client, Parse: quota.ParseClaudeUsage,
			NewRequest: func(ctx context.Context) (*http.Request, error) {
				tok, err := up.Token.Token(ctx)
				if err != nil {
					return nil, err
				}
				return quota.ClaudeUsageRequest(ctx, anthropic.BaseURL(up.Config.APIURL), tok)
			},
		})
	}
	if len(p.Targets) == 0 {
		return
	}
	a.bg.Add(1)
	go func() { defer a.bg.Done(); p.Run(ctx) }()
}
