package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds, and fails the
// test naming what it waited for when it still does not after within. Every
// wait in a test has such a bound, so a broken build fails instead of hanging
// until the test binary's own timeout.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v still waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
