package cluster

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// Quota numbers are shared apart from the scheduler's state: a hash of each
// account's latest snapshot ("<seen ms> <json>", the newest wins) and a
// channel of changes. A relay that joins or reconnects pushes what it knows
// (older entries lose) and reads the hash back.
//
// Keys (P is key_prefix): P+"quota" (hash), channel P+"quota:events".

func (c *conn) quotaKey() string     { return c.prefix + "quota" }
func (c *conn) quotaChannel() string { return c.prefix + "quota:events" }

// setQuotaScript stores a snapshot unless a newer one is stored, and then
// publishes it.
//
// KEYS: hash, channel. ARGV: account, seen ms, snapshot JSON, event JSON.
var setQuotaScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp and tonumber(string.sub(cur, 1, sp - 1)) and tonumber(string.sub(cur, 1, sp - 1)) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
`)

type quotaEvent struct {
	Origin string         `json:"o"`
	Acct   string         `json:"a"`
	Snap   quota.Snapshot `json:"s"`
}

// quotaSync is one relay's sharing of its quota tracker.
type quotaSync struct {
	c    *Cluster
	t    *quota.Tracker
	wake chan struct{}

	mu      sync.Mutex
	pending map[string]quota.Snapshot // the latest of each account not yet written
}

// AttachQuota shares t's numbers with the cluster: its changes are published,
// other relays' are merged into it (the newest snapshot of an account wins),
// and it is synced with Redis now and after every reconnection.
func (c *Cluster) AttachQuota(t *quota.Tracker) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	q := &quotaSync{c: c, t: t, wake: make(chan struct{}, 1), pending: map[string]quota.Snapshot{}}
	t.AddObserver(q)
	ps := c.rdb.Subscribe(c.ctx, c.quotaChannel())
	c.wg.Add(3)
	go func() { defer c.wg.Done(); <-c.ctx.Done(); _ = ps.Close() }()
	go func() { defer c.wg.Done(); q.subscriber(ps) }()
	go func() { defer c.wg.Done(); q.publisher() }()
}

// QuotaChanged queues a snapshot for the cluster (called with the tracker's
// mutex held: it never waits on Redis).
func (q *quotaSync) QuotaChanged(accountID string, s quota.Snapshot) {
	q.mu.Lock()
	q.pending[accountID] = s
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *quotaSync) take() map[string]quota.Snapshot {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	p := q.pending
	q.pending = map[string]quota.Snapshot{}
	return p
}

func (q *quotaSync) publisher() {
	c := q.c
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-q.wake:
		}
		batch := q.take()
		if len(batch) > 0 && !c.Degraded() {
			ctx, cancel := context.WithTimeout(c.ctx, 2*dialTimeout)
			if err := q.write(ctx, batch); err != nil {
				c.noteErr(err)
			}
			cancel()
		}
		// Every answer changes the numbers; Redis needs the latest a few
		// times a second, not each one.
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(lastUsedFlush):
		}
	}
}

func (q *quotaSync) write(ctx context.Context, batch map[string]quota.Snapshot) error {
	c := q.c
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, s := range batch {
			js, err := json.Marshal(s)
			if err != nil {
				continue
			}
			ev, _ := json.Marshal(quotaEvent{Origin: c.id, Acct: id, Snap: s})
			setQuotaScript.Eval(ctx, p, []string{c.quotaKey(), c.quotaChannel()}, id, strconv.FormatInt(s.SeenAt.UnixMilli(), 10), string(js), string(ev))
		}
		return nil
	})
	return err
}

func (q *quotaSync) subscriber(ps *redis.PubSub) {
	c := q.c
	c.receive(ps, func(msg any) {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				q.resync()
			}
		case *redis.Message:
			var e quotaEvent
			if json.Unmarshal([]byte(m.Payload), &e) == nil && e.Origin != c.id && e.Acct != "" && !e.Snap.SeenAt.IsZero() {
				q.t.ApplyRemote(e.Acct, e.Snap)
			}
		}
	})
}

// resync pushes this relay's numbers (older ones lose in Redis) and merges
// Redis's back (older ones lose here).
func (q *quotaSync) resync() {
	c := q.c
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if mine := q.t.All(); len(mine) > 0 {
		if err := q.write(ctx, mine); err != nil {
			c.noteErr(err)
			return
		}
	}
	all, err := c.quotas(ctx)
	if err != nil {
		c.noteErr(err)
		return
	}
	for id, s := range all {
		q.t.ApplyRemote(id, s)
	}
}

// quotas reads every account's shared snapshot; malformed entries are skipped.
func (c *conn) quotas(ctx context.Context) (map[string]quota.Snapshot, error) {
	m, err := c.rdb.HGetAll(ctx, c.quotaKey()).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]quota.Snapshot, len(m))
	for id, v := range m {
		_, js, ok := strings.Cut(v, " ")
		var s quota.Snapshot
		if !ok || json.Unmarshal([]byte(js), &s) != nil || s.SeenAt.IsZero() {
			continue
		}
		out[id] = s
	}
	return out, nil
}

// Quotas returns every account's latest shared rate-limit numbers.
func (a *Admin) Quotas(ctx context.Context) (map[string]quota.Snapshot, error) {
	return a.quotas(ctx)
}
