package app

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/relay"
)

// Compile-time checks of the admin API's key and brake sources.
var (
	_ admin.KeySource = keyList{}
	_ admin.Brake     = (*policy.Brake)(nil)
)

// keyList shows the admin API the named keys of the config in force (so a
// key that a reload added is listed at once, and one a reload removed is
// gone), each merged by name with the policy's live counters: requests in
// flight and queued, spending and tokens per window, last use. A key the
// policy does not know yet shows its limits with nothing used. In a cluster
// the counts in flight and queued are the cluster's.
type keyList struct {
	// current is the config in force (the reloader's Current).
	current func() *config.Config
	// status is the policy's snapshot of every named key.
	status func() []policy.KeyStatus
	// clusterLive reports whether status holds the other relays' numbers
	// (policy.ClusterLive); nil: no cluster.
	clusterLive func() bool
	now         func() time.Time
}

// Keys never returns a key's value: Last4 of a key stored in clear, ""
// for one stored as key_sha256 only.
func (l keyList) Keys(context.Context) ([]admin.Key, error) {
	cfg := l.current()
	live := map[string]policy.KeyStatus{}
	if l.status != nil {
		for _, st := range l.status() {
			live[st.Name] = st
		}
	}
	now := l.now()
	scope := admin.LoadLocal
	if l.clusterLive != nil && l.clusterLive() {
		scope = admin.LoadCluster
	}
	out := make([]admin.Key, 0, len(cfg.Keys))
	for i := range cfg.Keys {
		kc := &cfg.Keys[i]
		st := live[kc.Name]
		k := admin.Key{Name: kc.Name, Last4: admin.Last4(kc.Key), Enabled: kc.IsEnabled(), Models: kc.Models, Groups: kc.Groups,
			RPM: kc.RPM, Concurrency: kc.Concurrency, InFlight: st.InFlight + st.ClusterInFlight, Queued: st.Queued + st.ClusterQueued,
			LoadScope: scope, Budgets: []admin.Budget{}}
		if exp, err := kc.Expiry(); err == nil && !exp.IsZero() {
			e := exp.UTC()
			k.ExpiresAt = &e
		}
		if !st.LastUsed.IsZero() {
			t := st.LastUsed.UTC()
			k.LastUsed = &t
		}
		loc, err := kc.Location()
		if err != nil {
			loc = time.UTC
		}
		resets := func(w policy.Window) *time.Time {
			r := st.Resets[w]
			if r.IsZero() || !r.After(now) {
				_, r = policy.Bounds(w, now, loc)
			}
			r = r.UTC()
			return &r
		}
		for _, b := range []struct {
			w     policy.Window
			limit float64
		}{{policy.Day, kc.DailyUSD}, {policy.Week, kc.WeeklyUSD}, {policy.Month, kc.MonthlyUSD}} {
			if b.limit > 0 {
				k.Budgets = append(k.Budgets, admin.Budget{Window: b.w.String(), Unit: "usd", Limit: b.limit, Used: float64(st.Spent[b.w]) / 1e6, ResetsAt: resets(b.w)})
			}
		}
		if kc.DailyTokens > 0 {
			k.Budgets = append(k.Budgets, admin.Budget{Window: policy.Day.String(), Unit: "tokens", Limit: float64(kc.DailyTokens), Used: float64(st.Tokens), ResetsAt: resets(policy.Day)})
		}
		out = append(out, k)
	}
	return out, nil
}

// clientAddr is a request's client address as the server middleware
// resolved it (X-Forwarded-For believed only from trusted proxies), else
// the TCP peer.
func clientAddr(r *http.Request) netip.Addr {
	if info := relay.InfoFrom(r.Context()); info != nil && info.ClientAddr.IsValid() {
		return info.ClientAddr
	}
	return relay.PeerAddr(r)
}
