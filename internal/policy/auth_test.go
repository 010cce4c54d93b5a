package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Relay keys are found by a map lookup on the sha256 digest of the key
// presented, then one constant-time compare of the digest found (see
// Authenticate for why the map's timing reveals nothing about any key).
// The test covers unnamed keys, a named key and a named key stored only as
// its hash, wrong keys near a right one, and a table of 1,000 keys.
func TestAuthenticate(t *testing.T) {
	keys := []string{"relay-key-alpha-0123456789abcdef", "relay-key-bravo-0123456789abcdef", "relay-key-charlie-0123456789abcd", "relay-key-delta-0123456789abcdef"}
	sum := sha256.Sum256([]byte(keys[3]))
	named := []config.KeyConfig{{Name: "charlie", Key: keys[2]}, {Name: "delta", KeySHA256: hex.EncodeToString(sum[:])}}
	for i := 0; i < 1000; i++ {
		named = append(named, config.KeyConfig{Name: "k" + strconv.Itoa(i), Key: "relay-key-" + strconv.Itoa(i)})
	}
	r, err := New(Options{APIKeys: keys[:2], Keys: named})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value    string
		wantOK         bool
		wantID, wantNm string
	}{
		{"first key", keys[0], true, usage.HashKey(keys[0]), ""},
		{"named key", keys[2], true, usage.HashKey(keys[2]), "charlie"},
		{"hash-only key", keys[3], true, usage.HashKey(keys[3]), "delta"},
		{"one of many", "relay-key-777", true, usage.HashKey("relay-key-777"), "k777"},
		{"wrong key sharing a long prefix", keys[1][:len(keys[1])-1] + "X", false, "", ""},
		{"wrong key differing at once", "Xelay-key-bravo-0123456789abcdef", false, "", ""},
		{"a stored digest presented as the key", hex.EncodeToString(sum[:]), false, "", ""},
		{"short key", "r", false, "", ""},
		{"no key", "", false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := r.Authenticate(tc.value)
			var id, name string
			if k != nil {
				id, name = k.ID, k.Name
			}
			if ok != tc.wantOK || id != tc.wantID || name != tc.wantNm {
				t.Fatalf("Authenticate = %q %q, %v; want %q %q, %v", id, name, ok, tc.wantID, tc.wantNm, tc.wantOK)
			}
		})
	}
}

// BenchmarkAuthenticate looks up a key among 1,000 named keys and among
// two api_keys: the cost must not grow with the number of keys.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{2, 1000} {
		b.Run(strconv.Itoa(n)+"keys", func(b *testing.B) {
			var keys []config.KeyConfig
			for i := 0; i < n; i++ {
				keys = append(keys, config.KeyConfig{Name: "k" + strconv.Itoa(i), Key: "relay-key-" + strconv.Itoa(i), QueueSeconds: 30})
			}
			p, err := New(Options{Keys: keys})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := p.Authenticate("relay-key-1"); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}
