package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
)

// ErrDegraded is returned by the lease Locker while Redis is unreachable: the
// relay does not refresh an OAuth token without the lease (see Locker).
var ErrDegraded = errors.New("cluster redis unreachable; no oauth refresh without the cluster lease")

// ErrLeaseLost is returned by SaveCredential when this relay does not hold
// the account's lease (any more): a holder that lost its lease must not
// overwrite what the new holder may already have stored.
var ErrLeaseLost = errors.New("refresh lease not held; credential not stored in redis")

// acquireScript takes the lease if free and returns its fencing token (0 when
// taken). KEYS: lease, fence counter. ARGV: relay id, ttl ms.
var acquireScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], f .. ':' .. ARGV[1], 'PX', ARGV[2])
return f
`)

// renewScript extends the lease if still ours. KEYS: lease. ARGV: value, ttl ms.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// releaseScript deletes the lease if still ours. KEYS: lease. ARGV: value.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// saveCredScript is the fenced write: it stores the credential only while the
// caller's lease is the current one and no write with a higher fencing token
// happened, then publishes the change.
// A credential of a higher generation (a newer login's) is never replaced.
// KEYS: lease, credential hash, channel. ARGV: lease value, fence, event
// JSON, generation, field pairs...
var saveCredScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local f = tonumber(redis.call('HGET', KEYS[2], 'fence') or '0')
if f > tonumber(ARGV[2]) then return -1 end
if tonumber(redis.call('HGET', KEYS[2], 'generation') or '0') > tonumber(ARGV[4]) then return -2 end
redis.call('HSET', KEYS[2], 'fence', ARGV[2], unpack(ARGV, 5))
redis.call('PUBLISH', KEYS[3], ARGV[3])
return 1
`)

// pushCredScript stores a credential only if Redis holds none or an older one
// (a lower generation, or the same one updated earlier): resync after Redis
// lost its data or missed a save. KEYS: hash, channel. ARGV: updated ms,
// event JSON, generation, field pairs...
var pushCredScript = redis.NewScript(`
local g = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
if g > tonumber(ARGV[3]) then return 0 end
local u = tonumber(redis.call('HGET', KEYS[1], 'updated_at_ms') or '0')
if g == tonumber(ARGV[3]) and u >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
`)

// lease is one held refresh lease.
type lease struct {
	value string // "<fence>:<relay id>"
	fence int64
	stop  chan struct{}
	done  chan struct{}
}

// Lock takes accountID's refresh lease, waiting while another relay holds it
// (until ctx ends). A held lease is renewed every third of its time to live
// until unlock, so only a relay that died (or lost Redis) lets it expire.
//
// The safe rule without Redis: Lock fails at once with ErrDegraded, so the
// OAuth source keeps using its cached access token while it is usable and
// the relay fails the account over otherwise. A refresh without the lease
// could spend a single-use refresh token that another relay (on the other
// side of a partition) spends too; waiting for Redis never can.
func (c *Cluster) Lock(ctx context.Context, accountID string) (func(), error) {
	if c.Degraded() {
		return nil, ErrDegraded
	}
	ttl := strconv.FormatInt(c.leaseTTL.Milliseconds(), 10)
	wait := 10 * time.Millisecond
	for {
		f, err := acquireScript.Run(ctx, c.rdb, []string{c.leaseKey(accountID), c.fenceKey(accountID)}, c.id, ttl).Int64()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.noteErr(err)
			return nil, fmt.Errorf("take refresh lease: %w", err)
		}
		if f > 0 {
			l := &lease{value: strconv.FormatInt(f, 10) + ":" + c.id, fence: f, stop: make(chan struct{}), done: make(chan struct{})}
			c.mu.Lock()
			c.held[accountID] = l
			c.mu.Unlock()
			go c.renew(accountID, l)
			return func() { c.unlock(accountID, l) }, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-c.ctx.Done():
			t.Stop()
			return nil, errClosed
		case <-t.C:
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

var errClosed = errors.New("cluster closed")

func (c *Cluster) renew(accountID string, l *lease) {
	defer close(l.done)
	t := time.NewTicker(c.leaseTTL / 3)
	defer t.Stop()
	ttl := strconv.FormatInt(c.leaseTTL.Milliseconds(), 10)
	for {
		select {
		case <-l.stop:
			return
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, dialTimeout)
		n, err := renewScript.Run(ctx, c.rdb, []string{c.leaseKey(accountID)}, l.value, ttl).Int64()
		cancel()
		if err == nil && n == 0 {
			c.log.Warn("the oauth refresh lease expired while held; this relay will not store the refresh result in redis", "account", accountID)
			return
		}
	}
}

func (c *Cluster) unlock(accountID string, l *lease) {
	close(l.stop)
	<-l.done
	c.mu.Lock()
	if c.held[accountID] == l {
		delete(c.held, accountID)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), dialTimeout)
	defer cancel()
	// On failure the lease simply expires.
	_ = releaseScript.Run(ctx, c.rdb, []string{c.leaseKey(accountID)}, l.value).Err()
}

// credStore is the cluster's credential.Store.
type credStore struct{ c *Cluster }

// Credential returns the newest credential known: Redis's, or this relay's
// SQLite mirror when that is newer (a save that has not reached Redis yet) or
// when Redis cannot be read and this relay holds no lease (start-up during an
// outage: the tokens are used, not refreshed). Under a lease a Redis read
// error fails the refresh instead: an old local copy could hold a consumed
// refresh token. So does a credential sealed under another [cluster] secret,
// always: the relay's secret is wrong, and its error says so; and a
// plain-text one this relay does not accept (it may have been planted).
func (s credStore) Credential(ctx context.Context, accountID string) (state.Credential, error) {
	c := s.c
	local, lerr := c.localCredential(ctx, accountID)
	if c.Degraded() && !c.holds(accountID) {
		return local, lerr
	}
	remote, ok, err := c.credential(ctx, accountID)
	if errors.Is(err, errWrongSecret) || errors.Is(err, errNoSecret) || errors.Is(err, errPlaintext) {
		return state.Credential{}, err
	}
	if err != nil {
		c.noteErr(err)
		if c.holds(accountID) {
			return state.Credential{}, fmt.Errorf("read shared credential: %w", err)
		}
		return local, lerr
	}
	if !ok || (lerr == nil && newerCredential(local, remote)) {
		return local, lerr
	}
	if lerr != nil || newerCredential(remote, local) {
		c.mirror(ctx, remote)
	}
	return remote, nil
}

// newerCredential reports whether a is newer than b: a higher generation (a
// newer login), or the same one updated later.
func newerCredential(a, b state.Credential) bool {
	if a.Generation != b.Generation {
		return a.Generation > b.Generation
	}
	return a.UpdatedAt.After(b.UpdatedAt)
}

// SaveCredential writes the local mirror first (the newest refresh token
// must survive whatever happens next), then Redis, fenced by this relay's
// lease. Without the lease it returns ErrLeaseLost; the OAuth source then
// keeps the credential in memory and saves it again under its next lease.
// A credential of a higher generation (a newer login's), here or in Redis,
// is never replaced: state.ErrSuperseded.
func (s credStore) SaveCredential(ctx context.Context, cr state.Credential) error {
	c := s.c
	if c.db != nil {
		err := c.db.SaveCredential(ctx, cr)
		if errors.Is(err, state.ErrSuperseded) {
			return err
		}
		if err != nil {
			c.log.Warn("could not mirror the oauth credential into the local database", "account", cr.AccountID, "err", err)
		}
	}
	c.mu.Lock()
	l := c.held[cr.AccountID]
	c.mu.Unlock()
	if l == nil {
		return ErrLeaseLost
	}
	ev := event{Origin: c.id, Type: evCred, Acct: cr.AccountID}.json()
	args := append([]any{l.value, strconv.FormatInt(l.fence, 10), ev, strconv.FormatInt(cr.Generation, 10)}, c.credFields(cr, c.id)...)
	n, err := saveCredScript.Run(ctx, c.rdb, []string{c.leaseKey(cr.AccountID), c.credKey(cr.AccountID), c.channel()}, args...).Int64()
	switch {
	case err == nil && n == -2:
		return state.ErrSuperseded
	case err != nil:
		c.noteErr(err)
		return fmt.Errorf("store credential in redis: %w", err)
	case n == 0:
		return ErrLeaseLost
	case n < 0:
		return fmt.Errorf("store credential in redis: a newer lease wrote it: %w", ErrLeaseLost)
	}
	return nil
}

func (c *Cluster) holds(accountID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[accountID] != nil
}

func (c *Cluster) localCredential(ctx context.Context, accountID string) (state.Credential, error) {
	if c.db == nil {
		return state.Credential{}, store.ErrNoRow
	}
	return c.db.Credential(ctx, accountID)
}

// mirror copies a newer shared credential into the local database, so a
// restart during an outage (or after Redis lost its data) starts from the
// newest chain this relay has seen.
func (c *Cluster) mirror(ctx context.Context, cr state.Credential) {
	if c.db == nil {
		return
	}
	if local, err := c.db.Credential(ctx, cr.AccountID); err == nil && !newerCredential(cr, local) {
		return
	}
	if err := c.db.SaveCredential(ctx, cr); err != nil && !errors.Is(err, state.ErrSuperseded) {
		c.log.Warn("could not mirror the oauth credential into the local database", "account", cr.AccountID, "err", err)
	}
}
