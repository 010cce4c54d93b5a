// Package accountview is the one presenter of an account's state: what
// `ccrelay accounts list` prints (from the local database, or from a relay
// with --server), what GET /admin/v1/accounts answers and what the dashboard
// draws. Each source gathers the Facts it has; New words them the same way
// for all three, so the state of an account reads alike wherever it is shown
// and `accounts list --json` is the same with and without --server.
//
// Decisions worth knowing:
//   - Times are shown in UTC; cooldown ends and the last use to the
//     millisecond, as the state database keeps them: a relay's live state
//     and the same state read back from its database then print alike.
//   - Detail holds no relative time ("in 5m"): it would differ between two
//     readers a second apart. Clients compute it from the cooldowns' until.
//   - What to do about a rejected credential comes from the account type
//     (accounttype.Spec.Rejected), so every type names its own fix.
package accountview

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Account states.
const (
	StateReady        = "ready"
	StateCoolingDown  = "cooling_down"
	StateDisabled     = "disabled"
	StateTokenInvalid = "token_invalid"
)

// Cooldown is one cooldown in force: the whole account's (Model "") or one
// model's.
type Cooldown struct {
	Model  string    `json:"model,omitempty"`
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// Account is one account as every presenter shows it. It holds no secret.
type Account struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Platform string `json:"platform"`
	Priority int    `json:"priority"`
	// Enabled is the config's enabled flag; Disabled an operator's choice
	// through the admin API (kept across restarts).
	Enabled  bool `json:"enabled"`
	Disabled bool `json:"disabled"`
	// State is ready, cooling_down, disabled or token_invalid; Detail says
	// why, until when, or what fixes it.
	State     string     `json:"state"`
	Detail    string     `json:"detail,omitempty"`
	Cooldowns []Cooldown `json:"cooldowns"`
	LastUsed  *time.Time `json:"last_used"`
	// Today is the account's usage since local midnight.
	Today store.Totals `json:"today"`
	// Quota is the latest rate-limit numbers (nil: none seen yet).
	Quota  *Quota   `json:"quota"`
	Groups []string `json:"groups"`
	// Proxy is type://host:port, never credentials; "" without a proxy.
	Proxy string `json:"proxy,omitempty"`
}

// Facts is what a source knows of one account.
type Facts struct {
	ID, Type, Name string
	Priority       int
	// Enabled is the config's flag, Disabled the admin API's.
	Enabled, Disabled bool
	Groups            []string
	Proxy             string
	// Cooldowns are those in force, in any order.
	Cooldowns []Cooldown
	// LastUsed is zero when the account was never used.
	LastUsed time.Time
	Today    store.Totals
	// Quota is nil when no numbers were seen.
	Quota *quota.Snapshot
}

// New presents one account at now.
func New(f Facts, now time.Time) Account {
	a := Account{
		ID: f.ID, Type: f.Type, Name: f.Name, Priority: f.Priority, Enabled: f.Enabled, Disabled: f.Disabled,
		Cooldowns: make([]Cooldown, 0, len(f.Cooldowns)), Today: f.Today, Groups: []string{}, Proxy: f.Proxy,
	}
	spec := accounttype.Lookup(f.Type)
	if spec != nil {
		a.Platform = spec.Platform
	}
	if f.Groups != nil {
		a.Groups = f.Groups
	}
	for _, c := range f.Cooldowns {
		c.Until = Time(c.Until)
		a.Cooldowns = append(a.Cooldowns, c)
	}
	slices.SortFunc(a.Cooldowns, func(x, y Cooldown) int { return cmp.Compare(x.Model, y.Model) })
	if !f.LastUsed.IsZero() {
		t := Time(f.LastUsed)
		a.LastUsed = &t
	}
	if f.Quota != nil {
		a.Quota = NewQuota(*f.Quota, now)
	}
	a.State, a.Detail = state(f, spec, a.Cooldowns)
	return a
}

// Time is a cooldown's end or a last use as presenters show it: UTC, to
// the millisecond.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// state says what the account is doing and why. cds are sorted, so the
// whole account's cooldown (Model "") comes first.
func state(f Facts, spec *accounttype.Spec, cds []Cooldown) (string, string) {
	switch {
	case !f.Enabled:
		return StateDisabled, "enabled = false in the config"
	case f.Disabled:
		return StateDisabled, "disabled through the admin API"
	}
	if len(cds) > 0 && cds[0].Model == "" {
		c := cds[0]
		if c.Kind == provider.TokenInvalid.String() {
			if spec == nil {
				return StateTokenInvalid, "the credential was rejected"
			}
			return StateTokenInvalid, spec.Rejected(f.ID)
		}
		return StateCoolingDown, fmt.Sprintf("until %s (%s): %s", c.Until.Format(time.RFC3339), c.Kind, c.Reason)
	}
	parts := make([]string, 0, len(cds))
	for _, c := range cds {
		parts = append(parts, fmt.Sprintf("%s cooling until %s (%s)", c.Model, c.Until.Format(time.RFC3339), c.Kind))
	}
	return StateReady, strings.Join(parts, "; ")
}
