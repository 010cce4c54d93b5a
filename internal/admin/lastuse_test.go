package admin

import (
	"context"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/policy"
)

// An api_keys entry shows when it was last used: the policy records the
// use of a key without a name at the end of its request, and the key list
// reads it.
func TestAPIKeyLastUse(t *testing.T) {
	at := time.Date(2026, 12, 7, 17, 30, 0, 0, time.UTC)
	pol, err := policy.New(policy.Options{APIKeys: []string{relayKey}, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.KeyLastUsed = pol.LastUsed })
	get := func() Key {
		t.Helper()
		_, body := f.do(t, "GET", "/admin/v1/keys", "")
		for _, k := range decode[KeysResponse](t, body).Keys {
			if k.Name == "api_keys[0]" {
				return k
			}
		}
		t.Fatalf("no api_keys[0]: %s", body)
		return Key{}
	}
	if k := get(); k.LastUsed != nil {
		t.Fatalf("unused key has a last use: %v", k.LastUsed)
	}
	k, ok := pol.Authenticate(relayKey)
	if !ok || pol.Admit(context.Background(), k, "m") != nil {
		t.Fatal("the relay key is refused")
	}
	pol.Done(k, 10, true, 5)
	if got := get(); got.LastUsed == nil || !got.LastUsed.Equal(at) {
		t.Fatalf("last use %v, want %v", got.LastUsed, at)
	}
}
