// Package admin serves the admin API, /admin/v1/..., on the relay's own
// listener: JSON views of the accounts, sessions, keys, usage and health, and
// the few actions an operator takes (reset, disable and enable an account,
// clear sessions, reload). The dashboard and `ccrelay ... --server` use it and
// nothing else, so there is one way to change a running relay's state.
//
// Every data source is a small interface declared here. Sources that other
// parts of the relay own and that may be absent (quota windows, named keys
// with budgets, config reload) are optional: without them the API answers an
// empty list or "not available", never an error.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Prefix is where the admin API lives.
const Prefix = "/admin/v1/"

// Scheduler is the live account and session state (internal/scheduler).
type Scheduler interface {
	States() []scheduler.AccountState
	Cooldowns() []state.Cooldown
	Reset(id string) int
	SetDisabled(id string, disabled bool) bool
	Sessions() []state.Binding
	ForgetSessions(key, accountID string) int
}

// StateStore persists what the admin API changes (internal/store), so a
// disabled account stays disabled and a cleared session stays cleared
// across a restart.
type StateStore interface {
	SetAccountDisabled(ctx context.Context, accountID string, disabled bool) error
	DeleteSessions(ctx context.Context, key, accountID string) (int64, error)
}

// UsageStore answers usage questions (internal/store).
type UsageStore interface {
	FillReport(ctx context.Context, r *store.Report, keyLabel func(hash string) string) error
	Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageRow, error)
	UsageSeries(ctx context.Context, since, until time.Time, step time.Duration, group string) ([]store.SeriesPoint, error)
	AccountTotals(ctx context.Context, since time.Time) (map[string]store.Totals, error)
	// Latencies reads latency percentiles from this relay's raw rows
	// (bounded: store.LatencySample rows at most).
	Latencies(ctx context.Context, since time.Time, by string, keyLabel func(hash string) string) (map[string]store.Percentiles, error)
}

// ClusterUsage answers usage questions for every relay sharing the
// cluster's Redis (internal/cluster). start is where its sums begin (the
// window start rounded down to its buckets). An error means it cannot answer
// now (Redis unreachable, or a question its buckets do not cover): the API
// then answers with this relay's own numbers and says why. Wire it with
// Options.Cluster; without it every answer is this relay's own.
type ClusterUsage interface {
	Usage(ctx context.Context, since time.Time, by string) (rows []store.UsageRow, start time.Time, err error)
	UsageSeries(ctx context.Context, since time.Time, step time.Duration, by string) (pts []store.SeriesPoint, start time.Time, err error)
}

// QuotaSource reports the rate-limit numbers the relay learned from an
// account's answers (Claude's unified 5h / 7d / per-model windows, Codex's
// primary / secondary, an API key's buckets), as internal/quota's Tracker
// keeps them. It must not block: it is called once per account for every
// GET /admin/v1/accounts. Wire it with Options.Quota; until then accounts
// show "quota": null.
type QuotaSource interface {
	Snapshot(accountID string) (quota.Snapshot, bool)
}

// KeySource lists the relay keys with their limits, budgets and usage (issue
// 16: [[keys]], internal/policy). Wire it with Options.Keys; until then the
// API lists the api_keys by position (api_keys[N]) with today's usage and no
// limits or budgets. It must never return a key's value: Last4 at most.
type KeySource interface {
	Keys(ctx context.Context) ([]Key, error)
}

// Key is one relay key as the admin API shows it. It holds no secret.
type Key struct {
	Name string `json:"name"`
	// Source is where the key is configured: "keys" for a [[keys]] entry
	// (which the admin API can disable and enable), "api_keys" for an
	// unnamed one, listed as api_keys[N].
	Source    string     `json:"source"`
	Last4     string     `json:"last4"`
	Enabled   bool       `json:"enabled"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Models    []string   `json:"models,omitempty"`
	Groups    []string   `json:"groups,omitempty"`
	// RPM and Concurrency are the key's limits; 0 = none.
	RPM         int `json:"rpm,omitempty"`
	Concurrency int `json:"concurrency,omitempty"`
	// InFlight and Queued are the key's requests being served now and
	// waiting for a concurrency slot: the whole cluster's when LoadScope is
	// "cluster" (this relay's plus the other relays' as of the last poll,
	// about a second old), this relay's alone when it is "local". They are
	// counted for keys with an rpm or concurrency limit.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// LoadScope is LoadCluster or LoadLocal; absent for an api_keys entry
	// (its requests are not counted).
	LoadScope string `json:"load_scope,omitempty"`
	// Budgets are the key's spending and token limits with what is used.
	Budgets  []Budget   `json:"budgets"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	// Today is the key's usage since local midnight.
	Today store.Totals `json:"today"`
	// CostTodayMicros is today's cost in micro-dollars; nil when unknown.
	CostTodayMicros *int64 `json:"cost_today_micros,omitempty"`
}

// The scopes of Key.InFlight and Key.Queued.
const (
	// LoadCluster: every relay of the cluster.
	LoadCluster = "cluster"
	// LoadLocal: this relay (no cluster, or its Redis is unreachable).
	LoadLocal = "local"
)

// Budget is one limit of a key over a window.
type Budget struct {
	// Window is daily, weekly or monthly.
	Window string `json:"window"`
	// Unit is "usd" or "tokens".
	Unit  string  `json:"unit"`
	Limit float64 `json:"limit"`
	Used  float64 `json:"used"`
	// ResetsAt is when the window starts over; nil when unknown.
	ResetsAt *time.Time `json:"resets_at,omitempty"`
}

// Reloader reads and applies the config file again (issue 18 hot reload). It
// returns the reason a new config was refused (the old one keeps serving).
// Wire it with Options.Reload; until then POST /admin/v1/reload answers 501.
type Reloader interface {
	Reload(ctx context.Context) error
}

// ConfigSource is the config in force (reload.Reloader's Current): the
// admin API creates, disables and enables named keys by editing its file
// (internal/config's text-preserving editor), then asks the Reloader to
// apply it. Wire it with Options.Config; until then POST /admin/v1/keys and
// .../keys/{name}/disable|enable answer 501.
type ConfigSource interface {
	Current() *config.Config
}

// ConfigStatus tells whether the running config is the file's (issue 18: an
// invalid new file leaves the old config serving, "stale"). Wire it with
// Options.ConfigStatus; until then health omits "config".
type ConfigStatus interface {
	ConfigStatus() (stale bool, reason string, loadedAt time.Time)
}

// AccountInfo is the configured, unchanging part of an account that the
// scheduler does not keep.
type AccountInfo struct {
	Groups []string
	// Proxy is type://host:port, never credentials; "" for none.
	Proxy string
}

// Options are the admin API's sources; Auth and Sched are required.
type Options struct {
	Auth  *Auth
	Sched Scheduler
	// State and Usage may be nil (no database): changes then stay in memory
	// and usage is empty.
	State StateStore
	Usage UsageStore
	// Cluster answers usage for the whole cluster; nil without one.
	Cluster ClusterUsage
	// ClusterRequests reads the whole cluster's request log; nil without
	// one (requests.go).
	ClusterRequests ClusterRequestLog
	// AccountInfo adds configured detail per account id; may be nil.
	AccountInfo func(id string) AccountInfo
	// RelayKeys are the api_keys, listed by position when Keys is nil.
	RelayKeys []string
	// KeyLabel names a key hash in usage reports (--by key).
	KeyLabel func(hash string) string
	// KeyLastUsed is when the key with hash was last used (zero: never or
	// unknown); it gives the api_keys entries their last use. nil: none.
	KeyLastUsed func(hash string) time.Time
	// Health is the /health detail, extended by GET /admin/v1/health.
	Health func() any
	// Optional, wired by their owners; see each interface.
	Quota        QuotaSource
	Keys         KeySource
	Reload       Reloader
	ConfigStatus ConfigStatus
	Config       ConfigSource
	// Requests and Captures are the request log and body captures (requests.go).
	Requests RequestLog
	Captures CaptureControl
	// NewKey makes a relay key for POST /admin/v1/keys; default
	// config.NewRelayKey.
	NewKey func() string
	Log    *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// API is the admin API handler.
type API struct {
	o   Options
	mux *http.ServeMux
}

// New builds the admin API.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.NewKey == nil {
		o.NewKey = config.NewRelayKey
	}
	if o.KeyLabel == nil {
		o.KeyLabel = func(h string) string { return h }
	}
	a := &API{o: o, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET "+Prefix+"accounts", a.accounts)
	a.mux.HandleFunc("POST "+Prefix+"accounts/{id}/reset", a.resetAccount)
	a.mux.HandleFunc("POST "+Prefix+"accounts/{id}/disable", a.setDisabled(true))
	a.mux.HandleFunc("POST "+Prefix+"accounts/{id}/enable", a.setDisabled(false))
	a.mux.HandleFunc("GET "+Prefix+"sessions", a.sessions)
	a.mux.HandleFunc("POST "+Prefix+"sessions/clear", a.clearSessions)
	a.mux.HandleFunc("GET "+Prefix+"keys", a.keys)
	a.mux.HandleFunc("POST "+Prefix+"keys", a.createKey)
	a.mux.HandleFunc("POST "+Prefix+"keys/{name}/disable", a.setKeyEnabled(false))
	a.mux.HandleFunc("POST "+Prefix+"keys/{name}/enable", a.setKeyEnabled(true))
	a.mux.HandleFunc("GET "+Prefix+"usage", a.usage)
	a.mux.HandleFunc("GET "+Prefix+"usage/series", a.series)
	a.mux.HandleFunc("POST "+Prefix+"reload", a.reload)
	a.mux.HandleFunc("GET "+Prefix+"health", a.health)
	a.requestRoutes()
	a.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no admin route for "+r.Method+" "+r.URL.Path)
	})
	return a
}

// ServeHTTP authenticates, then routes. With no admin key configured the
// admin API does not exist: 404.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.o.Auth == nil || !a.o.Auth.Enabled() {
		writeError(w, http.StatusNotFound, "the admin API is off: set admin_keys in the config to turn it on")
		return
	}
	if status, msg, wait := a.o.Auth.check(r); status != 0 {
		switch status {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="ccrelay admin"`)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(waitSeconds(wait)))
		}
		writeError(w, status, msg)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

// ErrorBody is the shape of every admin API error.
type ErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, code, b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
