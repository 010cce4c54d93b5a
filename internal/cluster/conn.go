// Package cluster lets several relays that share one Redis behave as one
// relay: sticky sessions, cooldowns (including "token invalid") and
// last-use times are shared; OAuth refreshes are serialised by a lease with
// expiry and fencing; rotated credentials are stored in Redis and mirrored
// into each relay's SQLite; relay keys' budgets, rpm and concurrency count
// every relay's requests (keys.go); body captures started through any relay's admin
// API apply on every relay (capture.go).
//
// The request path never waits on Redis: each relay keeps its scheduler's
// in-memory state as a local cache. Local changes are queued by a
// non-blocking Observer and written by one background goroutine, each write
// in the same atomic step as its PUBLISH on one channel, so every relay
// applies the same changes in the same order (its own included). When Redis
// is unreachable the relay serves from its local view, reports "degraded"
// in /health, and resyncs (push its view, then pull the shared one) when
// Redis answers again.
package cluster

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/state"
)

// conn is a Redis client with ccrelay's key layout. Both the long-lived
// Cluster of a running relay and the short-lived Admin of a CLI command use it.
//
// Keys (P is key_prefix):
//
//	P s:<session key>        "<expires ms> <account>", expiring at the binding's end
//	P c:<account>/<model>    cooldown JSON, expiring at its end (model "" = whole account)
//	P lastused               hash account -> last use (ms)
//	P cred:<account>         hash: the newest OAuth credential (tokens sealed, see seal.go) and the fence that wrote it
//	P lease:<account>        "<fence>:<relay>", the refresh lease (PX lease_seconds)
//	P fence:<account>        counter: the fencing token of each lease taken
//	P epoch                  set by the first relay after Redis starts empty
//	P events                 pub/sub channel of every change
type conn struct {
	rdb    *redis.Client
	prefix string
	// id names this process in events and leases.
	id string
	// aead seals the credential fields (nil without [cluster] secret).
	aead cipher.AEAD
	// acceptPlain is [cluster] accept_plaintext_credentials.
	acceptPlain bool
	// log tells of plain-text credentials accepted; nil discards.
	log *slog.Logger
}

// dialTimeout bounds connecting and every single command; the relay never
// waits longer than this on Redis outside a refresh.
const dialTimeout = 2 * time.Second

func newConn(cfg config.ClusterConfig) (*conn, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		// ParseURL's errors may quote the URL, which can hold a password.
		return nil, errors.New("cluster: redis_url is not a valid redis:// or rediss:// URL")
	}
	if cfg.Username != "" {
		opt.Username = cfg.Username
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: read tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster: tls_ca_file %s holds no PEM certificate", cfg.TLSCAFile)
		}
		if opt.TLSConfig == nil {
			opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opt.TLSConfig.RootCAs = pool
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dialTimeout, dialTimeout, dialTimeout
	opt.MaxRetries = 1
	opt.PoolSize = 16
	opt.DisableIdentity = true
	// Plain Redis and Valkey answer the maintenance-notification handshake
	// with an error; don't send it.
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// go-redis logs every failed dial to stderr, with the address, around
	// slog; the cluster logs an outage once itself (atomic, process-wide).
	redis.SetLogger(&logging.VoidLogger{})
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = "ccrelay:"
	}
	aead, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	return &conn{rdb: redis.NewClient(opt), prefix: prefix, id: newID(), aead: aead, acceptPlain: cfg.AcceptPlaintextCredentials}, nil
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	if len(host) > 24 {
		host = host[:24]
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

func (c *conn) sessionKey(key string) string          { return c.prefix + "s:" + key }
func (c *conn) cooldownKey(acct, model string) string { return c.prefix + "c:" + acct + "/" + model }
func (c *conn) lastUsedKey() string                   { return c.prefix + "lastused" }
func (c *conn) credKey(acct string) string            { return c.prefix + "cred:" + acct }
func (c *conn) leaseKey(acct string) string           { return c.prefix + "lease:" + acct }
func (c *conn) fenceKey(acct string) string           { return c.prefix + "fence:" + acct }
func (c *conn) epochKey() string                      { return c.prefix + "epoch" }
func (c *conn) channel() string                       { return c.prefix + "events" }

// globEscape quotes the glob metacharacters of a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scan returns every key under prefix+sub.
func (c *conn) scan(ctx context.Context, sub string) ([]string, error) {
	var out []string
	iter := c.rdb.Scan(ctx, 0, globEscape(c.prefix+sub)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	return out, iter.Err()
}

// getAll GETs keys in one pipeline; a key gone meanwhile yields "".
func (c *conn) getAll(ctx context.Context, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, cmd := range cmds {
		out[i] = cmd.Val()
	}
	return out, nil
}

// getUnder reads every key under prefix+sub and its value: names are the
// keys without prefix+sub, vals their values ("" for a key gone
// meanwhile). what names the keys in an error ("sessions").
func (c *conn) getUnder(ctx context.Context, sub, what string) (names, vals []string, err error) {
	keys, err := c.scan(ctx, sub)
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", what, err)
	}
	vals, err = c.getAll(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", what, err)
	}
	for i := range keys {
		keys[i] = strings.TrimPrefix(keys[i], c.prefix+sub)
	}
	return keys, vals, nil
}

// sessions reads every live binding.
func (c *conn) sessions(ctx context.Context) ([]state.Binding, error) {
	names, vals, err := c.getUnder(ctx, "s:", "sessions")
	if err != nil {
		return nil, err
	}
	var out []state.Binding
	for i, v := range vals {
		if b, ok := decodeBinding(names[i], v); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// cooldowns reads every cooldown in force.
func (c *conn) cooldowns(ctx context.Context) ([]state.Cooldown, error) {
	names, vals, err := c.getUnder(ctx, "c:", "cooldowns")
	if err != nil {
		return nil, err
	}
	var out []state.Cooldown
	for i, v := range vals {
		acct, model, ok := strings.Cut(names[i], "/")
		if !ok || v == "" {
			continue
		}
		if cd, ok := decodeCooldown(acct, model, v); ok {
			out = append(out, cd)
		}
	}
	return out, nil
}

// lastUsed reads the shared last-use times.
func (c *conn) lastUsed(ctx context.Context) (map[string]time.Time, error) {
	m, err := c.rdb.HGetAll(ctx, c.lastUsedKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("read last use: %w", err)
	}
	out := make(map[string]time.Time, len(m))
	for id, v := range m {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			out[id] = time.UnixMilli(ms)
		}
	}
	return out, nil
}

// credential reads an account's shared credential; ok is false when none.
// Its tokens are opened with the cluster secret: a value sealed under
// another secret is an error that says so. Tokens stored in plain text are
// an error too (errPlaintext), unless the relay accepts them: then they are
// returned, logged, and replaced in Redis by their sealed form unless
// something else was stored meanwhile.
func (c *conn) credential(ctx context.Context, acct string) (state.Credential, bool, error) {
	m, err := c.rdb.HGetAll(ctx, c.credKey(acct)).Result()
	if err != nil {
		return state.Credential{}, false, err
	}
	if m["refresh_token"] == "" {
		return state.Credential{}, false, nil
	}
	ms := func(k string) time.Time {
		v, _ := strconv.ParseInt(m[k], 10, 64)
		if v == 0 {
			return time.Time{}
		}
		return time.UnixMilli(v)
	}
	gen, _ := strconv.ParseInt(m["generation"], 10, 64)
	cr := state.Credential{AccountID: acct, ExpiresAt: ms("expires_at_ms"), OriginHash: m["origin_hash"], UpdatedAt: ms("updated_at_ms"), Generation: gen}
	plain := false
	for _, f := range sealedFields {
		v, p, err := c.open(acct, f, m[f])
		if err != nil {
			return state.Credential{}, false, fmt.Errorf("read the shared credential of account %q: %w", acct, err)
		}
		plain = plain || p
		if f == "refresh_token" {
			cr.RefreshToken = v
		} else {
			cr.AccessToken = v
		}
	}
	if plain && c.log != nil {
		c.log.Warn("read an oauth credential stored in redis in plain text (accept_plaintext_credentials is on); sealing it. Turn the setting off once every relay of the cluster is upgraded", "account", acct)
	}
	if plain && c.aead != nil {
		// Compare-and-set: only the very values read are replaced, so a
		// credential stored meanwhile is never overwritten with an older one.
		_ = sealPlainScript.Run(ctx, c.rdb, []string{c.credKey(acct)}, m["refresh_token"], m["access_token"],
			c.seal(acct, "refresh_token", cr.RefreshToken), c.seal(acct, "access_token", cr.AccessToken)).Err()
	}
	return cr, true, nil
}

// sealPlainScript replaces plain-text tokens by their sealed form if they
// are still the ones read. KEYS: credential hash. ARGV: refresh and access
// token as read, then sealed.
var sealPlainScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then return 0 end
if (redis.call('HGET', KEYS[1], 'access_token') or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'refresh_token', ARGV[3], 'access_token', ARGV[4])
return 1
`)

// credFields are the hash fields of a credential, as HSET arguments, with
// its tokens sealed.
func (c *conn) credFields(cr state.Credential, writer string) []any {
	return []any{"refresh_token", c.seal(cr.AccountID, "refresh_token", cr.RefreshToken), "access_token", c.seal(cr.AccountID, "access_token", cr.AccessToken),
		"expires_at_ms", strconv.FormatInt(msOf(cr.ExpiresAt), 10), "origin_hash", cr.OriginHash,
		"updated_at_ms", strconv.FormatInt(msOf(cr.UpdatedAt), 10), "generation", strconv.FormatInt(cr.Generation, 10), "writer", writer}
}

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func decodeBinding(key, v string) (state.Binding, bool) {
	exp, acct, ok := strings.Cut(v, " ")
	ms, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || acct == "" {
		return state.Binding{}, false
	}
	return state.Binding{Key: key, AccountID: acct, ExpiresAt: time.UnixMilli(ms)}, true
}
