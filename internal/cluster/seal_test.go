package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/state"
)

const (
	sealedRT = "sk-ant-ort01-refresh-token-under-test-abcdefgh"
	sealedAT = "sk-ant-oat01-access-token-under-test-abcdefgh"
)

// saveUnderLease stores cr through m's credential store, as a refresh does.
func saveUnderLease(t *testing.T, m *Cluster, cr state.Credential) {
	t.Helper()
	unlock, err := m.Lock(context.Background(), cr.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := m.CredentialStore().SaveCredential(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
}

// assertNoToken fails when Redis holds any 12-byte piece of a token.
func assertNoToken(t *testing.T, r *clustertest.Redis, tokens ...string) {
	t.Helper()
	dump := r.Dump(t)
	for _, tok := range tokens {
		for i := 0; i+12 <= len(tok); i++ {
			if strings.Contains(dump, tok[i:i+12]) {
				t.Fatalf("redis holds token bytes %q:\n%s", tok[i:i+12], dump)
			}
		}
	}
}

// Tokens in Redis are encrypted under [cluster] secret: what Redis holds has
// no token bytes; relays with the same secret share the credential; a relay
// with another secret (or none) cannot read it and says why, without falling
// back to a local copy; a sealed value moved to another account does not
// open.
func TestCredentialsAreEncryptedInRedis(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	a, b := newMember(t, cfg, true), newMember(t, cfg, false)
	ctx := context.Background()
	cred := state.Credential{AccountID: "acct", RefreshToken: sealedRT, AccessToken: sealedAT,
		ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Millisecond), OriginHash: "origin", UpdatedAt: time.Now().Truncate(time.Millisecond)}
	saveUnderLease(t, a, cred)
	assertNoToken(t, r, sealedRT, sealedAT)

	got, err := b.CredentialStore().Credential(ctx, "acct")
	if err != nil || got != cred {
		t.Fatalf("a relay with the same secret read %+v, %v; want %+v", got, err, cred)
	}

	wrong := cfg
	wrong.Secret = "another-secret-9876543210"
	w := newMember(t, wrong, true)
	stale := cred
	stale.RefreshToken, stale.UpdatedAt = "sk-ant-ort01-stale-local-copy", cred.UpdatedAt.Add(-time.Hour)
	if err := w.db.SaveCredential(ctx, stale); err != nil {
		t.Fatal(err)
	}
	got, err = w.CredentialStore().Credential(ctx, "acct")
	if !errors.Is(err, errWrongSecret) || !strings.Contains(err.Error(), "[cluster] secret") || !strings.Contains(err.Error(), `"acct"`) {
		t.Fatalf("a relay with another secret read %+v, %v; want a clear wrong-secret error", got, err)
	}
	if strings.Contains(err.Error(), sealedRT) || strings.Contains(err.Error(), "aesgcm1:") {
		t.Fatalf("the error quotes the stored value: %v", err)
	}

	none := cfg
	none.Secret = ""
	if _, err := newMember(t, none, false).CredentialStore().Credential(ctx, "acct"); !errors.Is(err, errNoSecret) {
		t.Fatalf("a relay without a secret: %v", err)
	}

	// A sealed value copied to another account does not open there.
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(r.URL, "redis://"), "/0")})
	defer rdb.Close()
	fields, err := rdb.HGetAll(ctx, "test:cred:acct").Result()
	if err != nil || !strings.HasPrefix(fields["refresh_token"], sealPrefix) {
		t.Fatalf("stored credential %v, %v", fields, err)
	}
	if err := rdb.HSet(ctx, "test:cred:other", fields).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.CredentialStore().Credential(ctx, "other"); !errors.Is(err, errWrongSecret) {
		t.Fatalf("a value moved to another account opened: %+v, %v", got, err)
	}
}

// Every write has a fresh nonce: the same token sealed twice differs, and
// both open.
func TestSealUsesFreshNonces(t *testing.T) {
	aead, err := newSealer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{aead: aead}
	x, y := c.seal("acct", "refresh_token", sealedRT), c.seal("acct", "refresh_token", sealedRT)
	if x == y {
		t.Fatal("two seals of one token are equal")
	}
	for _, v := range []string{x, y} {
		if got, plain, err := c.open("acct", "refresh_token", v); err != nil || plain || got != sealedRT {
			t.Fatalf("open: %q %v %v", got, plain, err)
		}
	}
	if _, _, err := c.open("acct", "access_token", x); !errors.Is(err, errWrongSecret) {
		t.Fatalf("a refresh token opened as the access token: %v", err)
	}
}

// Tokens an older relay stored in plain text are read once and replaced by
// their sealed form.
// plantPlain stores a credential in plain text, as a relay before the
// encryption wrote it (credFields of that version), or as anyone with write
// access to Redis could.
func plantPlain(t *testing.T, r *clustertest.Redis, upd time.Time) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(r.URL, "redis://"), "/0")})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.HSet(context.Background(), "test:cred:acct", "fence", "3", "refresh_token", sealedRT, "access_token", sealedAT,
		"expires_at_ms", upd.Add(time.Hour).UnixMilli(), "origin_hash", "origin", "updated_at_ms", upd.UnixMilli(), "writer", "old").Err(); err != nil {
		t.Fatal(err)
	}
	return rdb
}

// With accept_plaintext_credentials on (the upgrade), a plain-text
// credential is read, logged, and sealed in place.
func TestPlainTextCredentialIsSealedOnRead(t *testing.T) {
	r := clustertest.Start(t)
	cfg := clusterCfg(r, 15)
	cfg.AcceptPlaintextCredentials = true
	var logs bytes.Buffer
	m, err := New(cfg, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx := context.Background()
	upd := time.Now().Truncate(time.Millisecond)
	rdb := plantPlain(t, r, upd)
	for range 2 {
		got, err := m.CredentialStore().Credential(ctx, "acct")
		if err != nil || got.RefreshToken != sealedRT || got.AccessToken != sealedAT || !got.UpdatedAt.Equal(upd) {
			t.Fatalf("read %+v, %v", got, err)
		}
		assertNoToken(t, r, sealedRT, sealedAT)
	}
	if f, _ := rdb.HGet(ctx, "test:cred:acct", "fence").Result(); f != "3" {
		t.Fatalf("sealing in place changed the fence: %q", f)
	}
	if n := strings.Count(logs.String(), "plain text"); n != 1 || !strings.Contains(logs.String(), "account=acct") {
		t.Fatalf("want one warning naming the account, got %d:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), sealedRT) || strings.Contains(logs.String(), sealedAT) {
		t.Fatalf("a token is in the logs:\n%s", logs.String())
	}
}

// By default a plain-text credential is refused: whoever can write to
// Redis could have planted it to swap the account's token. It is neither
// used, nor sealed, nor replaced by the local copy.
func TestPlainTextCredentialIsRefusedByDefault(t *testing.T) {
	r := clustertest.Start(t)
	m := newMember(t, clusterCfg(r, 15), true)
	ctx := context.Background()
	local := state.Credential{AccountID: "acct", RefreshToken: "sk-ant-ort01-local-copy-abcdefgh", UpdatedAt: time.Now().Add(-time.Hour).Truncate(time.Millisecond)}
	if err := m.db.SaveCredential(ctx, local); err != nil {
		t.Fatal(err)
	}
	rdb := plantPlain(t, r, time.Now().Truncate(time.Millisecond))
	got, err := m.CredentialStore().Credential(ctx, "acct")
	if !errors.Is(err, errPlaintext) || got.RefreshToken != "" {
		t.Fatalf("read %+v, %v; want errPlaintext", got, err)
	}
	if !strings.Contains(err.Error(), "accept_plaintext_credentials") {
		t.Fatalf("the error does not name the setting: %v", err)
	}
	if v, _ := rdb.HGet(ctx, "test:cred:acct", "refresh_token").Result(); v != sealedRT {
		t.Fatalf("the refused value was rewritten: %q", v)
	}
}

// A redis:// URL (no TLS) to another machine is warned about; loopback and
// rediss:// are not.
func TestWarnsAboutPlainTextRedisOnTheNetwork(t *testing.T) {
	for url, warn := range map[string]bool{
		"redis://10.0.0.5:6379/0":               true,
		"redis://:pw@redis.internal:6379":       true,
		"redis://[2001:db8::1]:6379":            true,
		"redis://127.0.0.1:6379/0":              false,
		"redis://127.0.0.2:6379":                false,
		"redis://localhost:6379":                false,
		"redis://[::1]:6379":                    false,
		"rediss://10.0.0.5:6380/0":              false,
		"rediss://user:pw@redis.example.com:63": false,
	} {
		var logs bytes.Buffer
		warnPlaintextRedis(slog.New(slog.NewTextHandler(&logs, nil)), url)
		if got := strings.Contains(logs.String(), "level=WARN"); got != warn {
			t.Errorf("%s: warned %v, want %v: %s", url, got, warn, logs.String())
		}
		if strings.Contains(logs.String(), "pw") {
			t.Errorf("%s: the warning quotes the password: %s", url, logs.String())
		}
	}
}

// A save under the lease never replaces a shared credential of a higher
// generation (a newer login's), in Redis nor in the relay's local copy;
// reading returns the newer one (issue #31 item 13).
func TestOlderGenerationDoesNotReplaceSharedCredential(t *testing.T) {
	r := clustertest.Start(t)
	a := newMember(t, clusterCfg(r, 15), true)
	b := newMember(t, clusterCfg(r, 15), true)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	newer := state.Credential{AccountID: "acct", RefreshToken: sealedRT, AccessToken: sealedAT, OriginHash: "login-2", UpdatedAt: now, Generation: 200}
	saveUnderLease(t, a, newer)
	older := state.Credential{AccountID: "acct", RefreshToken: "sk-ant-ort01-old-chain-token-abcdefgh", OriginHash: "login-1", UpdatedAt: now.Add(time.Minute), Generation: 100}
	unlock, err := b.Lock(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	err = b.CredentialStore().SaveCredential(ctx, older)
	unlock()
	if !errors.Is(err, state.ErrSuperseded) {
		t.Fatalf("saving an older generation: %v, want ErrSuperseded", err)
	}
	for _, m := range []*Cluster{a, b} {
		got, err := m.CredentialStore().Credential(ctx, "acct")
		if err != nil || got.RefreshToken != sealedRT || got.Generation != 200 || got.OriginHash != "login-2" {
			t.Fatalf("read %+v, %v; want the newer login's", got, err)
		}
	}
}
