// Package relay holds the HTTP handlers that carry a client's request to an
// upstream account and the answer back: route -> provider adapter -> failover
// loop over the scheduler's accounts -> streamed response, with usage recorded.
package relay

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/routing"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/sse"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// UsageRecorder receives one record per served request; it must not block.
type UsageRecorder interface {
	Record(usage.Record)
}

// TokenSource yields the secret an account puts on an upstream request: an
// API key, or an OAuth access token that it refreshes. A refresh failure
// should implement Verdict() provider.Verdict so the account cools down right.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	Invalidate(token string)
}

// ProjectSource yields the Code Assist project of a gemini (Google OAuth) account.
type ProjectSource interface {
	Project(ctx context.Context, accessToken string) (string, error)
}

// Upstream is everything the relay holds for one account.
type Upstream struct {
	Account *scheduler.Account
	Config  config.AccountConfig
	// Spec is the account's type; nil means the one Config.Type names.
	Spec *accounttype.Spec
	// Client carries all of the account's traffic (its proxy, pooled connections).
	Client *http.Client
	Token  TokenSource
	// OAuth reports whether Token refreshes (a 401 then earns one retry).
	OAuth bool
	// Project is set for gemini (Code Assist) accounts.
	Project ProjectSource

	// Learned holds the provider-side account id taken from refreshed id
	// tokens (codex-oauth); nil for types whose tokens name none. Copies of
	// the upstream (a reload renaming the account) share it, as they share
	// the credential that feeds it.
	Learned *LearnedAccount
}

// LearnedAccount is the provider-side account id the latest refreshed id
// token named (codex-oauth: chatgpt_account_id). Requests carry it instead
// of the config's, as Codex CLI does with the account id of every refreshed
// id token. It is kept in memory only: a restart starts from the config.
type LearnedAccount struct {
	id atomic.Pointer[string]
}

// Set records id ("" is ignored) and reports whether it differs from the
// one in use before (the previous id token's, else configured, "" if none).
func (l *LearnedAccount) Set(id, configured string) (prev string, changed bool) {
	prev = configured
	if p := l.id.Load(); p != nil {
		prev = *p
	}
	if id == "" {
		return prev, false
	}
	l.id.Store(&id)
	return prev, prev != id
}

// Get returns the learned id, or "" before any.
func (l *LearnedAccount) Get() string {
	if l == nil {
		return ""
	}
	if p := l.id.Load(); p != nil {
		return *p
	}
	return ""
}

// TypeAccount is what the account type's functions get of this account: the
// config's description, with the provider-side account id learned from
// refreshes in place of the configured one.
func (up *Upstream) TypeAccount() accounttype.Account {
	a := up.Config.Account()
	if id := up.Learned.Get(); id != "" {
		a.UpstreamAccount = id
	}
	return a
}

// Options are the relay's settings.
type Options struct {
	// Policy authenticates and admits requests; required (a policy without
	// keys serves only this machine's clients unless AllowUnauthenticated).
	Policy *policy.Policy
	// Brake limits wrong-key attempts per client address; nil = none.
	Brake *policy.Brake
	// Prices prices each request; nil leaves its cost unknown.
	Prices Coster
	// AllowUnauthenticated serves non-loopback clients when no key is configured.
	AllowUnauthenticated bool
	MaxBodyBytes         int64
	FirstByteTimeout     time.Duration
	ResponseTimeout      time.Duration
	IdleTimeout          time.Duration
	// BodyTimeout bounds the arrival of a request body; 0 = no bound.
	BodyTimeout time.Duration
	MaxAttempts int
	// Models maps client model names to upstream names.
	Models map[string]string
	// Routes choose the pools that serve a model (routing.go); nil = none.
	Routes *routing.Table
}

// Relay serves the API routes.
type Relay struct {
	opts  Options
	sched *scheduler.Scheduler
	// table is the account upstreams; a reload swaps it (copy on write), so
	// the request path reads it with one atomic load and no lock.
	table atomic.Pointer[upstreamTable]
	// models is Options.Models, swapped whole by a reload.
	models atomic.Pointer[map[string]string]
	// routes is Options.Routes, swapped whole by a reload (SetRoutes).
	routes atomic.Pointer[routing.Table]
	rec    UsageRecorder
	log    *slog.Logger
	now    func() time.Time
	policy *policy.Policy
	brake  *policy.Brake
	prices Coster

	// bufPool holds stream read buffers, outPool the buffers events are
	// rewritten into (see pipeStream).
	bufPool sync.Pool
	outPool sync.Pool
	// parserPool holds stream parsers with their buffers.
	parserPool sync.Pool

	// shared is the cluster's view of sticky sessions; nil without one.
	shared SharedSessions
	// quota learns every answer's rate-limit numbers; nil without one.
	quota QuotaObserver
	// configFollowed: the relay reloads its config file on change (see
	// MarkConfigFollowed), which the 503 for a pool without accounts says.
	configFollowed atomic.Bool
	// captures are the body captures in force (reqlog.go).
	captures atomic.Pointer[reqlog.Set]
	// allowUnauth is Options.AllowUnauthenticated; a reload sets it
	// (SetAllowUnauthenticated).
	allowUnauth atomic.Bool
	// sockets are the open Responses WebSockets (websocket.go), which the
	// server's drain does not see.
	sockets wsHub
}

// MarkConfigFollowed records that a config watcher applies changes to the
// config file to this relay, so that a missing account is added without a
// restart.
func (r *Relay) MarkConfigFollowed() { r.configFollowed.Store(true) }

// SharedSessions is sticky sessions shared by several relays (a cluster).
// The relay reads a conversation that is new to it, and writes a new
// binding before serving, so consecutive turns sent to different relays
// stay on one account.
type SharedSessions interface {
	LookupSession(ctx context.Context, key string) (state.Binding, bool)
	ClaimSession(ctx context.Context, b state.Binding)
}

// SetSharedSessions attaches a cluster's sessions; call before serving.
func (r *Relay) SetSharedSessions(s SharedSessions) { r.shared = s }

// maxPooledOut is the largest output buffer kept for reuse; one that grew
// past it (a huge event) is left to the garbage collector.
const maxPooledOut = 64 << 10

func (r *Relay) putOut(b *[]byte) {
	if cap(*b) <= maxPooledOut {
		*b = (*b)[:0]
		r.outPool.Put(b)
	}
}

// New builds a relay. upstreams must be indexed by their Account.Index;
// opts.Policy must be set (New panics without one: every request would be
// served without authentication, and no caller means that).
func New(opts Options, sched *scheduler.Scheduler, upstreams []*Upstream, rec UsageRecorder, log *slog.Logger) *Relay {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Policy == nil {
		panic("relay.New: Options.Policy is nil")
	}
	r := &Relay{opts: opts, sched: sched, rec: rec, log: log, now: time.Now,
		policy: opts.Policy, brake: opts.Brake, prices: opts.Prices}
	r.table.Store(&upstreamTable{byIndex: upstreams, current: upstreams, redact: newRedactor(upstreams)})
	r.SetModels(opts.Models)
	r.SetRoutes(opts.Routes)
	r.allowUnauth.Store(r.opts.AllowUnauthenticated)
	// 4 KB, the transport's own read buffer: a read takes what the
	// transport holds in one piece (a larger one reads past it straight
	// from the socket only when the transport's buffer is empty), and an
	// open stream pays no more than that. The SSE parser assembles longer
	// events.
	r.bufPool.New = func() any { b := make([]byte, 0, 4<<10); return &b }
	r.outPool.New = func() any { b := make([]byte, 0, 4<<10); return &b }
	r.parserPool.New = func() any { return new(sse.Parser) }
	return r
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// TypeSpec is the account's type description: Spec, else the one
// Config.Type names.
func (up *Upstream) TypeSpec() *accounttype.Spec {
	if up.Spec != nil {
		return up.Spec
	}
	return accounttype.Lookup(up.Config.Type)
}

// baseURL is the account's upstream API root: its api_url, else its type's default.
func (up *Upstream) baseURL() string { return up.TypeSpec().BaseURL(up.Config.APIURL) }

// authenticate puts the account's credential on an upstream request, as its
// type says.
func (up *Upstream) authenticate(h http.Header, secret string) {
	up.TypeSpec().Authenticate(h, up.TypeAccount(), secret)
}

// SetModels replaces the model name map (a config reload); requests that
// already converted their body keep the names they got.
func (r *Relay) SetModels(m map[string]string) { r.models.Store(&m) }

// SetAllowUnauthenticated changes whether a relay without keys serves
// clients beyond this machine (a config reload); the next request sees it.
func (r *Relay) SetAllowUnauthenticated(allow bool) { r.allowUnauth.Store(allow) }

// modelMap is the model name map in force.
func (r *Relay) modelMap() map[string]string { return *r.models.Load() }

// upstreamTable is one generation of the account upstreams.
type upstreamTable struct {
	// byIndex is indexed by Account.Index. It keeps the upstreams of
	// accounts a reload removed or replaced, so a request that picked one
	// before the swap still finds it (their indexes are never reused).
	byIndex []*Upstream
	// current is the configured set, in config order.
	current []*Upstream
	// redact removes every known account's secrets (removed ones too) from
	// upstream error text given to clients.
	redact *redactor
	// groupExclude caches, per key group set (policy.Key.GroupSet), the
	// configured accounts outside those groups. Filled on first use, so it
	// follows reloads of both keys and accounts: a new account table starts
	// empty, and a key whose groups changed has another group set.
	groupExclude sync.Map // string -> []string
}

// excludedBy returns the ids of the configured accounts k may not use
// (none in its groups); nil when k may use every group. Once the cache is
// warm (a few requests per group set after a reload) a hit is one
// lock-free sync.Map load.
func (t *upstreamTable) excludedBy(k *policy.Key) []string {
	gs := k.GroupSet()
	if gs == "" {
		return nil
	}
	if ex, ok := t.groupExclude.Load(gs); ok {
		return ex.([]string)
	}
	ex := []string{}
	for _, up := range t.current {
		if up != nil && !intersects(up.Config.Groups, k.Groups) {
			ex = append(ex, up.Account.ID)
		}
	}
	t.groupExclude.Store(gs, ex)
	return ex
}

// upstream returns the account's upstream data.
func (r *Relay) upstream(a *scheduler.Account) *Upstream { return r.table.Load().byIndex[a.Index] }

// Upstreams returns the configured upstreams, in config order. The slice is
// shared: do not modify it.
func (r *Relay) Upstreams() []*Upstream { return r.table.Load().current }

// SetUpstreams installs a new set of upstreams (a config reload). current is
// the new configured set; every Account.Index in it must be new or name the
// same upstream as before. Call it before the scheduler learns the new
// accounts (scheduler.SetAccounts), so that any account Pick returns has its
// upstream here. Requests already on a replaced upstream finish with it.
func (r *Relay) SetUpstreams(current []*Upstream) {
	old := r.table.Load()
	n := len(old.byIndex)
	for _, up := range current {
		n = max(n, up.Account.Index+1)
	}
	byIndex := make([]*Upstream, n)
	copy(byIndex, old.byIndex)
	for _, up := range current {
		byIndex[up.Account.Index] = up
	}
	r.table.Store(&upstreamTable{byIndex: byIndex, current: current, redact: newRedactor(byIndex)})
}

// Verdicter is implemented by errors that know what they mean for an account.
type Verdicter interface{ Verdict() provider.Verdict }

var errMalformed = errMsg("response body is not valid JSON")

type errMsg string

func (e errMsg) Error() string { return string(e) }
