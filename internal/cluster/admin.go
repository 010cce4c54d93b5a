package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/state"
)

// Admin reads and changes the shared state for the CLI (`accounts list`,
// `accounts reset`, `sessions`, `sessions clear`). Every change is published,
// so every running relay applies it at once.
type Admin struct{ *conn }

// Dial connects to the cluster's Redis and checks that it answers.
func Dial(ctx context.Context, cfg config.ClusterConfig) (*Admin, error) {
	cn, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := cn.rdb.Ping(pctx).Err(); err != nil {
		cn.rdb.Close()
		return nil, fmt.Errorf("cluster redis unreachable (%s); the shared state cannot be read or changed", errReason(err))
	}
	return &Admin{cn}, nil
}

// Close disconnects.
func (a *Admin) Close() { _ = a.rdb.Close() }

// Sessions returns the live bindings, soonest expiry first.
func (a *Admin) Sessions(ctx context.Context, now time.Time) ([]state.Binding, error) {
	all, err := a.sessions(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(b state.Binding) bool { return !b.ExpiresAt.After(now) })
	slices.SortFunc(out, func(x, y state.Binding) int { return x.ExpiresAt.Compare(y.ExpiresAt) })
	return out, nil
}

// Cooldowns returns the cooldowns in force, by account and model.
func (a *Admin) Cooldowns(ctx context.Context, now time.Time) ([]state.Cooldown, error) {
	all, err := a.cooldowns(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(c state.Cooldown) bool { return !c.Until.After(now) })
	slices.SortFunc(out, func(x, y state.Cooldown) int {
		if c := strings.Compare(x.AccountID, y.AccountID); c != 0 {
			return c
		}
		return strings.Compare(x.Model, y.Model)
	})
	return out, nil
}

// LastUsed returns the shared last-use time of every account used.
func (a *Admin) LastUsed(ctx context.Context) (map[string]time.Time, error) {
	return a.lastUsed(ctx)
}

// ResetAccount clears every cooldown of an account on every relay; it
// returns how many there were.
func (a *Admin) ResetAccount(ctx context.Context, accountID string) (int, error) {
	cds, err := a.cooldowns(ctx)
	if err != nil {
		return 0, err
	}
	var evs []event
	for _, c := range cds {
		if c.AccountID == accountID {
			evs = append(evs, cooldownEvent("cli", c, true))
		}
	}
	return a.remove(ctx, evs)
}

// ClearSessions removes bindings on every relay: the one with key, all of
// accountID's, or (both empty) all. It returns how many went.
func (a *Admin) ClearSessions(ctx context.Context, key, accountID string) (int, error) {
	ss, err := a.sessions(ctx)
	if err != nil {
		return 0, err
	}
	var evs []event
	for _, b := range ss {
		if (key != "" && b.Key == key) || (key == "" && (accountID == "" || b.AccountID == accountID)) {
			evs = append(evs, sessionEvent("cli", b, true))
		}
	}
	return a.remove(ctx, evs)
}

func (a *Admin) remove(ctx context.Context, evs []event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range evs {
			if e.Type == evSession {
				p.Del(ctx, a.sessionKey(e.Key))
			} else {
				p.Del(ctx, a.cooldownKey(e.Acct, e.Model))
			}
			p.Publish(ctx, a.channel(), e.json())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("change the shared state: %w", err)
	}
	return len(evs), nil
}
