package app

import (
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/dashboard"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/relay"
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
	_ admin.QuotaSource  = (*quota.Tracker)(nil)
)

// adminRoutes mounts the admin API and the dashboard. Both answer 404
// while no admin key is in force; the keys are read from the config in
// force on every request, so a reload that adds, replaces or removes an
// admin key applies to the next request (see adminAuth).
func (a *App) adminRoutes() map[string]http.Handler {
	cfg := a.Config
	auth := a.adminAuth()
	opts := admin.Options{
		Auth: auth, Sched: a.Sched, State: a.DB, Usage: a.DB, RelayKeys: cfg.APIKeys,
		KeyLabel: usage.KeyLabels(cfg.APIKeys),
		// The policy is read at each call: a reload may give the relay a new one.
		KeyLastUsed: func(hash string) time.Time { return a.Policy.LastUsed(hash) },
		AccountInfo: a.accountInfo,
		Health:      func() any { return a.health() }, Log: a.Log,
		Requests: a.DB, Captures: a.captures,
	}
	if a.Quota != nil {
		opts.Quota = a.Quota
	}
	if a.clusterUsage != nil {
		opts.Cluster = a.clusterUsage
	}
	if a.clusterRequests != nil {
		opts.ClusterRequests = clusterRequestLog{a.clusterRequests}
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
	dash.SetSecureCookie(a.secureCookie)
	return map[string]http.Handler{
		admin.Prefix:           api,
		dashboard.Prefix:       dash,
		dashboard.Prefix + "/": dash,
	}
}

// adminAuth is the one admin-key check of the admin API, the dashboard and
// /metrics, built on first use. It asks for the keys on every request: the
// admin keys of the config in force, and the policy's relay keys (which a
// reload swaps), so a relay key of either kind is answered 403, never
// counted as a guess. Wrong admin keys are braked per client address as
// wrong relay keys are (a brake of their own, so clients with a stale relay
// key cannot hold the operators back).
func (a *App) adminAuth() *admin.Auth {
	if a.ops.adminAuth == nil {
		a.ops.adminAuth = admin.NewAuthFrom(liveAdminKeys{a})
		a.ops.adminAuth.UseBrake(a.ops.adminBrake, clientAddr)
	}
	return a.ops.adminAuth
}

// liveAdminKeys are the keys in force, for admin.Auth.
type liveAdminKeys struct{ a *App }

func (k liveAdminKeys) AdminKeys() []string { return k.a.ops.reloader.Current().AdminKeys }

func (k liveAdminKeys) IsRelayKey(key string) bool {
	_, ok := k.a.Policy.Authenticate(key)
	return ok
}

// secureCookie reports whether the dashboard's sign-in cookie gets Secure:
// server.secure_cookie is set, or the request came over TLS (its own
// connection, or a trusted proxy's X-Forwarded-Proto: https).
func (a *App) secureCookie(r *http.Request) bool {
	if a.ops.reloader.Current().Server.SecureCookie || r.TLS != nil {
		return true
	}
	info := relay.InfoFrom(r.Context())
	return info != nil && info.ClientTLS
}

// accountInfo is an account's groups and proxy as the running config has
// them (a reload may have changed them).
func (a *App) accountInfo(id string) admin.AccountInfo {
	cfg := a.Config
	if a.ops.reloader != nil {
		cfg = a.ops.reloader.Current()
	}
	for _, ac := range cfg.Accounts {
		if ac.ID != id {
			continue
		}
		info := admin.AccountInfo{Groups: ac.Groups}
		if ac.Proxy.Enabled() {
			info.Proxy = ac.Proxy.Type + "://" + ac.Proxy.Addr()
		}
		return info
	}
	return admin.AccountInfo{}
}

// configStatus tells the admin API whether the running config is the file's.
type configStatus struct{ r *reload.Reloader }

func (c configStatus) ConfigStatus() (bool, string, time.Time) {
	st := c.r.Status()
	return st.Stale, st.Error, st.LastApplied
}
