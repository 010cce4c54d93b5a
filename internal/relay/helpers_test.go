package relay

import (
	"testing"

	"github.com/ccrelay/ccrelay/internal/policy"
)

// testPolicy is the policy of a relay with the given unnamed keys; without
// any it serves only clients on this machine (protected mode), as the
// relay's httptest clients are.
func testPolicy(t testing.TB, keys ...string) *policy.Policy {
	t.Helper()
	p, err := policy.New(policy.Options{APIKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
