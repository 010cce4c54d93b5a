// Package shared computes what the accounts commands show: each configured
// account joined with the state the relay keeps (cooldowns, last use, usage).
package shared

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Cooldown is one cooldown in force.
type Cooldown struct {
	Model  string    `json:"model,omitempty"`
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// Status is one account as `accounts list` shows it. It holds no secret.
type Status struct {
	ID        string       `json:"id"`
	Type      string       `json:"type"`
	Name      string       `json:"name"`
	Priority  int          `json:"priority"`
	Enabled   bool         `json:"enabled"`
	State     string       `json:"state"` // ready | cooling_down | disabled | token_invalid
	Detail    string       `json:"detail,omitempty"`
	Cooldowns []Cooldown   `json:"cooldowns"`
	LastUsed  *time.Time   `json:"last_used"`
	Today     store.Totals `json:"today"`
	Proxy     string       `json:"proxy,omitempty"` // type://host:port, never credentials
	// Quota is the latest rate-limit numbers (nil: none seen yet).
	Quota *Quota `json:"quota"`
}

// Statuses joins the config with the database (db may be nil: no state yet).
func Statuses(ctx context.Context, cfg *config.Config, db *store.DB, now time.Time) ([]Status, error) {
	totals := map[string]store.Totals{}
	byAcct, lastUsed, err := sharedState(ctx, cfg, db, now)
	if err != nil {
		return nil, err
	}
	disabled := map[string]bool{}
	qs, err := quotas(ctx, cfg, db)
	if err != nil {
		return nil, err
	}
	if db != nil {
		// A database from before the admin API has no such table: nothing disabled.
		if d, err := db.DisabledAccounts(ctx); err == nil {
			disabled = d
		}
		y, m, d := now.Date()
		if totals, err = db.AccountTotals(ctx, time.Date(y, m, d, 0, 0, 0, 0, now.Location())); err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
	}
	out := make([]Status, 0, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		s := Status{ID: a.ID, Type: a.Type, Name: a.Name, Priority: a.Priority, Enabled: a.Enabled, Cooldowns: byAcct[a.ID], Today: totals[a.ID]}
		if s.Cooldowns == nil {
			s.Cooldowns = []Cooldown{}
		}
		if t, ok := lastUsed[a.ID]; ok {
			s.LastUsed = &t
		}
		if a.Proxy.Enabled() {
			s.Proxy = a.Proxy.Type + "://" + a.Proxy.Addr()
		}
		if q, ok := qs[a.ID]; ok {
			s.Quota = NewQuota(q, now)
		}
		s.State, s.Detail = state(a, s.Cooldowns, now)
		if a.Enabled && disabled[a.ID] {
			s.State, s.Detail = "disabled", "disabled through the admin API"
		}
		out = append(out, s)
	}
	return out, nil
}

// sharedState reads the cooldowns and last-use times: the cluster's when one
// is configured (usage stays in each relay's database), else the database's.
func sharedState(ctx context.Context, cfg *config.Config, db *store.DB, now time.Time) (map[string][]Cooldown, map[string]time.Time, error) {
	byAcct := map[string][]Cooldown{}
	add := func(accountID, model, kind, reason string, until time.Time) {
		byAcct[accountID] = append(byAcct[accountID], Cooldown{Model: model, Kind: kind, Reason: reason, Until: until})
	}
	if cfg.Cluster.RedisURL != "" {
		adm, err := cluster.Dial(ctx, cfg.Cluster)
		if err != nil {
			return nil, nil, err
		}
		defer adm.Close()
		cds, err := adm.Cooldowns(ctx, now)
		if err != nil {
			return nil, nil, fmt.Errorf("read shared cooldowns: %w", err)
		}
		lastUsed, err := adm.LastUsed(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("read shared last use: %w", err)
		}
		for _, c := range cds {
			add(c.AccountID, c.Model, c.Kind, c.Reason, c.Until)
		}
		return byAcct, lastUsed, nil
	}
	if db == nil {
		return byAcct, map[string]time.Time{}, nil
	}
	cds, err := db.Cooldowns(ctx, now)
	if err != nil {
		return nil, nil, fmt.Errorf("read cooldowns: %w", err)
	}
	lastUsed, err := db.LastUsed(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read last use: %w", err)
	}
	for _, c := range cds {
		add(c.AccountID, c.Model, c.Kind, c.Reason, c.Until)
	}
	return byAcct, lastUsed, nil
}

func state(a config.AccountConfig, cds []Cooldown, now time.Time) (string, string) {
	if !a.Enabled {
		return "disabled", "enabled = false in the config"
	}
	var whole *Cooldown
	for i := range cds {
		if cds[i].Model == "" {
			whole = &cds[i]
		}
	}
	if whole != nil && whole.Kind == provider.TokenInvalid.String() {
		return "token_invalid", invalidDetail(a)
	}
	if whole != nil {
		return "cooling_down", fmt.Sprintf("until %s (%s, in %s): %s", whole.Until.Local().Format("2006-01-02 15:04:05"), whole.Kind, until(whole.Until, now), whole.Reason)
	}
	if len(cds) > 0 {
		detail := ""
		for _, c := range cds {
			if detail != "" {
				detail += "; "
			}
			detail += fmt.Sprintf("%s cooling until %s (%s)", c.Model, c.Until.Local().Format("2006-01-02 15:04"), c.Kind)
		}
		return "ready", detail
	}
	return "ready", ""
}

func until(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d > time.Hour {
		d = d.Round(time.Minute)
	}
	return d.String()
}

// invalidDetail says which credential was rejected and what gets a new one.
func invalidDetail(a config.AccountConfig) string {
	spec := a.Spec()
	if spec == nil {
		return "the credential was rejected"
	}
	what := "the " + strings.ReplaceAll(spec.SecretKey, "_", " ")
	fix := spec.Renew(a.ID)
	if fix == "" {
		return what + " was rejected; replace " + spec.SecretKey + " in the config"
	}
	return what + " was rejected; run: " + fix
}
