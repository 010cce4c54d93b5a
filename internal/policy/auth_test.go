package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Relay keys are compared so that timing tells nothing: the presented key
// is hashed, and its digest is compared with every configured key's digest
// in constant time, whichever matches and wherever a wrong key differs.
// The test watches every comparison Authenticate makes, over unnamed keys,
// a named key and a named key stored only as its hash. (A statistical
// timing test could not catch a regression here: hashing first already
// hides where a wrong key differs, and what remains is nanoseconds.)
func TestAuthenticateComparesEveryDigestInConstantTime(t *testing.T) {
	keys := []string{"relay-key-alpha-0123456789abcdef", "relay-key-bravo-0123456789abcdef", "relay-key-charlie-0123456789abcd", "relay-key-delta-0123456789abcdef"}
	sum := sha256.Sum256([]byte(keys[3]))
	r, err := New(Options{APIKeys: keys[:2], Keys: []config.KeyConfig{{Name: "charlie", Key: keys[2]}, {Name: "delta", KeySHA256: hex.EncodeToString(sum[:])}}})
	if err != nil {
		t.Fatal(err)
	}
	type cmp struct{ a, b []byte }
	var calls []cmp
	compareHook = func(a, b *[32]byte) {
		calls = append(calls, cmp{append([]byte(nil), a[:]...), append([]byte(nil), b[:]...)})
	}
	t.Cleanup(func() { compareHook = nil })

	for _, tc := range []struct {
		name, value    string
		wantOK         bool
		wantID, wantNm string
	}{
		{"first key", keys[0], true, usage.HashKey(keys[0]), ""},
		{"named key", keys[2], true, usage.HashKey(keys[2]), "charlie"},
		{"hash-only key", keys[3], true, usage.HashKey(keys[3]), "delta"},
		{"wrong key sharing a long prefix", keys[1][:len(keys[1])-1] + "X", false, "", ""},
		{"wrong key differing at once", "Xelay-key-bravo-0123456789abcdef", false, "", ""},
		{"short key", "r", false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			k, ok := r.Authenticate(tc.value)
			var id, name string
			if k != nil {
				id, name = k.ID, k.Name
			}
			if ok != tc.wantOK || id != tc.wantID || name != tc.wantNm {
				t.Fatalf("Authenticate = %q %q, %v; want %q %q, %v", id, name, ok, tc.wantID, tc.wantNm, tc.wantOK)
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
	if _, ok := r.Authenticate(""); ok || len(calls) != 0 {
		t.Fatalf("no key: ok=%v after %d comparisons", ok, len(calls))
	}
}

func TestKeyEqualSeesEveryByte(t *testing.T) {
	var a [32]byte
	for i := range a {
		a[i] = byte(i * 7)
	}
	if keyEqual(&a, &a) != 1 {
		t.Fatal("equal digests differ")
	}
	for i := 0; i < 32; i++ {
		for bit := 0; bit < 8; bit++ {
			b := a
			b[i] ^= 1 << bit
			if keyEqual(&a, &b) != 0 {
				t.Fatalf("a difference in byte %d bit %d is not seen", i, bit)
			}
		}
	}
}
