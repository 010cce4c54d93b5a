package app

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/pricing"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/reload"
	"github.com/ccrelay/ccrelay/internal/routing"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// EnableReload makes the running relay follow its config file: changes to
// the file (and each value on signals, e.g. SIGHUP) are loaded with load,
// validated and applied without dropping requests in flight. Call it before
// Start. The reloader it returns is what the admin API's reload calls.
func (a *App) EnableReload(load reload.Loader, signals <-chan os.Signal) *reload.Reloader {
	a.ops.reloader.SetLoader(load)
	a.ops.signals = signals
	a.ops.watch = true
	if a.Config.Path != "" {
		a.Relay.MarkConfigFollowed()
	}
	return a.ops.reloader
}

// Reloader returns the relay's reloader (Reload, Status, Current). Without
// EnableReload it reloads from the file the relay started on.
func (a *App) Reloader() *reload.Reloader { return a.ops.reloader }

// AddReloadHook registers the apply step of one more part of the config
// (keys, limits, prices, quota settings...). See reload.Hook.
func (a *App) AddReloadHook(h reload.Hook) { a.ops.reloader.AddHook(h) }

// registerReloadHooks installs the built-in apply steps, in commit order:
// accounts (upstreams then scheduler), model map, routes, keys and prices, session
// durations, the write timeout, alerts.
func (a *App) registerReloadHooks() {
	r := a.ops.reloader
	r.AddHook(reload.Hook{Name: "accounts", Prepare: a.prepareAccounts})
	r.AddHook(reload.Hook{Name: "models", Prepare: func(old, next *config.Config) (func(), error) {
		if reflect.DeepEqual(old.Models, next.Models) {
			return nil, nil
		}
		return func() { a.Relay.SetModels(next.Models) }, nil
	}})
	r.AddHook(reload.Hook{Name: "routes", Prepare: a.prepareRoutes})
	r.AddHook(reload.Hook{Name: "keys", Prepare: a.prepareKeys})
	r.AddHook(reload.Hook{Name: "allow_unauthenticated", Prepare: func(old, next *config.Config) (func(), error) {
		if old.AllowUnauthenticated == next.AllowUnauthenticated && old.HasRelayKey() == next.HasRelayKey() {
			return nil, nil
		}
		return func() {
			a.Relay.SetAllowUnauthenticated(next.AllowUnauthenticated)
			a.logAccess(next)
		}, nil
	}})
	r.AddHook(reload.Hook{Name: "session", Prepare: func(old, next *config.Config) (func(), error) {
		if old.Session == next.Session {
			return nil, nil
		}
		return func() { a.Sched.SetOptions(schedulerOptions(next.Session)) }, nil
	}})
	r.AddHook(reload.Hook{Name: "write timeout", Prepare: func(old, next *config.Config) (func(), error) {
		if old.Server.WriteTimeoutSeconds == next.Server.WriteTimeoutSeconds {
			return nil, nil
		}
		return func() { a.Server.SetWriteTimeout(config.Seconds(next.Server.WriteTimeoutSeconds)) }, nil
	}})
	r.AddHook(reload.Hook{Name: "alerts", Prepare: func(old, next *config.Config) (func(), error) {
		if reflect.DeepEqual(old.Alerts, next.Alerts) {
			return nil, nil
		}
		return func() { a.ops.alerts.SetConfig(next.Alerts) }, nil
	}})
}

// prepareRoutes builds the routes table of next when its routes changed, or
// its accounts did while it has routes (a group's accounts decide the
// group's platform). A route the accounts cannot serve refuses the reload;
// the loader's validation has said so already, with the line.
func (a *App) prepareRoutes(old, next *config.Config) (func(), error) {
	if reflect.DeepEqual(old.Routes, next.Routes) && (len(next.Routes) == 0 || reflect.DeepEqual(old.Accounts, next.Accounts)) {
		return nil, nil
	}
	t, err := routing.New(next.Routes, next.Accounts)
	if err != nil {
		return nil, err
	}
	return func() {
		a.Relay.SetRoutes(t)
		a.Log.Info("routes reloaded", "routes", t.Len())
	}, nil
}

// prepareKeys builds the new relay-key table (api_keys and [[keys]]) and
// reads the spending of keys new to it from the usage database, and returns
// the commit that swaps it in and the price table's prices. Keys whose ID
// is unchanged keep their counters (requests in flight and queued, rpm,
// budgets); accounts' groups are matched against keys' groups on the
// request path, from the tables in force (relay.excludedBy).
func (a *App) prepareKeys(old, next *config.Config) (func(), error) {
	keysSame := reflect.DeepEqual(old.APIKeys, next.APIKeys) && reflect.DeepEqual(old.Keys, next.Keys)
	pricesSame := reflect.DeepEqual(old.Prices, next.Prices)
	if keysSame && pricesSame {
		return nil, nil
	}
	var pend *policy.Pending
	if !keysSame {
		var err error
		pend, err = a.Policy.Prepare(policy.Options{APIKeys: next.APIKeys, Keys: next.Keys})
		if err != nil {
			return nil, err
		}
		if a.DB != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := pend.Seed(ctx, a.DB); err != nil {
				a.Log.Warn("could not load the new keys' spending so far; their budgets count from now", "err", err)
			}
		}
	}
	return func() {
		if pend != nil {
			pend.Commit()
			a.Log.Info("relay keys reloaded", "api_keys", len(next.APIKeys), "keys", len(next.Keys))
		}
		if !pricesSame {
			a.ops.prices.Update(next.Prices)
			a.Log.Info("prices reloaded", "overrides", len(next.Prices))
		}
	}, nil
}

// schedulerOptions are the scheduler's durations from the [session] table.
func schedulerOptions(s config.SessionConfig) scheduler.Options {
	return scheduler.Options{
		StickyTTL: config.Seconds(s.StickyTTLSeconds), RenewalThreshold: config.Seconds(s.RenewalThresholdSeconds),
		UnavailableCooldown: config.Seconds(s.UnavailableCooldownSeconds), RateLimitCooldown: config.Seconds(s.RateLimitCooldownSeconds),
		MaxRateLimitHint: config.Seconds(s.MaxRateLimitCooldownSeconds), OverloadCooldown: config.Seconds(s.OverloadCooldownSeconds),
		ErrorCooldown: config.Seconds(s.ErrorCooldownSeconds),
	}
}

// sameCredential reports whether two configs of one account reach the
// upstream the same way (same client, same credential), so its client,
// connections and token refresher carry over.
func sameCredential(a, b config.AccountConfig) bool {
	return a.Type == b.Type && a.RefreshToken == b.RefreshToken && a.APIKey == b.APIKey && a.APIURL == b.APIURL &&
		reflect.DeepEqual(a.Proxy, b.Proxy) && a.TokenURL == b.TokenURL && a.ClientID == b.ClientID &&
		a.ClientSecret == b.ClientSecret && a.ProjectID == b.ProjectID
}

// prepareAccounts builds the upstreams of added and changed accounts and
// returns the commit that swaps the relay's table, then the scheduler's
// account set (in that order, so an account Pick returns always has its
// upstream), and starts and stops token refreshers.
//
// An account whose config is unchanged keeps its *Account and upstream. One
// whose name, priority or enabled flag changed gets a new *Account (fresh
// Index) sharing the old client and credential. One whose credential, URL
// or proxy changed gets everything new, and its cooldowns are cleared (a
// new login cures a dead token). Requests already on an old upstream finish
// with it.
func (a *App) prepareAccounts(old, next *config.Config) (func(), error) {
	prev := map[string]*relay.Upstream{}
	for _, up := range a.Relay.Upstreams() {
		prev[up.Account.ID] = up
	}
	a.ops.mu.Lock()
	defer a.ops.mu.Unlock()
	idx := a.ops.nextIndex
	ups := make([]*relay.Upstream, 0, len(next.Accounts))
	accts := make([]*scheduler.Account, 0, len(next.Accounts))
	started := map[string]*credential.OAuth{}
	var reset, stop []string
	changed := len(next.Accounts) != len(prev)
	for i, ac := range next.Accounts {
		p := prev[ac.ID]
		if p != nil && reflect.DeepEqual(p.Config, ac) {
			ups, accts = append(ups, p), append(accts, p.Account)
			// A moved account changes the scheduler's final tie-break.
			changed = changed || i >= len(old.Accounts) || old.Accounts[i].ID != ac.ID
			continue
		}
		changed = true
		acct := schedAccount(next, &next.Accounts[i], idx)
		idx++
		if p != nil && sameCredential(p.Config, ac) {
			up := *p
			up.Account, up.Config = acct, ac
			ups, accts = append(ups, &up), append(accts, acct)
			continue
		}
		up, o, err := newUpstream(acct, ac, a.ops.credStore, a.ops.locker, a.Log, a.refreshed(ac.ID))
		if err != nil {
			return nil, err
		}
		a.wireProject(up)
		if o != nil {
			started[ac.ID] = o
		}
		if p != nil {
			reset = append(reset, ac.ID)
			stop = append(stop, ac.ID)
		}
		ups, accts = append(ups, up), append(accts, acct)
	}
	keep := map[string]bool{}
	for _, ac := range next.Accounts {
		keep[ac.ID] = true
	}
	var removed []*relay.Upstream
	for id, p := range prev {
		if !keep[id] {
			removed = append(removed, p)
			stop = append(stop, id)
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	a.ops.pendingIndex = idx
	return func() {
		a.ops.mu.Lock()
		defer a.ops.mu.Unlock()
		a.ops.nextIndex = a.ops.pendingIndex
		a.Relay.SetUpstreams(ups)
		a.Sched.SetAccounts(accts)
		for _, id := range reset {
			a.Sched.Reset(id)
		}
		for _, id := range stop {
			if cancel := a.ops.runners[id]; cancel != nil {
				cancel()
				delete(a.ops.runners, id)
			}
			delete(a.ops.refreshers, id)
		}
		for id, o := range started {
			a.ops.refreshers[id] = o
			a.runRefresherLocked(id, o)
		}
		for _, up := range removed {
			// Only idle connections close; requests still on the account
			// keep theirs until they end. Through the client, so an account
			// type's transport wrapper (codex-oauth) passes it on.
			up.Client.CloseIdleConnections()
		}
		a.Log.Info("accounts reloaded", "accounts", len(accts), "removed", len(removed), "new_credentials", len(started))
	}, nil
}

// runRefresherLocked starts the background refresher of one OAuth account;
// a.ops.mu is held. Before Start it only records o: Start runs it.
func (a *App) runRefresherLocked(id string, o *credential.OAuth) {
	if a.ops.runCtx == nil {
		return
	}
	ctx, cancel := context.WithCancel(a.ops.runCtx)
	a.ops.runners[id] = cancel
	a.bg.Add(1)
	go func() { defer a.bg.Done(); o.Run(ctx) }()
}

// reloadHealth adds the config's state to /health: "config" is "ok" or
// "stale" (the file holds a config that could not be applied) and
// "config_error" says why, with line numbers.
func (a *App) reloadHealth(h *Health) {
	st := a.ops.reloader.Status()
	if st.Stale {
		h.Config, h.ConfigError = "stale", st.Error
		return
	}
	h.Config = "ok"
}

// ops is the App's hot reload, metrics and alerts state.
type ops struct {
	reloader *reload.Reloader
	signals  <-chan os.Signal
	watch    bool

	credStore credential.Store
	locker    credential.Locker
	// prices is the relay's price table; the keys hook updates it in place.
	prices *pricing.Table
	// adminBrake counts wrong admin keys per client address, wherever one
	// is presented: the admin API, the dashboard's sign-in, /metrics.
	adminBrake *policy.Brake
	// adminAuth is the admin-key check (adminAuth builds it).
	adminAuth *admin.Auth

	mu           sync.Mutex // guards the fields below
	nextIndex    int
	pendingIndex int
	refreshers   map[string]*credential.OAuth
	runners      map[string]context.CancelFunc
	runCtx       context.Context

	opsMetrics
}

// initOps prepares the ops state before the accounts are built.
func (a *App) initOps(cfg *config.Config) {
	a.ops.refreshers = map[string]*credential.OAuth{}
	a.ops.runners = map[string]context.CancelFunc{}
	a.ops.adminBrake = policy.NewBrake(0, nil)
	a.ops.reloader = reload.New(cfg, func() (*config.Config, error) {
		if cfg.Path == "" {
			return nil, fmt.Errorf("no config file to reload: the relay started on defaults")
		}
		return config.LoadFile(cfg.Path)
	}, a.Log)
	a.initMetrics(cfg)
}

// startOps starts the token refreshers, the config watcher, the metrics
// listener and the alert sender.
func (a *App) startOps(ctx context.Context) {
	a.ops.mu.Lock()
	a.ops.runCtx = ctx
	for id, o := range a.ops.refreshers {
		a.runRefresherLocked(id, o)
	}
	a.ops.mu.Unlock()
	if a.ops.watch {
		// The watch starts before Start returns, so a change written right
		// after is not missed; Run logs a failure (and tries again).
		_ = a.ops.reloader.Watch()
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.ops.reloader.Run(ctx, a.ops.signals)
		}()
	}
	a.startMetrics(ctx)
}
