package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
)

// testSecret is the [cluster] secret of the test relays.
const testSecret = "test-cluster-secret-0123456789"

func clusterCfg(r *clustertest.Redis, lease int) config.ClusterConfig {
	return config.ClusterConfig{RedisURL: r.URL, KeyPrefix: "test:", LeaseSeconds: lease, Secret: testSecret}
}

func newMember(t *testing.T, cfg config.ClusterConfig, withDB bool) *Cluster {
	t.Helper()
	var db *store.DB
	if withDB {
		var err error
		if db, err = store.Open(filepath.Join(t.TempDir(), "relay.db")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	}
	c, err := New(cfg, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var schedOpts = scheduler.Options{StickyTTL: time.Hour, RenewalThreshold: 5 * time.Minute, UnavailableCooldown: time.Hour,
	RateLimitCooldown: time.Minute, MaxRateLimitHint: time.Hour, OverloadCooldown: 5 * time.Minute, ErrorCooldown: 30 * time.Second}

func newSched(t testing.TB, ids ...string) *scheduler.Scheduler {
	t.Helper()
	var accts []*scheduler.Account
	for _, id := range ids {
		accts = append(accts, &scheduler.Account{ID: id, Platform: "claude", Priority: 100, Enabled: true})
	}
	s := scheduler.New(accts, schedOpts, nil, nil)
	t.Cleanup(s.Close)
	return s
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bindingOf(s *scheduler.Scheduler, key string) string {
	for _, b := range s.Sessions() {
		if b.Key == key {
			return b.AccountID
		}
	}
	return ""
}

func cooling(s *scheduler.Scheduler, id string) bool {
	for _, c := range s.Cooldowns() {
		if c.AccountID == id {
			return true
		}
	}
	return false
}

func TestStateIsShared(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	sa, sb := newSched(t, "x", "y", "z"), newSched(t, "x", "y", "z")
	a.Attach(sa)
	b.Attach(sb)

	// A conversation bound on A is bound to the same account on B.
	got, err := sa.Pick("claude", "m", "conv-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "binding reaches B", func() bool { return bindingOf(sb, "conv-1") == got.ID })
	if p, _ := sb.Pick("claude", "m", "conv-1", nil); p.ID != got.ID {
		t.Fatalf("B picked %s for a conversation bound to %s", p.ID, got.ID)
	}

	// A cooldown seen by A cools the account on B; a success on B clears it on A.
	sa.Report("y", provider.Verdict{Kind: provider.RateLimited})
	eventually(t, time.Second, "cooldown reaches B", func() bool { return cooling(sb, "y") })
	sb.Report("y", provider.Verdict{Kind: provider.OK})
	eventually(t, time.Second, "clear reaches A", func() bool { return !cooling(sa, "y") })

	// Token invalid too, and the CLI sees it.
	sb.Report("z", provider.Verdict{Kind: provider.TokenInvalid, Reason: "invalid_grant"})
	eventually(t, time.Second, "token invalid reaches A", func() bool { return cooling(sa, "z") })
	adm, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	cds, err := adm.Cooldowns(context.Background(), time.Now())
	if err != nil || len(cds) != 1 || cds[0].Kind != "token_invalid" || cds[0].AccountID != "z" {
		t.Fatalf("shared cooldowns %+v %v", cds, err)
	}
	// accounts reset through Redis reaches both relays.
	if n, err := adm.ResetAccount(context.Background(), "z"); n != 1 || err != nil {
		t.Fatalf("reset %d %v", n, err)
	}
	eventually(t, time.Second, "reset reaches both", func() bool { return !cooling(sa, "z") && !cooling(sb, "z") })

	// Last use is shared: after A used x, B prefers another account.
	ss, err := adm.Sessions(context.Background(), time.Now())
	if err != nil || len(ss) != 1 || ss[0].Key != "conv-1" {
		t.Fatalf("shared sessions %+v %v", ss, err)
	}
	if n, err := adm.ClearSessions(context.Background(), "", ""); n != 1 || err != nil {
		t.Fatalf("clear %d %v", n, err)
	}
	eventually(t, time.Second, "clear reaches both", func() bool { return len(sa.Sessions())+len(sb.Sessions()) == 0 })
}

func TestLastUseBreaksTiesAcrossRelays(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	sa, sb := newSched(t, "x", "y"), newSched(t, "x", "y")
	a.Attach(sa)
	b.Attach(sb)
	// Alternate picks between the relays: shared last use makes them alternate
	// accounts too (each relay alone would always start with x).
	var got []string
	for i := 0; i < 4; i++ {
		s, other := sa, b
		if i%2 == 1 {
			s, other = sb, a
		}
		ms := time.Now().UnixMilli()
		acct, err := s.Pick("claude", "m", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, acct.ID)
		id := acct.ID
		eventually(t, 2*time.Second, "last use reaches the other relay", func() bool {
			other.mu.Lock()
			defer other.mu.Unlock()
			return other.known[id] >= ms
		})
		time.Sleep(2 * time.Millisecond)
	}
	if strings.Join(got, ",") != "x,y,x,y" {
		t.Fatalf("picks across relays %v, want x,y,x,y", got)
	}
}

func TestConcurrentBindConverges(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	sa, sb := newSched(t, "x", "y"), newSched(t, "x", "y")
	a.Attach(sa)
	b.Attach(sb)
	// Both relays bind new conversations at the same time, each starting from
	// its own least-recently-used account (x on A, y on B).
	sb.Pick("claude", "m", "", nil) // B's next pick is y
	for i := 0; i < 20; i++ {
		key := "race-" + string(rune('a'+i))
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); sa.Pick("claude", "m", key, nil) }()
		go func() { defer wg.Done(); sb.Pick("claude", "m", key, nil) }()
		wg.Wait()
		eventually(t, time.Second, "relays agree on "+key, func() bool {
			x, y := bindingOf(sa, key), bindingOf(sb, key)
			return x != "" && x == y
		})
	}
}

func TestLease(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 2)
	a, b := newMember(t, cfg, true), newMember(t, cfg, true)
	ctx := context.Background()

	// Exclusive: B waits while A holds it, and gets it when A releases.
	unlockA, err := a.Lock(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	var bHas atomic.Bool
	done := make(chan func())
	go func() {
		u, err := b.Lock(ctx, "acct")
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		bHas.Store(true)
		done <- u
	}()
	// A holds it past its time to live: the renewal keeps it.
	time.Sleep(3 * time.Second)
	if bHas.Load() {
		t.Fatal("B took a lease A still holds (renewal failed)")
	}
	// A's fenced save works while it holds the lease.
	cred := state.Credential{AccountID: "acct", RefreshToken: "rt-1", AccessToken: "at-1", ExpiresAt: time.Now().Add(time.Hour), UpdatedAt: time.Now()}
	if err := a.CredentialStore().SaveCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	unlockA()
	unlockB := <-done
	if unlockB == nil {
		t.FailNow()
	}
	// B re-reads what A stored, and its local mirror has it.
	got, err := b.CredentialStore().Credential(ctx, "acct")
	if err != nil || got.RefreshToken != "rt-1" {
		t.Fatalf("B read %+v %v", got, err)
	}
	if local, err := b.db.Credential(ctx, "acct"); err != nil || local.RefreshToken != "rt-1" {
		t.Fatalf("B's mirror %+v %v", local, err)
	}
	// A without the lease cannot save (fencing): B's holder is not overwritten.
	stale := cred
	stale.RefreshToken, stale.UpdatedAt = "rt-stale", time.Now()
	if err := a.CredentialStore().SaveCredential(ctx, stale); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("save without the lease: %v", err)
	}
	unlockB()
	if got, _ := b.CredentialStore().Credential(ctx, "acct"); got.RefreshToken != "rt-1" {
		t.Fatalf("a save without the lease went through: %+v", got)
	}
}

func TestLeaseOfDeadHolderExpires(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 2)
	dead := newMember(t, cfg, false)
	if _, err := dead.Lock(context.Background(), "acct"); err != nil {
		t.Fatal(err)
	}
	dead.Close() // a crash: no release, no more renewals
	live := newMember(t, cfg, false)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock, err := live.Lock(ctx, "acct")
	if err != nil {
		t.Fatalf("lease of a dead holder never freed: %v", err)
	}
	unlock()
	if waited := time.Since(start); waited > 2*time.Second+time.Second {
		t.Fatalf("waited %v for a 2 s lease", waited)
	}
}

func TestDegradedLockFailsFastAndRecovers(t *testing.T) {
	r := clustertest.Start(t)
	c := newMember(t, clusterCfg(r, 2), false)
	s := newSched(t, "x", "y")
	c.Attach(s)
	r.Stop()
	eventually(t, 5*time.Second, "degraded", c.Degraded)
	if !strings.HasPrefix(c.Health(), "degraded: ") {
		t.Fatalf("health %q", c.Health())
	}
	start := time.Now()
	if _, err := c.Lock(context.Background(), "x"); !errors.Is(err, ErrDegraded) {
		t.Fatalf("lock without redis: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("lock without redis waited")
	}
	// Changes made during the outage reach Redis after it returns (empty).
	s.Pick("claude", "m", "during-outage", nil)
	s.Report("y", provider.Verdict{Kind: provider.RateLimited})
	r.Restart()
	eventually(t, 10*time.Second, "recovered", func() bool { return c.Health() == "ok" })
	adm, err := Dial(context.Background(), clusterCfg(r, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	eventually(t, 5*time.Second, "local view pushed", func() bool {
		ss, _ := adm.Sessions(context.Background(), time.Now())
		cds, _ := adm.Cooldowns(context.Background(), time.Now())
		return len(ss) == 1 && ss[0].Key == "during-outage" && len(cds) == 1 && cds[0].AccountID == "y"
	})
}

// A binding claimed on one relay is in Redis when ClaimSession returns: the
// next relay's LookupSession finds it without waiting for the event. The
// later binding wins a claim; unknown and expired keys are not found.
func TestClaimAndLookupSession(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	ctx := context.Background()
	if _, ok := b.LookupSession(ctx, "conv"); ok {
		t.Fatal("found a conversation nobody bound")
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	a.ClaimSession(ctx, state.Binding{Key: "conv", AccountID: "x", ExpiresAt: exp})
	got, ok := b.LookupSession(ctx, "conv")
	if !ok || got.AccountID != "x" || !got.ExpiresAt.Equal(exp) || got.Key != "conv" {
		t.Fatalf("lookup after claim: %+v %v", got, ok)
	}
	// An older claim does not replace a newer binding.
	b.ClaimSession(ctx, state.Binding{Key: "conv", AccountID: "y", ExpiresAt: exp.Add(-time.Minute)})
	if got, _ := a.LookupSession(ctx, "conv"); got.AccountID != "x" {
		t.Fatalf("an older claim replaced the binding: %+v", got)
	}
}

// A conversation's last turn (relay key, model, time) reaches the other
// relays with its binding, and a later turn on the other relay comes back.
func TestSessionTurnIsShared(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	sa, sb := newSched(t, "x", "y"), newSched(t, "x", "y")
	a.Attach(sa)
	b.Attach(sb)
	turn := scheduler.Turn{Model: "claude-sonnet-4-5", SessionKey: "conv-t", KeyName: "alice", KeyHash: "h-alice"}
	if _, err := sa.PickTurn("claude", turn, nil); err != nil {
		t.Fatal(err)
	}
	onA, _ := sa.Session("conv-t")
	eventually(t, 5*time.Second, "the turn reaches B", func() bool {
		got, ok := sb.Session("conv-t")
		return ok && got.KeyName == "alice" && got.KeyHash == "h-alice" && got.Model == turn.Model && got.LastTurn.Equal(onA.LastTurn.Truncate(time.Millisecond))
	})
	turn.Model, turn.KeyName, turn.KeyHash = "claude-opus-4-1", "bob", "h-bob"
	if _, err := sb.PickTurn("claude", turn, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B's turn reaches A", func() bool {
		got, ok := sa.Session("conv-t")
		return ok && got.KeyName == "bob" && got.Model == "claude-opus-4-1"
	})
}
