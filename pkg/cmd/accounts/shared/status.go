// Package shared gathers what the accounts commands show from the config and
// the state the relays keep (cooldowns, last use, usage, quota), and hands
// it to the one presenter, internal/accountview.
package shared

import (
	"context"
	"fmt"
	"time"

	"github.com/ccrelay/ccrelay/internal/accountview"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Status is one account as `accounts list` shows it: the admin API's
// account without its live-only fields.
type Status = accountview.Account

// Statuses presents every configured account from the config and the state
// the relays keep (db may be nil: no state yet).
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
		f := accountview.Facts{
			ID: a.ID, Type: a.Type, Name: a.Name, Priority: a.Priority, Enabled: a.Enabled, Disabled: disabled[a.ID],
			Groups: a.Groups, Cooldowns: byAcct[a.ID], LastUsed: lastUsed[a.ID], Today: totals[a.ID],
		}
		if a.Proxy.Enabled() {
			f.Proxy = a.Proxy.Type + "://" + a.Proxy.Addr()
		}
		if q, ok := qs[a.ID]; ok {
			f.Quota = &q
		}
		out = append(out, accountview.New(f, now))
	}
	return out, nil
}

// sharedState reads the cooldowns and last-use times: the cluster's when one
// is configured (usage stays in each relay's database), else the database's.
func sharedState(ctx context.Context, cfg *config.Config, db *store.DB, now time.Time) (map[string][]accountview.Cooldown, map[string]time.Time, error) {
	if cfg.Cluster.RedisURL != "" {
		adm, err := cluster.Dial(ctx, cfg.Cluster)
		if err != nil {
			return nil, nil, err
		}
		defer adm.Close()
		return readState(ctx, adm, "shared ", now)
	}
	if db == nil {
		return map[string][]accountview.Cooldown{}, map[string]time.Time{}, nil
	}
	return readState(ctx, db, "", now)
}

// stateSource is where the cooldowns and last-use times are kept: the
// cluster's Redis (*cluster.Admin) or a relay's database (*store.DB).
type stateSource interface {
	Cooldowns(ctx context.Context, now time.Time) ([]state.Cooldown, error)
	LastUsed(ctx context.Context) (map[string]time.Time, error)
}

// readState reads src's cooldowns in force, by account, and its last-use
// times. whose prefixes what an error says was read ("shared " for the
// cluster's).
func readState(ctx context.Context, src stateSource, whose string, now time.Time) (map[string][]accountview.Cooldown, map[string]time.Time, error) {
	cds, err := src.Cooldowns(ctx, now)
	if err != nil {
		return nil, nil, fmt.Errorf("read %scooldowns: %w", whose, err)
	}
	lastUsed, err := src.LastUsed(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read %slast use: %w", whose, err)
	}
	byAcct := map[string][]accountview.Cooldown{}
	for _, c := range cds {
		byAcct[c.AccountID] = append(byAcct[c.AccountID], accountview.Cooldown{Model: c.Model, Kind: c.Kind, Reason: c.Reason, Until: c.Until})
	}
	return byAcct, lastUsed, nil
}
