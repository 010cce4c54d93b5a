package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/reload"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// usageSince sums usage since since by grouping by: the cluster's when it
// can answer, else this relay's own; the scope says which.
func (a *API) usageSince(ctx context.Context, since time.Time, by string) ([]store.UsageRow, string) {
	if a.o.Cluster != nil {
		if rows, _, err := a.o.Cluster.Usage(ctx, since, by); err == nil {
			return rows, store.ScopeCluster
		}
	}
	if a.o.Usage == nil {
		return nil, store.ScopeLocal
	}
	rows, err := a.o.Usage.Usage(ctx, store.UsageQuery{From: since, By: by})
	if err != nil {
		a.o.Log.Warn("admin: read usage", "by", by, "err", err)
	}
	return rows, store.ScopeLocal
}

func totalsOf(r store.UsageRow) store.Totals {
	return store.Totals{Requests: r.Requests, Errors: r.Errors, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
		CacheCreationTokens: r.CacheCreationTokens, CacheReadTokens: r.CacheReadTokens}
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

func (a *API) known(w http.ResponseWriter, id string) bool {
	for _, st := range a.o.Sched.States() {
		if st.ID == id {
			return true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no account %q", id))
	return false
}

// ResetResponse is POST /admin/v1/accounts/{id}/reset.
type ResetResponse struct {
	Account string `json:"account"`
	Cleared int    `json:"cleared"`
}

func (a *API) resetAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !a.known(w, id) {
		return
	}
	// The scheduler persists the cleared cooldowns (and tells the cluster).
	n := a.o.Sched.Reset(id)
	a.o.Log.Info("cooldowns cleared through the admin API", "account", id, "cleared", n)
	writeJSON(w, http.StatusOK, ResetResponse{Account: id, Cleared: n})
}

// DisableResponse is POST /admin/v1/accounts/{id}/disable and .../enable.
type DisableResponse struct {
	Account  string `json:"account"`
	Disabled bool   `json:"disabled"`
	// Persisted is false when the state database could not be written: the
	// change holds until the relay restarts.
	Persisted bool `json:"persisted"`
}

func (a *API) setDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !a.known(w, id) {
			return
		}
		a.o.Sched.SetDisabled(id, disabled)
		resp := DisableResponse{Account: id, Disabled: disabled}
		if a.o.State != nil {
			if err := a.o.State.SetAccountDisabled(r.Context(), id, disabled); err != nil {
				a.o.Log.Error("admin: could not save the account's state; it holds until a restart", "account", id, "err", err)
			} else {
				resp.Persisted = true
			}
		}
		a.o.Log.Info("account changed through the admin API", "account", id, "disabled", disabled)
		writeJSON(w, http.StatusOK, resp)
	}
}

// Session is one sticky binding.
type Session struct {
	Key       string    `json:"key"`
	Account   string    `json:"account"`
	ExpiresAt time.Time `json:"expires_at"`
	// RelayKey names the relay key of the conversation's last turn (its
	// [[keys]] name, or api_keys[N]), Model the model that turn asked for,
	// LastTurn when it was picked; absent when unknown (a binding restored
	// from the database after a restart, or learnt from an older relay).
	RelayKey string     `json:"relay_key,omitempty"`
	Model    string     `json:"model,omitempty"`
	LastTurn *time.Time `json:"last_turn,omitempty"`
}

// SessionsResponse is GET /admin/v1/sessions.
type SessionsResponse struct {
	Time     time.Time `json:"time"`
	Sessions []Session `json:"sessions"`
}

func (a *API) sessions(w http.ResponseWriter, r *http.Request) {
	resp := SessionsResponse{Time: a.o.Now().UTC(), Sessions: []Session{}}
	for _, b := range a.o.Sched.Sessions() {
		resp.Sessions = append(resp.Sessions, a.sessionOf(b))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) sessionOf(b state.Binding) Session {
	s := Session{Key: b.Key, Account: b.AccountID, ExpiresAt: b.ExpiresAt.UTC(), RelayKey: b.KeyName, Model: b.Model}
	if s.RelayKey == "" && b.KeyHash != "" {
		s.RelayKey = a.o.KeyLabel(b.KeyHash)
	}
	if !b.LastTurn.IsZero() {
		t := b.LastTurn.UTC()
		s.LastTurn = &t
	}
	return s
}

// ClearRequest is the body of POST /admin/v1/sessions/clear: one session by
// key, all of an account's, or (both empty) all.
type ClearRequest struct {
	Key     string `json:"key"`
	Account string `json:"account"`
}

// ClearResponse answers POST /admin/v1/sessions/clear.
type ClearResponse struct {
	Removed int64 `json:"removed"`
}

func (a *API) clearSessions(w http.ResponseWriter, r *http.Request) {
	var req ClearRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "body must be JSON {\"key\": ..., \"account\": ...}: "+err.Error())
			return
		}
	}
	if req.Key != "" && req.Account != "" {
		writeError(w, http.StatusBadRequest, "give a session key or an account, not both")
		return
	}
	n := int64(a.o.Sched.ForgetSessions(req.Key, req.Account))
	if a.o.State != nil {
		if m, err := a.o.State.DeleteSessions(r.Context(), req.Key, req.Account); err != nil {
			a.o.Log.Error("admin: could not delete saved sessions", "err", err)
		} else {
			n = max(n, m)
		}
	}
	a.o.Log.Info("sessions cleared through the admin API", "account", req.Account, "removed", n)
	writeJSON(w, http.StatusOK, ClearResponse{Removed: n})
}

// UsageReport is GET /admin/v1/usage: the JSON of `ccrelay stats --json`.
type UsageReport = store.Report

var groupings = map[string]bool{store.GroupNone: true, store.GroupKey: true, store.GroupAccount: true, store.GroupModel: true, store.GroupPlatform: true,
	store.GroupServedModel: true}

func (a *API) usageParams(w http.ResponseWriter, r *http.Request) (since time.Time, by string, ok bool) {
	q := r.URL.Query()
	by = q.Get("by")
	if !groupings[by] {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("by must be key, account, model, served_model or platform, not %q", by))
		return since, by, false
	}
	s := q.Get("since")
	if !q.Has("since") {
		s = "24h"
	}
	since, err := usage.ParseSince(s, a.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "since: "+err.Error())
		return since, by, false
	}
	return since, by, true
}

// ReasonNoCluster is the scope_reason of a relay that is not part of a
// cluster: its own numbers are all there is.
const ReasonNoCluster = "this relay is not part of a cluster"

// localReason says why a cluster relay answers with its own numbers.
func localReason(err error) string {
	return "the cluster's numbers are not available (" + err.Error() + "): these are this relay's own"
}

func (a *API) usage(w http.ResponseWriter, r *http.Request) {
	since, by, ok := a.usageParams(w, r)
	if !ok {
		return
	}
	rep := store.NewReport("server", since, a.o.Now(), by)
	rep.Scope, rep.ScopeReason = store.ScopeLocal, ReasonNoCluster
	if a.o.Cluster != nil {
		rows, start, err := a.o.Cluster.Usage(r.Context(), since, by)
		if err == nil {
			if !since.IsZero() {
				s := start.UTC()
				rep.Since = &s
			}
			rep.SetGroups(rows, a.o.KeyLabel)
			rep.Scope, rep.ScopeReason = store.ScopeCluster, ""
			a.fillLatencies(r.Context(), &rep, since)
			writeJSON(w, http.StatusOK, rep)
			return
		}
		a.o.Log.Warn("admin: answering usage with this relay's own numbers", "reason", err.Error())
		rep.ScopeReason = localReason(err)
	}
	if a.o.Usage == nil {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	if err := a.o.Usage.FillReport(r.Context(), &rep, a.o.KeyLabel); err != nil {
		writeError(w, http.StatusInternalServerError, "read usage: "+err.Error())
		return
	}
	a.fillLatencies(r.Context(), &rep, since)
	writeJSON(w, http.StatusOK, rep)
}

// fillLatencies adds the latency percentiles of this relay's requests in
// the window to rep; without a database, or when it cannot be read, they
// stay zero (the rest of the report stands).
func (a *API) fillLatencies(ctx context.Context, rep *store.Report, since time.Time) {
	if a.o.Usage == nil {
		return
	}
	p, err := a.o.Usage.Latencies(ctx, since, rep.By, a.o.KeyLabel)
	if err != nil {
		a.o.Log.Warn("admin: usage report without latency percentiles", "err", err)
		return
	}
	rep.SetLatencies(p)
}

// SeriesResponse is GET /admin/v1/usage/series.
type SeriesResponse struct {
	// Since is where the first bucket's sums begin (the asked start, rounded
	// down to the cluster's buckets when Scope is cluster).
	Since       time.Time           `json:"since"`
	Until       time.Time           `json:"until"`
	StepSeconds int64               `json:"step_seconds"`
	By          string              `json:"by"`
	Points      []store.SeriesPoint `json:"points"`
	// Scope and ScopeReason are as in the usage report.
	Scope       string `json:"scope"`
	ScopeReason string `json:"scope_reason,omitempty"`
}

// maxBuckets bounds a series so a request cannot ask for millions of points.
const maxBuckets = 2000

func (a *API) series(w http.ResponseWriter, r *http.Request) {
	since, by, ok := a.usageParams(w, r)
	if !ok {
		return
	}
	now := a.o.Now()
	if since.IsZero() {
		writeError(w, http.StatusBadRequest, "since: a series needs a window start, not \"all\"")
		return
	}
	step := time.Hour
	if s := r.URL.Query().Get("step"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("step %q must be a duration of at least 1s (60s, 5m, 1h, 24h)", s))
			return
		}
		step = d
	}
	if now.Sub(since)/step > maxBuckets {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the window holds more than %d steps; use a larger step", maxBuckets))
		return
	}
	resp := SeriesResponse{Since: since.UTC(), Until: now.UTC(), StepSeconds: int64(step / time.Second), By: by, Points: []store.SeriesPoint{},
		Scope: store.ScopeLocal, ScopeReason: ReasonNoCluster}
	var pts []store.SeriesPoint
	done := false
	if a.o.Cluster != nil {
		p, start, err := a.o.Cluster.UsageSeries(r.Context(), since, step, by)
		if err == nil {
			pts, done = p, true
			resp.Since, resp.Scope, resp.ScopeReason = start.UTC(), store.ScopeCluster, ""
		} else {
			resp.ScopeReason = localReason(err)
		}
	}
	if !done && a.o.Usage != nil {
		p, err := a.o.Usage.UsageSeries(r.Context(), since, time.Time{}, step, by)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "read usage: "+err.Error())
			return
		}
		pts = p
	}
	for _, p := range pts {
		if by == store.GroupKey && p.Group == "" {
			p.Group = a.o.KeyLabel(p.KeyHash)
		}
		resp.Points = append(resp.Points, p)
	}
	writeJSON(w, http.StatusOK, resp)
}

// ErrReloadUnavailable is what POST /admin/v1/reload says while no Reloader is wired.
var ErrReloadUnavailable = errors.New("reload is not available in this relay: restart it to apply a changed config")

func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	if a.o.Reload == nil {
		writeError(w, http.StatusNotImplemented, ErrReloadUnavailable.Error())
		return
	}
	err := a.o.Reload.Reload(r.Context())
	switch {
	case errors.Is(err, reload.ErrUnchanged):
		// Nothing to apply is not a failure: the config in force is the file's.
		writeJSON(w, http.StatusOK, ReloadResponse{Status: ReloadUnchanged})
		return
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, "the new config was refused; the old one keeps serving: "+err.Error())
		return
	}
	a.o.Log.Info("config reloaded through the admin API")
	writeJSON(w, http.StatusOK, ReloadResponse{Reloaded: true, Status: ReloadApplied})
}

// ReloadResponse answers POST /admin/v1/reload when the config in force is
// the file's afterwards.
type ReloadResponse struct {
	// Reloaded is true when a changed config was applied.
	Reloaded bool `json:"reloaded"`
	// Status is ReloadApplied or ReloadUnchanged.
	Status string `json:"status"`
}

// The statuses of a ReloadResponse.
const (
	// ReloadApplied: the file held a changed config, now in force.
	ReloadApplied = "reloaded"
	// ReloadUnchanged: the file holds the config already in force.
	ReloadUnchanged = "unchanged"
)

// Health is GET /admin/v1/health: /health's fields plus the account states.
type Health struct {
	// Relay is /health's detail (status, version, uptime, in-flight requests,
	// usage queue, database, cluster).
	Relay any `json:"relay"`
	// Accounts counts accounts by state (ready, cooling_down, disabled,
	// token_invalid) and by platform.
	Accounts    map[string]int            `json:"accounts"`
	Platforms   map[string]map[string]int `json:"platforms"`
	Sessions    int                       `json:"sessions"`
	Config      *ConfigHealth             `json:"config,omitempty"`
	ReloadWired bool                      `json:"reload_available"`
	Time        time.Time                 `json:"time"`
}

// ConfigHealth says whether the running config is the file's.
type ConfigHealth struct {
	Stale    bool      `json:"stale"`
	Reason   string    `json:"reason,omitempty"`
	LoadedAt time.Time `json:"loaded_at"`
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	now := a.o.Now()
	h := Health{
		Relay:     struct{}{},
		Accounts:  map[string]int{StateReady: 0, StateCoolingDown: 0, StateDisabled: 0, StateTokenInvalid: 0},
		Platforms: map[string]map[string]int{}, Sessions: len(a.o.Sched.Sessions()), ReloadWired: a.o.Reload != nil, Time: now.UTC(),
	}
	if a.o.Health != nil {
		h.Relay = a.o.Health()
	}
	views, _ := a.views(r.Context(), now, withoutUsage)
	for _, v := range views {
		s := v.State
		h.Accounts[s]++
		if h.Platforms[v.Platform] == nil {
			h.Platforms[v.Platform] = map[string]int{}
		}
		h.Platforms[v.Platform][s]++
	}
	if a.o.ConfigStatus != nil {
		stale, reason, at := a.o.ConfigStatus.ConfigStatus()
		h.Config = &ConfigHealth{Stale: stale, Reason: reason, LoadedAt: at.UTC()}
	}
	writeJSON(w, http.StatusOK, h)
}
