// Package app assembles a running relay from a Config: the database, the
// accounts and their clients and credentials, the scheduler, the relay
// handlers and the HTTP server; and takes it down again in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/lockfile"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/pricing"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/routing"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/server"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/upstream"
)

// Compile-time checks of the interfaces the engine declares.
var (
	_ relay.UsageRecorder = (*store.Recorder)(nil)
	_ scheduler.Persister = (*store.DB)(nil)
	_ credential.Store    = (*store.DB)(nil)
	_ relay.TokenSource   = credential.Static("")
	_ relay.TokenSource   = (*credential.OAuth)(nil)
	_ policy.UsageSource  = (*store.DB)(nil)
	_ relay.Coster        = (*pricing.Table)(nil)
)

// App is a relay ready to serve.
type App struct {
	// Version is what /health reports; the command layer sets it.
	Version  string
	Config   *config.Config
	Log      *slog.Logger
	DB       *store.DB
	Recorder *store.Recorder
	Sched    *scheduler.Scheduler
	Relay    *relay.Relay
	Server   *server.Server
	// Quota holds every account's latest rate-limit numbers (quota.go).
	Quota *quota.Tracker
	// Policy holds the relay keys, their limits and live counters.
	Policy *policy.Policy

	cluster Cluster
	// clusterUsage merges usage into the cluster and reads it back; nil
	// without a cluster (cluster.go).
	clusterUsage *cluster.UsageShare
	// clusterRequests writes the request log into the cluster's shared
	// index and reads it back; nil without a cluster (cluster.go).
	clusterRequests *cluster.RequestShare
	upstreams       []*relay.Upstream
	started         time.Time
	// ops is hot reload, metrics and alerts (reload.go, metrics.go).
	ops      ops
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	// captures are the body captures (reqlog.go).
	captures *captureControl
}

// Build opens the database and assembles the relay; it does not listen yet.
func Build(cfg *config.Config, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log, Version: "dev", started: time.Now()}
	// Parse checked the routes already; this only fails for a Config
	// built in code, before anything is opened.
	routes, err := routing.New(cfg.Routes, cfg.Accounts)
	if err != nil {
		return nil, err
	}
	a.initOps(cfg)
	db, err := store.OpenServe(cfg.Server.DatabasePath)
	if err != nil {
		// Serving comes first: usage waits in memory and state changes stay
		// in memory until the database can be written (the recorder retries).
		log.Error("the database cannot be written; serving anyway: usage is kept in memory (bounded) and written, and state saved, once it can be; saved sessions and credentials are read from the existing file where possible",
			"path", cfg.Server.DatabasePath, "err", err)
	}
	a.DB = db
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// One refresher per account across this machine's processes (serve,
	// accounts test, another relay on the same database); in a cluster, across
	// every relay sharing the Redis.
	cl, err := newCluster(cfg, db, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	a.cluster = cl
	var locker credential.Locker = lockfile.ForDatabase(cfg.Server.DatabasePath)
	var credStore credential.Store = db
	if cl != nil {
		locker, credStore = cl.Locker(), cl.CredentialStore()
	}
	accounts, err := a.buildAccounts(credStore, locker)
	if err != nil {
		if cl != nil {
			cl.Close()
		}
		db.Close()
		return nil, err
	}
	s := cfg.Session
	a.Sched = scheduler.New(accounts, scheduler.Options{
		StickyTTL: config.Seconds(s.StickyTTLSeconds), RenewalThreshold: config.Seconds(s.RenewalThresholdSeconds),
		UnavailableCooldown: config.Seconds(s.UnavailableCooldownSeconds), RateLimitCooldown: config.Seconds(s.RateLimitCooldownSeconds),
		MaxRateLimitHint: config.Seconds(s.MaxRateLimitCooldownSeconds), OverloadCooldown: config.Seconds(s.OverloadCooldownSeconds),
		ErrorCooldown: config.Seconds(s.ErrorCooldownSeconds),
	}, db, log)
	if err := a.restore(ctx); err != nil {
		// A damaged state table must not stop the relay: start clean and say so.
		log.Warn("could not load saved sessions and cooldowns; starting without them", "err", err)
	}
	if cl != nil {
		cl.Attach(a.Sched)
	}
	a.ops.nextIndex = len(accounts)
	a.ops.credStore, a.ops.locker = credStore, locker
	a.wireGemini()
	a.Recorder = store.NewRecorder(db, log)
	a.shareUsage(cfg)
	pol, prices, err := a.buildPolicy(ctx)
	if err != nil {
		if cl != nil {
			cl.Close()
		}
		db.Close()
		return nil, err
	}
	a.Recorder.SetRetention(time.Duration(cfg.Server.UsageRetentionDays) * 24 * time.Hour)
	a.Recorder.SetRequestLog(time.Duration(cfg.Server.RequestLogDays)*24*time.Hour, cfg.Server.RequestLogMaxRows)
	a.Relay = a.buildRelay(pol, prices, routes)
	if cl != nil {
		a.Relay.SetSharedSessions(cl)
		if kc, ok := cl.(keysCluster); ok {
			kc.AttachKeys(pol)
		}
	}
	a.wireQuota(ctx)
	a.wireRequestLog()
	a.Server = server.New(a.Relay.Handler(), a.publicHealth, log)
	for pattern, h := range a.adminRoutes() {
		a.Server.Handle(pattern, h)
	}
	for pattern, h := range a.opsRoutes() {
		a.Server.Handle(pattern, h)
	}
	a.Server.SetTrustedProxies(cfg.TrustedPrefixes())
	a.Server.SetWriteTimeout(config.Seconds(cfg.Server.WriteTimeoutSeconds))
	a.wireOps()
	return a, nil
}

// schedAccount is the scheduler's account for the config's account ac, with
// index idx (the scheduler's final tie-break); Build and every reload make
// them alike.
func schedAccount(cfg *config.Config, ac *config.AccountConfig, idx int) *scheduler.Account {
	return &scheduler.Account{ID: ac.ID, Name: ac.Name, Type: ac.Type, Platform: ac.Platform(), Priority: ac.Priority,
		Enabled: ac.Enabled, Index: idx, MaxConcurrency: ac.MaxConcurrency, PlanOnly: cfg.PlanOnlyFor(ac)}
}

// buildAccounts makes the scheduler's account and the upstream of every
// configured account.
func (a *App) buildAccounts(credStore credential.Store, locker credential.Locker) ([]*scheduler.Account, error) {
	cfg := a.Config
	var accounts []*scheduler.Account
	for i := range cfg.Accounts {
		ac := cfg.Accounts[i]
		acct := schedAccount(cfg, &cfg.Accounts[i], i)
		accounts = append(accounts, acct)
		up, o, err := newUpstream(acct, ac, credStore, locker, a.Log, a.refreshed(ac.ID))
		if err != nil {
			return nil, err
		}
		if o != nil {
			a.ops.refreshers[ac.ID] = o
		}
		a.upstreams = append(a.upstreams, up)
	}
	return accounts, nil
}

// buildRelay makes the request handlers from the config's [server] bounds.
func (a *App) buildRelay(pol *policy.Policy, prices *pricing.Table, routes *routing.Table) *relay.Relay {
	cfg, srv := a.Config, a.Config.Server
	return relay.New(relay.Options{
		Policy: pol, Prices: prices, Brake: policy.NewBrake(0, nil), AllowUnauthenticated: cfg.AllowUnauthenticated,
		MaxBodyBytes: srv.MaxBodyBytes, FirstByteTimeout: config.Seconds(srv.FirstByteTimeoutSeconds),
		ResponseTimeout: config.Seconds(srv.ResponseTimeoutSeconds), IdleTimeout: config.Seconds(srv.IdleTimeoutSeconds),
		BodyTimeout: config.Seconds(srv.BodyTimeoutSeconds),
		MaxAttempts: srv.MaxAttempts, Models: cfg.Models, Routes: routes,
	}, a.Sched, a.upstreams, a.usageRecorder(), a.Log)
}

// buildPolicy builds the relay-key policy and the price table, seeds the
// keys' budgets from the usage database, connects the policy to the alerts
// (key_budget) and metrics (key queues), and says in one line when the
// relay runs without a key. The "keys" reload hook updates both in place.
func (a *App) buildPolicy(ctx context.Context) (*policy.Policy, *pricing.Table, error) {
	cfg := a.Config
	opts := policy.Options{APIKeys: cfg.APIKeys, Keys: cfg.Keys, Log: a.Log,
		OnBudget: func(c policy.BudgetCrossing) { a.ops.alerts.KeyBudget(c.Key, c.Budget, c.Threshold, c.Used) }}
	if m := a.ops.metrics; m != nil {
		opts.OnQueueWait = m.KeyQueueWait
	}
	pol, err := policy.New(opts)
	if err != nil {
		return nil, nil, err
	}
	prices := pricing.New(cfg.Prices)
	if len(cfg.Keys) > 0 && a.DB != nil {
		if err := pol.Seed(ctx, a.DB); err != nil {
			a.Log.Warn("could not load the keys' spending so far; budgets count from now", "err", err)
		}
	}
	a.logAccess(cfg)
	a.Policy = pol
	a.ops.prices = prices
	a.SetKeyQueueSource(keyQueues{pol})
	return pol, prices, nil
}

// NewUpstream builds an account's client (through its proxy) and credential
// source. OAuth accounts persist rotated tokens in st and refresh under lk.
func NewUpstream(acct *scheduler.Account, ac config.AccountConfig, st credential.Store, lk credential.Locker, log *slog.Logger) (*relay.Upstream, *credential.OAuth, error) {
	return newUpstream(acct, ac, st, lk, log, nil)
}

// newUpstream is NewUpstream with a refresh outcome callback (may be nil).
func newUpstream(acct *scheduler.Account, ac config.AccountConfig, st credential.Store, lk credential.Locker, log *slog.Logger, onRefresh func(*credential.RefreshError)) (*relay.Upstream, *credential.OAuth, error) {
	client, err := upstream.NewClient(ac.Proxy)
	if err != nil {
		return nil, nil, fmt.Errorf("account %q: %w", ac.ID, err)
	}
	spec := ac.Spec()
	if spec == nil {
		return nil, nil, fmt.Errorf("account %q: unknown account type %q", ac.ID, ac.Type)
	}
	up := &relay.Upstream{Account: acct, Config: ac, Spec: spec, Client: client}
	if spec.Transport != nil {
		// Upstream requests only: refreshes below keep the plain client.
		wrapped := *client
		wrapped.Transport = spec.Transport(client.Transport)
		up.Client = &wrapped
	}
	switch spec.Credential {
	case accounttype.APIKey:
		up.Token = credential.Static(ac.Secret())
		return up, nil, nil
	case accounttype.Token:
		// OAuth set: a 401 earns the retry that turns into the token's
		// TokenInvalid verdict (see credential.LongLived).
		up.Token, up.OAuth = credential.NewLongLived(ac.Secret(), spec.Renew(ac.ID)), true
		return up, nil, nil
	}
	var onIDToken func(string)
	if spec.IDTokenAccount != nil {
		up.Learned = &relay.LearnedAccount{}
		learned, id, configured := up.Learned, ac.ID, ac.Account().UpstreamAccount
		onIDToken = func(idToken string) { learnUpstreamAccount(learned, spec, id, configured, idToken, log) }
	}
	o := credential.NewOAuth(credential.OAuthConfig{
		AccountID: ac.ID, ConfigRefreshToken: ac.RefreshToken, Type: spec,
		TokenURL: ac.TokenURL, ClientID: ac.ClientID, ClientSecret: ac.ClientSecret,
		NotFound:  func(err error) bool { return errors.Is(err, store.ErrNoRow) },
		OnRefresh: onRefresh,
		OnIDToken: onIDToken,
	}, client, st, lk, log)
	up.Token, up.OAuth = o, true
	return up, o, nil
}

// learnUpstreamAccount takes the provider-side account id (the ChatGPT
// account) from a refreshed id token: requests carry it from now on, as
// Codex CLI does. It lives in memory only; when it differs from the one in
// use (the config's, or an earlier token's) a log line says so, so an
// operator can update the config key, which a restart starts from.
func learnUpstreamAccount(l *relay.LearnedAccount, spec *accounttype.Spec, accountID, configured, idToken string, log *slog.Logger) {
	id := spec.IDTokenAccount(idToken)
	prev, changed := l.Set(id, configured)
	if !changed || log == nil {
		return
	}
	log.Info("upstream account id taken from the refreshed id token",
		"account", accountID, "key", spec.UpstreamAccountKey, "previous", prev, "now", id)
}

func (a *App) restore(ctx context.Context) error {
	now := time.Now()
	sessions, err := a.DB.Sessions(ctx, now)
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	cooldowns, err := a.DB.Cooldowns(ctx, now)
	if err != nil {
		return fmt.Errorf("cooldowns: %w", err)
	}
	lastUsed, err := a.DB.LastUsed(ctx)
	if err != nil {
		return fmt.Errorf("last used: %w", err)
	}
	a.Sched.Restore(sessions, cooldowns, lastUsed)
	// Accounts an operator disabled through the admin API stay disabled.
	disabled, err := a.DB.DisabledAccounts(ctx)
	if err != nil {
		a.Log.Warn("could not read which accounts were disabled through the admin API; all configured accounts serve", "err", err)
	}
	for id := range disabled {
		a.Sched.SetDisabled(id, true)
	}
	if n := a.DB.SkippedRows(); n > 0 {
		a.Log.Warn("skipped damaged rows in the state database", "rows", n)
	}
	return nil
}

// Health is /health's body: counts and states only, never names or keys.
type Health struct {
	Status        string `json:"status"`
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	// Accounts is how many are configured; Available how many can serve now.
	Accounts   int   `json:"accounts"`
	Available  int   `json:"available"`
	InFlight   int64 `json:"in_flight"`
	UsageQueue int   `json:"usage_queue"`
	// Database is ok, unwritable (opened without write access) or failing.
	Database string `json:"database"`
	// Cluster is the Redis link's state; absent without a cluster.
	Cluster string `json:"cluster,omitempty"`
	// RelayID is this relay's id in the cluster, the one request log rows
	// and "bodies_on" name (its host name is in it): shown only behind an
	// admin key, absent without a cluster.
	RelayID string `json:"relay_id,omitempty"`
	// Config is ok, or stale when a changed config file could not be
	// applied (ConfigError says why; the old one keeps serving).
	Config string `json:"config,omitempty"`
	// ConfigError names the file, the line and the problem: shown only
	// behind an admin key (GET /admin/v1/health), never on /health.
	ConfigError string `json:"config_error,omitempty"`
}

// publicHealth is /health, which needs no key: health without the detail
// of a stale config (its path, line and problem describe the operator's
// file to anyone who asks) and without the relay's cluster id (it holds the
// host name). "config":"stale" still says something is wrong.
func (a *App) publicHealth() any {
	h := a.health()
	h.ConfigError, h.RelayID = "", ""
	return h
}

// health is the relay's state for the admin API's health (GET
// /admin/v1/health), in full.
func (a *App) health() Health {
	avail := 0
	cooling := map[string]bool{}
	for _, c := range a.Sched.Cooldowns() {
		if c.Model == "" {
			cooling[c.AccountID] = true
		}
	}
	for _, acct := range a.Sched.Accounts() {
		if acct.Enabled && !cooling[acct.ID] {
			avail++
		}
	}
	db := "ok"
	switch {
	case a.DB.Degraded():
		db = "unwritable" // opened without write access (see store.OpenServe); the log says why
	case !a.Recorder.Healthy():
		db = "failing"
	}
	h := Health{
		Status: "ok", Version: a.Version, UptimeSeconds: int64(time.Since(a.started).Seconds()),
		Accounts: len(a.Sched.Accounts()), Available: avail, InFlight: a.Server.InFlight(),
		UsageQueue: a.Recorder.Pending(), Database: db,
	}
	a.reloadHealth(&h)
	if a.cluster != nil {
		h.Cluster = a.cluster.Health()
		h.RelayID = a.cluster.ID()
	}
	return h
}

// Start listens on the configured address (or addr when not empty) and serves
// in the background; it returns the bound address.
func (a *App) Start(addr string) (net.Addr, error) {
	if addr == "" {
		addr = a.Config.Server.Addr()
	}
	bound, err := a.Server.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.bgCancel = cancel
	a.startOps(ctx)
	a.bg.Add(2)
	go func() {
		defer a.bg.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.Sched.Prune()
				_ = a.DB.PruneSessions(ctx, time.Now())
			}
		}
	}()
	go func() { defer a.bg.Done(); a.applyCommands(ctx) }()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.runCaptures(ctx) }()
	a.startProbe(ctx)
	go func() {
		if err := a.Server.Serve(); err != nil {
			a.Log.Error("server stopped", "err", err)
		}
	}()
	return bound, nil
}

// CommandPollInterval is how often a running server looks for CLI commands.
const CommandPollInterval = time.Second

// applyCommands applies `ccrelay accounts reset` and `ccrelay sessions clear`
// made by other processes to this server's in-memory state.
func (a *App) applyCommands(ctx context.Context) {
	last, err := a.DB.LastCommandID(ctx)
	if err != nil {
		a.Log.Warn("cannot read admin commands; CLI resets apply at the next start", "err", err)
	}
	t := time.NewTicker(CommandPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cmds, err := a.DB.Commands(ctx, last)
		if err != nil {
			continue
		}
		for _, c := range cmds {
			last = c.ID
			switch c.Kind {
			case "reset_account":
				n := a.Sched.Reset(c.AccountID)
				a.Log.Info("cooldowns cleared by the CLI", "account", c.AccountID, "cleared", n)
			case "clear_sessions":
				n := a.Sched.ForgetSessions(c.SessionKey, c.AccountID)
				a.Log.Info("sessions cleared by the CLI", "account", c.AccountID, "cleared", n)
			}
		}
	}
}

// Shutdown drains in-flight requests and streams (bounded by ctx), then
// flushes usage and closes the database. It is safe to call once.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.Server.Shutdown(ctx)
	if err != nil {
		a.Log.Warn("drain timed out; closing the remaining connections", "in_flight", a.Server.InFlight())
		_ = a.Server.Close()
	}
	// The Responses WebSockets are hijacked connections the server's drain
	// does not wait for: each finishes its turn before usage is flushed.
	if werr := a.Relay.CloseWebSockets(ctx); werr != nil {
		a.Log.Warn("websocket drain timed out", "err", werr)
	}
	a.stopOps(ctx)
	if a.bgCancel != nil {
		a.bgCancel()
	}
	a.bg.Wait()
	a.Sched.Close()
	a.Quota.Close()
	if a.cluster != nil {
		a.cluster.Close()
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ferr := a.Recorder.Close(flushCtx); ferr != nil {
		a.Log.Error("usage flush incomplete", "err", ferr)
	}
	for _, up := range a.Relay.Upstreams() {
		// Through the client: an account type's transport wrapper forwards it.
		up.Client.CloseIdleConnections()
	}
	if cerr := a.DB.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// logAccess says in one line when the relay serves without a relay key: to
// everyone (allow_unauthenticated) or to this machine only (protected mode).
func (a *App) logAccess(cfg *config.Config) {
	switch {
	case cfg.HasRelayKey():
	case cfg.AllowUnauthenticated:
		a.Log.Warn("no relay key configured and allow_unauthenticated = true: every client that reaches this address is served")
	default:
		a.Log.Warn("protected mode: no relay key configured, so only clients on this machine (loopback) are served; add one with `ccrelay keys add NAME` (or `ccrelay config init`), or set allow_unauthenticated = true")
	}
}
