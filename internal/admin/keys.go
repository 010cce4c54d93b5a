package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/reload"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Key sources (Key.Source).
const (
	SourceKeys    = "keys"
	SourceAPIKeys = "api_keys"
)

// KeysResponse is GET /admin/v1/keys.
type KeysResponse struct {
	// Named is false while the relay knows only api_keys (no [[keys]]
	// support wired): limits and budgets are then not available.
	Named bool  `json:"named"`
	Keys  []Key `json:"keys"`
}

// keys lists the named keys (Options.Keys) and then the api_keys by
// position, each with today's usage and cost from the usage database.
func (a *API) keys(w http.ResponseWriter, r *http.Request) {
	byName, byHash := a.keyUsageToday(r.Context())
	resp := KeysResponse{Named: a.o.Keys != nil, Keys: []Key{}}
	if a.o.Keys != nil {
		ks, err := a.o.Keys.Keys(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, "list keys: "+err.Error())
			return
		}
		for _, k := range ks {
			if k.Budgets == nil {
				k.Budgets = []Budget{}
			}
			k.Source = SourceKeys
			k.Today, k.CostTodayMicros = todayOf(byName[k.Name])
			resp.Keys = append(resp.Keys, k)
		}
	}
	for i, key := range a.o.RelayKeys {
		k := Key{Name: fmt.Sprintf("api_keys[%d]", i), Source: SourceAPIKeys, Last4: Last4(key), Enabled: true, Budgets: []Budget{}}
		hash := usage.HashKey(key)
		k.Today, k.CostTodayMicros = todayOf(byHash[hash])
		if a.o.KeyLastUsed != nil {
			if t := a.o.KeyLastUsed(hash); !t.IsZero() {
				t = t.UTC()
				k.LastUsed = &t
			}
		}
		resp.Keys = append(resp.Keys, k)
	}
	writeJSON(w, http.StatusOK, resp)
}

// keyUsageToday is today's usage per key name and, for unnamed keys, per
// key hash, the cluster's when there is one; empty maps when there is no
// database or it cannot be read.
func (a *API) keyUsageToday(ctx context.Context) (byName, byHash map[string]store.UsageRow) {
	byName, byHash = map[string]store.UsageRow{}, map[string]store.UsageRow{}
	rows, _ := a.usageSince(ctx, midnight(a.o.Now()), store.GroupKey) // the cluster's when there is one
	for _, g := range rows {
		if g.KeyName != "" {
			byName[g.KeyName] = g
		} else {
			byHash[g.KeyHash] = g
		}
	}
	return byName, byHash
}

// todayOf is a key's totals and cost (nil when some request's cost is
// unknown) from its usage row; a key with no row has used nothing, at $0.
func todayOf(g store.UsageRow) (store.Totals, *int64) {
	t := store.Totals{Requests: g.Requests, Errors: g.Errors, InputTokens: g.InputTokens, OutputTokens: g.OutputTokens,
		CacheCreationTokens: g.CacheCreationTokens, CacheReadTokens: g.CacheReadTokens}
	if !g.CostKnown() {
		return t, nil
	}
	c := g.CostMicros
	return t, &c
}

// Last4 is how a key is shown: its last four characters, and only when the
// key is long enough that they give nothing useful away.
func Last4(k string) string {
	if len(k) < 12 {
		return ""
	}
	return k[len(k)-4:]
}

// CreateKeyRequest is the body of POST /admin/v1/keys: the options of
// `ccrelay keys add`. Only name is required; a limit left out (or 0) is
// none.
type CreateKeyRequest struct {
	Name         string   `json:"name"`
	Models       []string `json:"models,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	RPM          int      `json:"rpm,omitempty"`
	Concurrency  int      `json:"concurrency,omitempty"`
	QueueSeconds int      `json:"queue_seconds,omitempty"`
	DailyUSD     float64  `json:"daily_usd,omitempty"`
	WeeklyUSD    float64  `json:"weekly_usd,omitempty"`
	MonthlyUSD   float64  `json:"monthly_usd,omitempty"`
	DailyTokens  int64    `json:"daily_tokens,omitempty"`
	// ExpiresAt is an RFC 3339 time or a date (2026-12-31).
	ExpiresAt string `json:"expires_at,omitempty"`
	// Timezone is the IANA zone the budget windows start in (default UTC).
	Timezone string `json:"timezone,omitempty"`
	// HashOnly stores only the key's sha256 in the config.
	HashOnly bool `json:"hash_only,omitempty"`
}

// CreateKeyResponse answers POST /admin/v1/keys. It is the only answer
// that ever holds a key's value: the relay does not show it again.
type CreateKeyResponse struct {
	Name string `json:"name"`
	// Key is the new relay key.
	Key      string `json:"key"`
	HashOnly bool   `json:"hash_only"`
	KeyApplied
	// Note says that the key is shown this once.
	Note string `json:"note"`
}

// KeyApplied says whether the relay took a key change up at once.
type KeyApplied struct {
	// Applied is true when the relay reloaded its config with the change.
	// When false the change is in the config file, and ReloadError says
	// why the relay still runs the config it had.
	Applied     bool   `json:"applied"`
	ReloadError string `json:"reload_error,omitempty"`
}

// KeyStateResponse answers POST /admin/v1/keys/{name}/disable and .../enable.
type KeyStateResponse struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	KeyApplied
}

// maxKeyBody bounds the body of POST /admin/v1/keys.
const maxKeyBody = 64 << 10

// configFile returns the config in force when its file can be edited, or
// answers why not.
func (a *API) configFile(w http.ResponseWriter) (*config.Config, bool) {
	if a.o.Config == nil {
		writeError(w, http.StatusNotImplemented, "managing keys is not available in this relay: use `ccrelay keys` on its config file")
		return nil, false
	}
	cfg := a.o.Config.Current()
	if cfg == nil || cfg.Path == "" {
		writeError(w, http.StatusConflict, "the relay runs without a config file, so there is nowhere to write a key: start it with a config file (`ccrelay config init`, then `ccrelay serve --config FILE`)")
		return nil, false
	}
	return cfg, true
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxKeyBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxKeyBody))
		return
	}
	var req CreateKeyRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body must be a JSON object such as {"name": "alice", "models": ["claude-*"], "rpm": 60, "daily_usd": 20}: `+err.Error())
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "body must hold one JSON object")
		return
	}
	cfg, ok := a.configFile(w)
	if !ok {
		return
	}
	nk := config.NewKey{Name: strings.TrimSpace(req.Name), Models: req.Models, Groups: req.Groups, RPM: req.RPM, Concurrency: req.Concurrency,
		QueueSeconds: req.QueueSeconds, DailyUSD: req.DailyUSD, WeeklyUSD: req.WeeklyUSD, MonthlyUSD: req.MonthlyUSD,
		DailyTokens: req.DailyTokens, ExpiresAt: req.ExpiresAt, Timezone: req.Timezone, HashOnly: req.HashOnly}
	key := a.o.NewKey()
	if err := config.AddKey(cfg, nk, key); err != nil {
		a.keyEditError(w, "create key", err)
		return
	}
	applied := a.applyKeys(r.Context())
	a.o.Log.Info("relay key created through the admin API", "key_name", nk.Name, "hash_only", nk.HashOnly, "applied", applied.Applied)
	note := "This is the only time the key is shown: copy it now and give it to its holder."
	if nk.HashOnly {
		note += " The config holds only its sha256."
	}
	writeJSON(w, http.StatusCreated, CreateKeyResponse{Name: nk.Name, Key: key, HashOnly: nk.HashOnly, KeyApplied: applied, Note: note})
}

func (a *API) setKeyEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		cfg, ok := a.configFile(w)
		if !ok {
			return
		}
		if !slices.ContainsFunc(cfg.Keys, func(k config.KeyConfig) bool { return k.Name == name }) {
			if strings.HasPrefix(name, "api_keys[") {
				writeError(w, http.StatusBadRequest, "an api_keys entry has no name to disable it by: give its holder a named key (POST /admin/v1/keys) and remove it from api_keys")
				return
			}
			writeError(w, http.StatusNotFound, fmt.Sprintf("no key named %q", name))
			return
		}
		if err := config.SetKeyField(cfg.Path, name, "enabled", enabled); err != nil {
			a.keyEditError(w, "change key", err)
			return
		}
		applied := a.applyKeys(r.Context())
		a.o.Log.Info("relay key changed through the admin API", "key_name", name, "enabled", enabled, "applied", applied.Applied)
		writeJSON(w, http.StatusOK, KeyStateResponse{Name: name, Enabled: enabled, KeyApplied: applied})
	}
}

// keyEditError answers a failed key edit in the admin API's error shape.
// The editor's errors never hold a key's value.
func (a *API) keyEditError(w http.ResponseWriter, what string, err error) {
	var invalid *config.InvalidKeyError
	switch {
	case errors.As(err, &invalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, config.ErrKeyExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, config.ErrKeyNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, config.ErrNoConfigFile):
		writeError(w, http.StatusConflict, err.Error())
	default:
		a.o.Log.Error("admin: could not write the config file", "op", what, "err", err)
		writeError(w, http.StatusInternalServerError, what+": "+err.Error())
	}
}

// applyKeys reloads the config after a key edit. A reload that finds the
// file's config already in force (the file watcher was first) applied it.
func (a *API) applyKeys(ctx context.Context) KeyApplied {
	if a.o.Reload == nil {
		return KeyApplied{ReloadError: "this relay does not reload its config: the change applies at its next start"}
	}
	err := a.o.Reload.Reload(ctx)
	if err == nil || errors.Is(err, reload.ErrUnchanged) {
		return KeyApplied{Applied: true}
	}
	return KeyApplied{ReloadError: "the config file was changed, but the relay refused to reload it and runs the config it had: " + err.Error()}
}
