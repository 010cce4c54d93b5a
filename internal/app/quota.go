package app

import (
	"context"
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/alerts"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/metrics"
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
	a.SetQuotaSource(quotaMetrics{a.Quota})
	a.Quota.AddObserver(quotaAlerts{a.Alerts()})
	if qc, ok := a.cluster.(quotaCluster); ok {
		qc.AttachQuota(a.Quota)
	}
}

// startProbe reads idle subscription accounts' usage endpoints every
// quota_probe_minutes (off when 0).
func (a *App) startProbe(ctx context.Context) {
	every := time.Duration(a.Config.Scheduler.QuotaProbeMinutes) * time.Minute
	if every <= 0 {
		return
	}
	p := &quota.Prober{Tracker: a.Quota, Every: every, Targets: probeTargets(a.upstreams)}
	if len(p.Targets) == 0 {
		return
	}
	a.bg.Add(1)
	go func() { defer a.bg.Done(); p.Run(ctx) }()
}

// probeTargets are the enabled accounts whose type has a usage endpoint
// (accounttype.Spec.Usage: Claude OAuth's api/oauth/usage, ChatGPT for
// Codex's backend-api/wham/usage), each asked through its own client and
// credential.
func probeTargets(ups []*relay.Upstream) []quota.ProbeTarget {
	var out []quota.ProbeTarget
	for _, up := range ups {
		if up == nil || !up.Config.Enabled || up.TypeSpec().Usage == nil {
			continue
		}
		usage := up.TypeSpec().Usage
		out = append(out, quota.ProbeTarget{
			AccountID: up.Config.ID, Client: up.Client, Parse: usage.Parse,
			NewRequest: func(ctx context.Context) (*http.Request, error) {
				tok, err := up.Token.Token(ctx)
				if err != nil {
					return nil, err
				}
				return usage.Request(ctx, up.TypeAccount(), tok)
			},
		})
	}
	return out
}

// quotaMetrics shows the tracker's windows to Prometheus (read at scrape).
type quotaMetrics struct{ t *quota.Tracker }

func (q quotaMetrics) QuotaWindows() []metrics.QuotaWindow {
	var out []metrics.QuotaWindow
	for id, s := range q.t.All() {
		for _, w := range s.Windows {
			out = append(out, metrics.QuotaWindow{AccountID: id, Window: w.Name, Utilization: w.Utilization})
		}
	}
	return out
}

// quotaAlerts tells the alerts of windows past their thresholds (80%, 95%;
// each once per quiet period). Dispatcher.Quota never blocks.
type quotaAlerts struct{ d *alerts.Dispatcher }

func (q quotaAlerts) QuotaChanged(accountID string, s quota.Snapshot) {
	for _, w := range s.Windows {
		q.d.Quota(accountID, w.Name, w.Utilization)
	}
}
