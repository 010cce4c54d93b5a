package scheduler

import "testing"

// An account at max_concurrency is passed over (a sticky session moves too)
// until a request ends; accounts without a cap are unaffected.
func TestMaxConcurrency(t *testing.T) {
	capped := acct("capped", 200)
	capped.MaxConcurrency = 2
	s, _ := newSched(t, nil, capped, acct("spare", 100))
	a1, _ := s.Pick("claude", "", "sess", nil)
	a2, _ := s.Pick("claude", "", "", nil)
	if a1.ID != "capped" || a2.ID != "capped" || capped.InUse() != 2 {
		t.Fatalf("first two: %s %s (in use %d)", a1.ID, a2.ID, capped.InUse())
	}
	if got := pick(t, s, "", "sess"); got != "spare" {
		t.Fatalf("at the cap: %s", got)
	}
	s.Release(a1)
	if got := pick(t, s, "", ""); got != "capped" {
		t.Fatalf("after a release: %s", got)
	}
}
