package scheduler

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// fakeQuota reports fixed headroom per account.
type fakeQuota map[string]quota.Headroom

func (f fakeQuota) Headroom(id string, now time.Time) quota.Headroom { return f[id] }

func used(u float64) quota.Headroom { return quota.Headroom{Known: true, Used: u, Load: u} }

func withQuota(s *Scheduler, q fakeQuota, headroom bool) {
	s.SetQuota(QuotaPolicy{Source: q, Headroom: headroom, SoftLimit: 0.9, HardLimit: 0.98})
}

// spread sends n new conversations and counts where they go.
func spread(t *testing.T, s *Scheduler, c *clock, n int) map[string]int {
	got := map[string]int{}
	for i := 0; i < n; i++ {
		got[pick(t, s, "m", fmt.Sprintf("conv-%d", i))]++
		c.add(time.Second)
	}
	return got
}

func TestHeadroomSpreadsToTheEmptierAccount(t *testing.T) {
	for _, tt := range []struct {
		name     string
		headroom bool
		wantA    int
	}{
		{"headroom", true, 0},
		{"lru", false, 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newSched(t, nil, acct("a", 100), acct("b", 100))
			withQuota(s, fakeQuota{"a": used(0.8), "b": used(0.1)}, tt.headroom)
			got := spread(t, s, c, 100)
			if got["a"] != tt.wantA || got["b"] != 100-tt.wantA {
				t.Fatalf("conversations per account %v, want a=%d", got, tt.wantA)
			}
		})
	}
}

func TestHeadroomEqualsShareByLastUse(t *testing.T) {
	s, c := newSched(t, nil, acct("a", 100), acct("b", 100), acct("low", 50))
	withQuota(s, fakeQuota{"a": used(0.41), "b": used(0.43), "low": used(0)}, true)
	got := spread(t, s, c, 10)
	if got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("accounts within one bucket of headroom: %v, want 5/5 (priority still first)", got)
	}
}

func TestSoftLimit(t *testing.T) {
	s, c := newSched(t, nil, acct("a", 200), acct("b", 100))
	q := fakeQuota{"a": used(0.5), "b": used(0.5)}
	withQuota(s, q, true)
	if p := pick(t, s, "m", "sticky"); p != "a" {
		t.Fatalf("higher priority first, got %s", p)
	}
	q["a"] = used(0.95)
	if p := pick(t, s, "m", "new"); p != "b" {
		t.Fatalf("past the soft limit a took a new conversation: %s", p)
	}
	if p := pick(t, s, "m", "sticky"); p != "a" {
		t.Fatalf("a sticky conversation left its account under the hard limit: %s", p)
	}
	c.add(time.Second)
	if p := pick(t, s, "m", "other", "b"); p != "a" {
		t.Fatalf("with no other account a must still serve past the soft limit, got %s", p)
	}
}

func TestHardLimit(t *testing.T) {
	s, _ := newSched(t, nil, acct("a", 100), acct("b", 100))
	q := fakeQuota{"a": used(0.1), "b": used(0.5)}
	withQuota(s, q, true)
	if p := pick(t, s, "m", "sticky"); p != "a" {
		t.Fatalf("got %s", p)
	}
	q["a"] = used(0.99)
	q["b"] = used(0.95) // past soft, below hard: still better than a
	if p := pick(t, s, "m", "sticky"); p != "b" {
		t.Fatalf("a sticky conversation stayed on an account past the hard limit: %s", p)
	}
	if b, _ := s.Session("sticky"); b.AccountID != "b" {
		t.Fatalf("binding not moved: %+v", b)
	}
	q["b"] = used(0.99)
	if p := pick(t, s, "m", "sticky"); p != "b" {
		t.Fatalf("with every account past the hard limit the conversation stays: %s", p)
	}
	if p := pick(t, s, "m", "", "b"); p != "a" {
		t.Fatalf("past the hard limit an account still serves when no other can: %s", p)
	}
}

func TestPlanOnly(t *testing.T) {
	a, b := acct("a", 100), acct("b", 100)
	a.PlanOnly = true
	s, c := newSched(t, nil, a, b)
	reset := c.t.Add(2 * time.Hour)
	q := fakeQuota{
		"a": {Known: true, Used: 1, Load: 0.4, OverageInUse: true, Until: reset},
		"b": {Known: true, Used: 1, Load: 0.4, OverageInUse: true, Until: reset},
	}
	withQuota(s, q, true)
	got := spread(t, s, c, 4)
	if got["a"] != 0 {
		t.Fatalf("a plan_only account drawing extra usage got new work: %v", got)
	}
	_, err := s.Pick("claude", "m", "", []string{"b"})
	var na *NoAccountError
	if !errors.As(err, &na) || !na.RetryAt.Equal(reset) {
		t.Fatalf("want no account until the window resets, got %v", err)
	}
	c.t = reset.Add(time.Second)
	if p := pick(t, s, "m", "", "b"); p != "a" {
		t.Fatalf("after the reset a serves again, got %s", p)
	}
}
