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

// A relay without a policy is a programming error, not a relay that serves
// everyone: New used to build an open policy with AllowUnauthenticated set
// "for tests", which a caller forgetting the policy would have shipped.
func TestNewWithoutPolicyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New without a Policy did not panic")
		}
	}()
	New(Options{}, nil, nil, nil, nil)
}
