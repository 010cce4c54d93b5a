package cluster

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
)

// testPoll is the key poller's interval in these tests.
const testPoll = 20 * time.Millisecond

func keyPolicy(t *testing.T, kc config.KeyConfig) *policy.Policy {
	t.Helper()
	if kc.QueueSeconds == 0 {
		kc.QueueSeconds = 30
	}
	p, err := policy.New(policy.Options{Keys: []config.KeyConfig{kc}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keyMember is one relay of a test cluster: its membership and its policy
// with one key, shared.
type keyMember struct {
	c *Cluster
	p *policy.Policy
	k *policy.Key
}

func newKeyMembers(t *testing.T, rd *clustertest.Redis, kc config.KeyConfig) (a, b keyMember) {
	t.Helper()
	cfg := clusterCfg(rd, 15)
	mk := func() keyMember {
		m := keyMember{c: newMember(t, cfg, false), p: keyPolicy(t, kc)}
		m.k = m.p.KeyByName(kc.Name)
		if m.c.attachKeys(m.p, testPoll) == nil {
			t.Fatal("attachKeys refused")
		}
		return m
	}
	return mk(), mk()
}

func (m keyMember) spend(t *testing.T, cost, tokens int64) {
	t.Helper()
	if ref := m.p.Admit(context.Background(), m.k, "claude-sonnet-4-5"); ref != nil {
		t.Fatal(ref)
	}
	m.p.Done(m.k, cost, true, tokens)
}

func (m keyMember) status() policy.KeyStatus {
	return m.p.Status()[0]
}

// Spending on one relay reaches the other's budgets (every window, and the
// day's tokens) through counters named by the key's ID and window start,
// which expire after the window; the key itself is never written to Redis.
func TestKeyBudgetsSharedThroughRedis(t *testing.T) {
	rd := clustertest.Start(t)
	const secret = "alice-key-0123456789"
	a, b := newKeyMembers(t, rd, config.KeyConfig{Name: "alice", Key: secret, DailyUSD: 1, WeeklyUSD: 5, MonthlyUSD: 10, DailyTokens: 100000})

	a.spend(t, 1500, 40)
	eventually(t, 5*time.Second, "B sees A's spending", func() bool {
		s := b.status()
		return s.Spent[policy.Day] == 1500 && s.Spent[policy.Week] == 1500 && s.Spent[policy.Month] == 1500 && s.Tokens == 40
	})
	b.spend(t, 700, 2)
	eventually(t, 5*time.Second, "A sees the sum", func() bool {
		s := a.status()
		return s.Spent[policy.Day] == 2200 && s.Spent[policy.Month] == 2200 && s.Tokens == 42
	})

	ctx := context.Background()
	now := time.Now()
	for w := policy.Day; w <= policy.Month; w++ {
		start, end := a.p.WindowStart(a.k, w, now)
		name := "test:key:" + a.k.ID + ":" + w.String() + ":" + strconv.FormatInt(start.Unix(), 10)
		if v, err := a.c.rdb.Get(ctx, name).Result(); err != nil || v != "2200" {
			t.Fatalf("%s = %q %v", name, v, err)
		}
		ttl, err := a.c.rdb.TTL(ctx, name).Result()
		if err != nil || ttl <= 0 || ttl > time.Until(end.Add(windowGrace))+time.Minute {
			t.Fatalf("%s expires in %v (%v); the window ends %v", name, ttl, err, end)
		}
	}
	if strings.Contains(rd.Dump(t), secret) {
		t.Fatalf("redis holds the relay key:\n%s", rd.Dump(t))
	}
	// Both relays now refuse once the daily budget (1,000,000) is crossed on one.
	b.spend(t, 1_000_000, 0)
	eventually(t, 5*time.Second, "A refuses after B crossed the budget", func() bool {
		ref := a.p.Admit(ctx, a.k, "m")
		if ref == nil {
			a.p.Done(a.k, 0, true, 0)
			return false
		}
		return ref.Reason == policy.OverBudget
	})
}

// rpm holds across relays: the requests one relay admitted fill the other's
// bucket (not its own), and the other refuses with a retry-after.
func TestKeyRPMSharedThroughRedis(t *testing.T) {
	rd := clustertest.Start(t)
	a, b := newKeyMembers(t, rd, config.KeyConfig{Name: "bob", Key: "bob-key-0123456789", RPM: 3})
	a.spend(t, 0, 0)
	a.spend(t, 0, 0)
	eventually(t, 5*time.Second, "B learns A's two requests", func() bool {
		r, _ := b.p.ClusterLoad(b.k)
		return r == 2
	})
	if r, _ := a.p.ClusterLoad(a.k); r != 0 {
		t.Fatalf("A counts its own requests as another relay's: %d", r)
	}
	b.spend(t, 0, 0)
	ref := b.p.Admit(context.Background(), b.k, "m")
	if ref == nil || ref.Status != 429 || ref.RetryAfter <= 0 {
		t.Fatalf("B's 2nd request with 3 of rpm 3 used in the cluster: %+v", ref)
	}
	eventually(t, 5*time.Second, "A learns B's request", func() bool {
		r, _ := a.p.ClusterLoad(a.k)
		return r == 1
	})
	if ref := a.p.Admit(context.Background(), a.k, "m"); ref == nil {
		t.Fatal("A admitted a 4th request at rpm 3")
	}
}

// Concurrency holds across relays: a request on B waits while A holds the
// key's only slot and is served once A's request ends.
func TestKeyConcurrencySharedThroughRedis(t *testing.T) {
	rd := clustertest.Start(t)
	a, b := newKeyMembers(t, rd, config.KeyConfig{Name: "carol", Key: "carol-key-0123456789", Concurrency: 1})
	ctx := context.Background()
	if ref := a.p.Admit(ctx, a.k, "m"); ref != nil {
		t.Fatal(ref)
	}
	eventually(t, 5*time.Second, "B learns A's request in flight", func() bool {
		_, f := b.p.ClusterLoad(b.k)
		return f == 1
	})
	got := make(chan *policy.Refusal, 1)
	go func() { got <- b.p.Admit(ctx, b.k, "m") }()
	eventually(t, 5*time.Second, "B's request waits", func() bool { return b.status().Queued == 1 })
	a.p.Done(a.k, 0, true, 0)
	if ref := <-got; ref != nil {
		t.Fatalf("B's waiting request refused: %v", ref)
	}
	eventually(t, 5*time.Second, "A learns B's request in flight", func() bool {
		_, f := a.p.ClusterLoad(a.k)
		return f == 1
	})
	b.p.Done(b.k, 0, true, 0)
	eventually(t, 5*time.Second, "A learns B's request ended", func() bool {
		_, f := a.p.ClusterLoad(a.k)
		return f == 0
	})
}

// A relay that died without withdrawing its in-flight count stops counting
// once its entry expires (on Redis's clock); the expired entry is removed.
func TestKeyInFlightOfDeadRelayExpires(t *testing.T) {
	rd := clustertest.Start(t)
	a, _ := newKeyMembers(t, rd, config.KeyConfig{Name: "dave", Key: "dave-key-0123456789", Concurrency: 5})
	ctx := context.Background()
	h := a.c.keyInFlightKey(a.k.ID)
	future := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	if err := a.c.rdb.HSet(ctx, h, "dead-relay", "3 1000", "live-relay", "2 "+future).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "only the live relay counts", func() bool {
		_, f := a.p.ClusterLoad(a.k)
		return f == 2
	})
	if ok, err := a.c.rdb.HExists(ctx, h, "dead-relay").Result(); err != nil || ok {
		t.Fatalf("the dead relay's entry is still there (%v)", err)
	}
}

// Redis down: each relay enforces its limits alone (the other relays' load
// counts as none), /health says so, and spending that could not be written
// is written when Redis is back, so the other relay learns it.
func TestKeyLimitsLocalDuringOutage(t *testing.T) {
	rd := clustertest.Start(t)
	a, b := newKeyMembers(t, rd, config.KeyConfig{Name: "erin", Key: "erin-key-0123456789", RPM: 10, Concurrency: 4, DailyUSD: 0.001})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if ref := b.p.Admit(ctx, b.k, "m"); ref != nil {
			t.Fatal(ref)
		}
	}
	eventually(t, 5*time.Second, "A learns B's load", func() bool {
		r, f := a.p.ClusterLoad(a.k)
		return r == 2 && f == 2
	})

	rd.Stop()
	eventually(t, 10*time.Second, "A goes local", func() bool {
		r, f := a.p.ClusterLoad(a.k)
		return a.c.Degraded() && r == 0 && f == 0
	})
	if h := a.c.Health(); !strings.HasPrefix(h, "degraded: ") || !strings.Contains(h, "relay key limits are local-only") {
		t.Fatalf("health %q", h)
	}
	a.spend(t, 900, 9)
	a.spend(t, 100, 1)
	if s := a.status(); s.Spent[policy.Day] != 1000 {
		t.Fatalf("A's own spending %d", s.Spent[policy.Day])
	}
	if ref := a.p.Admit(ctx, a.k, "m"); ref == nil || ref.Reason != policy.OverBudget {
		t.Fatalf("A alone does not enforce its budget: %+v", ref)
	}

	rd.Restart() // empty, as after a crash
	eventually(t, 10*time.Second, "A's outage spending reaches B", func() bool {
		return b.status().Spent[policy.Day] == 1000 && b.status().Tokens == 10
	})
	if h := a.c.Health(); h != "ok" {
		t.Fatalf("health after the outage %q", h)
	}
	if ref := b.p.Admit(ctx, b.k, "m"); ref == nil || ref.Reason != policy.OverBudget {
		t.Fatalf("B does not enforce A's spending: %+v", ref)
	}
	eventually(t, 10*time.Second, "A learns B's load again", func() bool {
		_, f := a.p.ClusterLoad(a.k)
		return f == 2
	})
	b.p.Done(b.k, 0, true, 0)
	b.p.Done(b.k, 0, true, 0)
}

// A full queue drops the event and counts it; the request is not slowed.
func TestKeyQueueDropsWhenFull(t *testing.T) {
	ks := &keySync{events: make(chan keyEvent, 2)}
	var k policy.Key
	for i := 0; i < 3; i++ {
		ks.Charge(&k, time.Now(), 1, 1)
	}
	ks.Admitted(&k, time.Now())
	if d := ks.Dropped(); d != 2 {
		t.Fatalf("dropped %d, want 2", d)
	}
}

// Closing a relay withdraws its in-flight counts at once.
func TestKeyCloseWithdrawsInFlight(t *testing.T) {
	rd := clustertest.Start(t)
	a, b := newKeyMembers(t, rd, config.KeyConfig{Name: "finn", Key: "finn-key-0123456789", Concurrency: 3})
	if ref := a.p.Admit(context.Background(), a.k, "m"); ref != nil {
		t.Fatal(ref)
	}
	eventually(t, 5*time.Second, "B learns A's request", func() bool {
		_, f := b.p.ClusterLoad(b.k)
		return f == 1
	})
	a.c.Close()
	if ok, err := b.c.rdb.HExists(context.Background(), b.c.keyInFlightKey(b.k.ID), a.c.id).Result(); err != nil || ok {
		t.Fatalf("A's in-flight entry outlives it (%v)", err)
	}
	eventually(t, 5*time.Second, "B stops counting A's request", func() bool {
		_, f := b.p.ClusterLoad(b.k)
		return f == 0
	})
}

// BenchmarkAdmitDoneShared measures a limited key's admission and charge
// alone and with the cluster sharing attached (Admitted and Charge queue
// for the background writer): the difference is what sharing adds per
// request.
//
//	go test -run '^$' -bench AdmitDoneShared ./internal/cluster/
func BenchmarkAdmitDoneShared(b *testing.B) {
	r := clustertest.Start(b)
	for _, mode := range []string{"alone", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			p, err := policy.New(policy.Options{Keys: []config.KeyConfig{{Name: "k", Key: "relay-key-0123456789", RPM: 1 << 30,
				Concurrency: 1 << 20, QueueSeconds: 30, DailyUSD: 1e9, WeeklyUSD: 1e9, MonthlyUSD: 1e9, DailyTokens: 1 << 60}}})
			if err != nil {
				b.Fatal(err)
			}
			if mode == "cluster" {
				c, err := New(clusterCfg(r, 15), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.AttachKeys(p)
			}
			k := p.KeyByName("k")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if ref := p.Admit(context.Background(), k, "m"); ref != nil {
						b.Fatal(ref)
					}
					p.Done(k, 100, true, 10)
				}
			})
		})
	}
}

// The cluster's queue of a key is visible on every relay: a request queued
// on B shows in A's status as the other relays' queued count (and A's in
// flight in B's), and both go to zero, with the numbers marked not live,
// while Redis is unreachable.
func TestKeyQueuedCountShared(t *testing.T) {
	rd := clustertest.Start(t)
	a, b := newKeyMembers(t, rd, config.KeyConfig{Name: "fay", Key: "fay-key-0123456789", Concurrency: 1})
	ctx := context.Background()
	if ref := a.p.Admit(ctx, a.k, "m"); ref != nil {
		t.Fatal(ref)
	}
	eventually(t, 5*time.Second, "B learns A's request in flight", func() bool {
		return b.status().ClusterInFlight == 1 && b.p.ClusterLive()
	})
	got := make(chan *policy.Refusal, 1)
	go func() { got <- b.p.Admit(ctx, b.k, "m") }()
	eventually(t, 5*time.Second, "A sees B's queued request", func() bool {
		s := a.status()
		return s.ClusterQueued == 1 && s.Queued == 0 && s.InFlight == 1 && a.p.ClusterLive()
	})
	rd.Stop()
	eventually(t, 10*time.Second, "A's cluster numbers go to zero, not live", func() bool {
		s := a.status()
		return !a.p.ClusterLive() && s.ClusterQueued == 0 && s.ClusterInFlight == 0
	})
	a.p.Done(a.k, 0, true, 0)
	if ref := <-got; ref != nil {
		t.Fatalf("B's request refused: %v", ref)
	}
	b.p.Done(b.k, 0, true, 0)
}
