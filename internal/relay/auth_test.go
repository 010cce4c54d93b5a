package relay

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Relay keys are compared so that timing tells nothing: the presented key
// is hashed, and its digest is compared with every configured key's digest
// in constant time, whichever matches and wherever a wrong key differs.
// The test watches every comparison authenticate makes. (A statistical
// timing test could not catch a regression here: hashing first already
// hides where a wrong key differs, and what remains is nanoseconds.)
func TestAuthenticateComparesEveryDigestInConstantTime(t *testing.T) {
	keys := []string{"relay-key-alpha-0123456789abcdef", "relay-key-bravo-0123456789abcdef", "relay-key-charlie-0123456789abcd"}
	r := New(Options{APIKeys: keys}, nil, nil, nil, nil)
	type cmp struct{ a, b []byte }
	var calls []cmp
	orig := keyEqual
	keyEqual = func(a, b []byte) int {
		calls = append(calls, cmp{append([]byte(nil), a...), append([]byte(nil), b...)})
		return orig(a, b)
	}
	t.Cleanup(func() { keyEqual = orig })

	for _, tc := range []struct {
		name, header, value string
		wantOK              bool
		wantID              string
	}{
		{"first key", "X-Api-Key", keys[0], true, r.keyIDs[0]},
		{"last key", "Authorization", "Bearer " + keys[2], true, r.keyIDs[2]},
		{"wrong key sharing a long prefix", "X-Api-Key", keys[1][:len(keys[1])-1] + "X", false, ""},
		{"wrong key differing at once", "X-Api-Key", "Xelay-key-bravo-0123456789abcdef", false, ""},
		{"short key", "X-Api-Key", "r", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			req := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
			req.Header.Set(tc.header, tc.value)
			id, ok := r.authenticate(req, false)
			if ok != tc.wantOK || id != tc.wantID {
				t.Fatalf("authenticate = %q, %v; want %q, %v", id, ok, tc.wantID, tc.wantOK)
			}
			if len(calls) != len(keys) {
				t.Fatalf("%d comparisons for %d keys: every key must be compared, whichever matches", len(calls), len(keys))
			}
			for _, c := range calls {
				if len(c.a) != 32 || len(c.b) != 32 {
					t.Fatalf("compared %d and %d bytes; want two sha256 digests", len(c.a), len(c.b))
				}
				for _, k := range keys {
					if bytes.Contains(c.a, []byte(k)) || bytes.Contains(c.b, []byte(k)) {
						t.Fatal("a raw key was compared")
					}
				}
			}
		})
	}
	calls = nil
	if _, ok := r.authenticate(httptest.NewRequest(http.MethodPost, "/v1/messages", nil), false); ok || len(calls) != 0 {
		t.Fatalf("no key: ok=%v after %d comparisons", ok, len(calls))
	}
}
