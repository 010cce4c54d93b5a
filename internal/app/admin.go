package app

import (
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/dashboard"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/reload"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Compile-time checks of the admin API's sources.
var (
	_ admin.Scheduler    = (*scheduler.Scheduler)(nil)
	_ admin.StateStore   = (*store.DB)(nil)
	_ admin.UsageStore   = (*store.DB)(nil)
	_ admin.ConfigSource = (*reload.Reloader)(nil)
)

// adminRoutes mounts the admin API and the dashboard when admin_keys are
// configured; without them neither route exists (404 from the relay).
//
// Wrong admin keys, on the admin API and at the dashboard's sign-in, are
// braked per client address as wrong relay keys are (a brake of their own,
// so clients with a stale relay key cannot lock the operators out).
func (a *App) adminRoutes() map[string]http.Handler {
	cfg := a.Config
	if len(cfg.AdminKeys) == 0 {
		return nil
	}
	auth := admin.NewAuth(cfg.AdminKeys, cfg.APIKeys)
	auth.UseBrake(a.ops.adminBrake, clientAddr)
	proxies := map[string]string{}
	for _, ac := range cfg.Accounts {
		if ac.Proxy.Enabled() {
			proxies[ac.ID] = ac.Proxy.Type + "://" + ac.Proxy.Addr()
		}
	}
	opts := admin.Options{
		Auth: auth, Sched: a.Sched, State: a.DB, Usage: a.DB, RelayKeys: cfg.APIKeys,
		KeyLabel: usage.KeyLabels(cfg.APIKeys),
		// The policy is read at each call: a reload may give the relay a new one.
		KeyLastUsed: func(hash string) time.Time { return a.Policy.LastUsed(hash) },
		AccountInfo: func(id string) admin.AccountInfo { return admin.AccountInfo{Proxy: proxies[id]} },
		Health:      a.health, Log: a.Log,
	}
	if a.Quota != nil {
		opts.Quota = quotaWindows{a.Quota}
	}
	if a.clusterUsage != nil {
		opts.Cluster = a.clusterUsage
	}
	if a.Config.Path != "" && a.ops.reloader != nil {
		opts.Reload = a.ops.reloader
		opts.ConfigStatus = configStatus{a.ops.reloader}
		opts.Config = a.ops.reloader
	}
	if a.ops.reloader != nil {
		// The policy is read at each call, not bound here: a reload may
		// give the relay a new one.
		opts.Keys = keyList{current: a.ops.reloader.Current, status: func() []policy.KeyStatus { return a.Policy.Status() },
			clusterLive: func() bool { return a.Policy.ClusterLive() }, now: time.Now}
	}
	api := admin.New(opts)
	dash := dashboard.New(auth, a.Log)
	return map[string]http.Handler{
		admin.Prefix:           api,
		dashboard.Prefix:       dash,
		dashboard.Prefix + "/": dash,
	}
}

// quotaWindows shows the quota tracker's numbers to the admin API.
type quotaWindows struct{ t *quota.Tracker }

func (q quotaWindows) Windows(accountID string) []admin.QuotaWindow {
	s, ok := q.t.Snapshot(accountID)
	if !ok {
		return nil
	}
	out := make([]admin.QuotaWindow, 0, len(s.Windows))
	for _, w := range s.Windows {
		aw := admin.QuotaWindow{Name: w.Name, Utilization: w.Utilization, Status: w.Status, SeenAt: s.SeenAt.UTC()}
		if !w.ResetsAt.IsZero() {
			r := w.ResetsAt.UTC()
			aw.ResetsAt = &r
		}
		out = append(out, aw)
	}
	return out
}

// configStatus tells the admin API whether the running config is the file's.
type configStatus struct{ r *reload.Reloader }

func (c configStatus) ConfigStatus() (bool, string, time.Time) {
	st := c.r.Status()
	return st.Stale, st.Error, st.LastApplied
}
