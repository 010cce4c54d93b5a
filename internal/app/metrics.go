package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ccrelay/ccrelay/internal/alerts"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/metrics"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/usage"
)

var (
	_ scheduler.Observer  = (*metrics.Metrics)(nil)
	_ scheduler.Observer  = alertObserver{}
	_ relay.UsageRecorder = (*opsRecorder)(nil)
)

// opsMetrics is the metrics and alerts part of the App's ops state.
type opsMetrics struct {
	// metrics is nil when nothing serves /metrics (no metrics_listen and no
	// admin_keys): then nothing is counted either.
	metrics       *metrics.Metrics
	alerts        *alerts.Dispatcher
	metricsServer *http.Server
	metricsAddr   net.Addr
	quota         metrics.QuotaSource
	keyQueues     metrics.KeyQueueSource
}

// MetricsAddr is the bound address of the metrics_listen listener; nil when
// there is none.
func (a *App) MetricsAddr() net.Addr { return a.ops.metricsAddr }

// Metrics returns the relay's metrics (nil when off), for other parts to
// register collectors or report key queue waits.
func (a *App) Metrics() *metrics.Metrics { return a.ops.metrics }

// Alerts returns the alert dispatcher, for other parts to report quota and
// budget use (Quota, KeyBudget).
func (a *App) Alerts() *alerts.Dispatcher { return a.ops.alerts }

// SetQuotaSource gives the metrics the quota windows; call before Start.
func (a *App) SetQuotaSource(q metrics.QuotaSource) { a.ops.quota = q }

// SetKeyQueueSource gives the metrics the key queues; call before Start.
func (a *App) SetKeyQueueSource(q metrics.KeyQueueSource) { a.ops.keyQueues = q }

func (a *App) initMetrics(cfg *config.Config) {
	a.ops.alerts = alerts.New(cfg.Alerts, alerts.Options{}, a.Log)
	if cfg.MetricsListen == "" && len(cfg.AdminKeys) == 0 {
		return
	}
	a.ops.metrics = metrics.New(metrics.Sources{
		Accounts:   a.accountStates,
		UsageQueue: func() int { return a.Recorder.Pending() },
		DatabaseOK: func() bool { return !a.DB.Degraded() && a.Recorder.Healthy() },
		RedisOK: func() (up, present bool) {
			if a.cluster == nil {
				return false, false
			}
			return a.cluster.Health() == "ok", true
		},
		ConfigStale:    func() bool { return a.ops.reloader.Status().Stale },
		Quota:          quotaSource{a},
		KeyQueues:      keyQueueSource{a},
		ClusterDropped: a.clusterDropped,
	})
}

// quotaSource and keyQueueSource read what SetQuotaSource and
// SetKeyQueueSource installed, when they did.
type quotaSource struct{ a *App }

func (q quotaSource) QuotaWindows() []metrics.QuotaWindow {
	if q.a.ops.quota == nil {
		return nil
	}
	return q.a.ops.quota.QuotaWindows()
}

type keyQueueSource struct{ a *App }

func (q keyQueueSource) KeyQueues() []metrics.KeyQueue {
	if q.a.ops.keyQueues == nil {
		return nil
	}
	return q.a.ops.keyQueues.KeyQueues()
}

// keyQueues reads the policy's key concurrency queues for the metrics: one
// series per named key with a concurrency limit.
type keyQueues struct{ p *policy.Policy }

func (q keyQueues) KeyQueues() []metrics.KeyQueue {
	var out []metrics.KeyQueue
	for _, s := range q.p.Status() {
		if s.Concurrency > 0 {
			out = append(out, metrics.KeyQueue{Key: s.Name, Depth: s.Queued})
		}
	}
	return out
}

// accountStates classifies every account for ccrelay_account_state.
func (a *App) accountStates() []metrics.AccountState {
	cooling := map[string]string{}
	for _, c := range a.Sched.Cooldowns() {
		if c.Model == "" {
			cooling[c.AccountID] = c.Kind
		}
	}
	a.ops.mu.Lock()
	invalid := map[string]bool{}
	for id, o := range a.ops.refreshers {
		invalid[id] = o.Status().State == credential.StateTokenInvalid
	}
	a.ops.mu.Unlock()
	var out []metrics.AccountState
	for _, acct := range a.Sched.Accounts() {
		st := metrics.StateAvailable
		kind, cool := cooling[acct.ID]
		switch {
		case !acct.Enabled:
			st = metrics.StateDisabled
		case invalid[acct.ID] || (cool && provider.ParseKind(kind) == provider.TokenInvalid):
			st = metrics.StateInvalid
		case cool:
			st = metrics.StateCooling
		}
		out = append(out, metrics.AccountState{ID: acct.ID, Platform: acct.Platform, State: st})
	}
	return out
}

// usageRecorder is what the relay records usage into: the store, then the
// metrics and the alerts, which only count.
func (a *App) usageRecorder() relay.UsageRecorder {
	var next relay.UsageRecorder = a.Recorder
	if a.clusterUsage != nil || a.clusterRequests != nil {
		t := teeRecorder{store: a.Recorder}
		// Typed nil pointers must not become non-nil interfaces.
		if a.clusterUsage != nil {
			t.cluster = a.clusterUsage
		}
		if a.clusterRequests != nil {
			t.requests = a.clusterRequests
		}
		next = t
	}
	return &opsRecorder{next: next, m: a.ops.metrics, al: a.ops.alerts}
}

// opsRecorder tees usage records to metrics and alerts.
type opsRecorder struct {
	next relay.UsageRecorder
	m    *metrics.Metrics
	al   *alerts.Dispatcher
}

// Record passes r on to the store and counts it.
func (o *opsRecorder) Record(r usage.Record) {
	o.next.Record(r)
	if o.m != nil {
		o.m.Observe(r)
	}
	switch {
	case r.AccountID != "" && r.Status/100 == 2:
		o.al.AccountServed(r.AccountID)
	case r.AccountID == "" && r.Attempts == 0 && r.Status == http.StatusServiceUnavailable:
		o.al.PoolExhausted(r.Platform)
	}
}

// refreshed returns the token refresh callback of account id.
func (a *App) refreshed(id string) func(*credential.RefreshError) {
	return func(err *credential.RefreshError) {
		if m := a.ops.metrics; m != nil {
			m.Refreshed(id, err == nil)
		}
		if err != nil && err.Kind == provider.TokenInvalid {
			a.ops.alerts.AccountInvalid(id, "its refresh token was rejected (invalid_grant)")
		}
	}
}

// alertObserver turns scheduler cooldowns into alerts: a whole-account
// cooldown for a refused credential (401/403, revoked, disabled) is an
// invalid account.
type alertObserver struct{ d *alerts.Dispatcher }

func (o alertObserver) CooldownChanged(c state.Cooldown, cleared bool) {
	if cleared || c.Model != "" {
		return
	}
	switch provider.ParseKind(c.Kind) {
	case provider.TokenInvalid, provider.Unavailable:
		reason := c.Kind
		if c.Reason != "" {
			reason += ": " + c.Reason
		}
		o.d.AccountInvalid(c.AccountID, reason)
	}
}

func (alertObserver) SessionChanged(state.Binding, bool) {}
func (alertObserver) AccountUsed(string, time.Time)      {}

// opsRoutes are the extra routes of the main listener: /metrics behind an
// admin key.
func (a *App) opsRoutes() map[string]http.Handler {
	if a.ops.metrics == nil {
		return nil
	}
	return map[string]http.Handler{"GET /metrics": a.adminOnly(a.ops.metrics.Handler())}
}

// adminOnly lets through requests that present one of the admin_keys in
// force (Authorization: Bearer or x-api-key), checked by the admin API's
// own check (adminAuth: digests compared in constant time, a relay key 403
// and never counted, wrong keys braked per address on the brake the admin
// API and the dashboard share, the right key always served). With no admin
// key in force it answers 404: the endpoint is off.
func (a *App) adminOnly(h http.Handler) http.Handler {
	auth := a.adminAuth()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.Enabled() {
			http.Error(w, "not found: set admin_keys (or metrics_listen) to serve /metrics", http.StatusNotFound)
			return
		}
		status, msg, wait := auth.CheckKey(r)
		switch status {
		case 0:
			h.ServeHTTP(w, r)
			return
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="ccrelay admin"`)
		}
		http.Error(w, msg, status)
	})
}

// wireOps connects metrics and alerts to the scheduler and server, and
// registers the reload hooks; Build calls it last.
func (a *App) wireOps() {
	if m := a.ops.metrics; m != nil {
		a.Sched.SetObserver(m)
		a.Server.SetObserver(m.Request)
	}
	a.Sched.SetObserver(alertObserver{a.ops.alerts})
	a.registerReloadHooks()
}

// startMetrics starts the alert senders and the metrics listener.
func (a *App) startMetrics(ctx context.Context) {
	a.ops.alerts.Start(ctx)
	a.bg.Add(1)
	go func() { defer a.bg.Done(); <-ctx.Done(); a.ops.alerts.Wait() }()
	addr := a.Config.MetricsListen
	if addr == "" || a.ops.metrics == nil {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		a.Log.Error("metrics listener failed; /metrics is served on the main listener only (with an admin key)", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.ops.metrics.Handler())
	a.ops.metricsServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	a.ops.metricsAddr = ln.Addr()
	a.Log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		if err := a.ops.metricsServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("metrics listener stopped", "err", err)
		}
	}()
}

// stopOps stops the metrics listener; the alert senders and refreshers stop
// with the background context.
func (a *App) stopOps(ctx context.Context) {
	if s := a.ops.metricsServer; s != nil {
		_ = s.Shutdown(ctx)
	}
}

// droppingCluster is a cluster that counts what its queues to Redis dropped.
type droppingCluster interface {
	Dropped() map[string]int64
}

// clusterDropped reads the cluster's queue drops for the metrics, the usage
// queue's beside the others; nil (no series) without a cluster.
func (a *App) clusterDropped() map[string]int64 {
	dc, ok := a.cluster.(droppingCluster)
	if !ok {
		return nil
	}
	out := dc.Dropped()
	if a.clusterUsage != nil {
		out["usage"] = a.clusterUsage.Dropped()
	}
	if a.clusterRequests != nil {
		out["request_log"] = a.clusterRequests.Dropped()
	}
	return out
}
