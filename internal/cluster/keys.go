package cluster

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/policy"
)

// Relay-key limits shared by the relays of a cluster. Each relay checks its
// keys' limits in memory (internal/policy); this file makes the numbers they
// are checked against cluster-wide:
//
//   - Budgets: every charge is added (INCRBY, batched) to a counter per key
//     and window; a poller reads the current windows' totals about once a
//     second and raises the local counters to them (policy.ApplyShared).
//   - rpm: each admitted request of a key with an rpm limit is counted in a
//     hash per key and minute, one field per relay; the poller gives each
//     key the other relays' requests of the last minute (the current minute
//     plus the share of the previous one still inside the sliding minute,
//     rounded up).
//   - Concurrency: the poller writes this relay's in-flight and queued
//     counts of each key (a hash field per relay whose expiry is kept on
//     Redis's clock, so a relay that died stops counting within
//     inFlightTTL) and reads the other relays' counts. In-flight counts
//     take slots; queued counts are shown (the admin API), each relay
//     serving its own queue.
//
// Nothing on the request path waits on Redis: Charge and Admitted queue
// (bounded; when the queue is full the event is dropped and counted) and one
// goroutine writes and polls. While Redis is unreachable each relay enforces
// its limits alone: the other relays' load counts as zero, the spending it
// already learnt stays. What it could not write is kept (bounded) and
// written when Redis answers again, so a short outage loses no spending.
//
// Keys (P is key_prefix; <id> is the key's ID, the hex sha256 of the key and
// never the key itself; <start> is the window's start in Unix seconds):
//
//	P key:<id>:daily:<start>         micro-dollars spent in the day (also weekly:, monthly:); expires a day after the window
//	P key:<id>:daily_tokens:<start>  tokens used in the day
//	P key:<id>:rpm:<minute>          hash relay -> requests admitted in that Unix minute; expires after 3 minutes
//	P key:<id>:inflight              hash relay -> "<in flight> <expiry, ms on Redis's clock>"
//	P key:<id>:queued                hash relay -> "<queued> <expiry, ms on Redis's clock>"

const (
	// keyPollInterval is how often the cluster's totals are read: the lag
	// within which one relay's spending and load reach the others.
	keyPollInterval = time.Second
	// keyFlushInterval batches the counter writes.
	keyFlushInterval = 100 * time.Millisecond
	// keyQueueSize bounds the charges and admissions waiting to be counted.
	keyQueueSize = 8192
	// maxPendingCounters bounds the counters kept for writing (during an
	// outage): one per key and window, so it is reached only by a very
	// long outage with very many keys.
	maxPendingCounters = 50000
	// inFlightTTL is how long a relay's in-flight count stands without a
	// refresh (it refreshes every poll).
	inFlightTTL = 5 * time.Second
	// windowGrace keeps a window's counter past its end, for relays whose
	// clocks lag.
	windowGrace = 24 * time.Hour
	// minuteTTL keeps a minute's request counts while they can matter.
	minuteTTL = 3 * time.Minute
)

func (c *conn) keyWindowKey(id string, w policy.Window, start time.Time) string {
	return c.prefix + "key:" + id + ":" + w.String() + ":" + strconv.FormatInt(start.Unix(), 10)
}

func (c *conn) keyTokensKey(id string, start time.Time) string {
	return c.prefix + "key:" + id + ":daily_tokens:" + strconv.FormatInt(start.Unix(), 10)
}

func (c *conn) keyMinuteKey(id string, minute int64) string {
	return c.prefix + "key:" + id + ":rpm:" + strconv.FormatInt(minute, 10)
}

func (c *conn) keyInFlightKey(id string) string { return c.prefix + "key:" + id + ":inflight" }

func (c *conn) keyQueuedKey(id string) string { return c.prefix + "key:" + id + ":queued" }

// unixMinute is t's minute since the epoch.
func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

// loadScript publishes this relay's in-flight and queued counts and
// returns, for each key, the other relays' requests in flight and queued
// and their requests admitted in the current and the previous minute.
// Expiry is judged on Redis's clock, so relays' clocks need not agree;
// expired fields (a relay that stopped refreshing them) are removed.
//
// KEYS: per key, its in-flight hash, queued hash, current minute and
// previous minute. ARGV: relay id, ttl (ms), then per key this relay's
// in-flight and queued counts.
var loadScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, ttl = ARGV[1], tonumber(ARGV[2])
local function share(h, n)
  if n > 0 then
    redis.call('HSET', h, me, n .. ' ' .. (now + ttl))
    redis.call('PEXPIRE', h, ttl)
  else
    redis.call('HDEL', h, me)
  end
  local sum = 0
  local all = redis.call('HGETALL', h)
  for j = 1, #all, 2 do
    if all[j] ~= me then
      local v = all[j + 1]
      local sp = string.find(v, ' ', 1, true)
      local cnt = sp and tonumber(string.sub(v, 1, sp - 1))
      local exp = sp and tonumber(string.sub(v, sp + 1))
      if cnt and exp and exp > now then
        sum = sum + cnt
      else
        redis.call('HDEL', h, all[j])
      end
    end
  end
  return sum
end
local out = {}
for i = 1, #KEYS, 4 do
  local k = (i - 1) / 4
  out[#out + 1] = share(KEYS[i], tonumber(ARGV[3 + 2 * k]) or 0)
  out[#out + 1] = share(KEYS[i + 1], tonumber(ARGV[4 + 2 * k]) or 0)
  for m = 2, 3 do
    local s = 0
    local c = redis.call('HGETALL', KEYS[i + m])
    for j = 1, #c, 2 do
      if c[j] ~= me then s = s + (tonumber(c[j + 1]) or 0) end
    end
    out[#out + 1] = s
  end
end
return out
`)

// keyEvent is a charge or an admission waiting to be counted.
type keyEvent struct {
	k            *policy.Key
	at           time.Time
	cost, tokens int64
	admitted     bool
}

type pendingCounter struct {
	delta    int64
	expireAt time.Time
}

type pendingMinute struct {
	minute, n int64
}

// keySync is one relay's sharing of its key limits; it implements
// policy.Shared.
type keySync struct {
	c       *Cluster
	p       *policy.Policy
	every   time.Duration
	events  chan keyEvent
	dropped atomic.Int64

	// Owned by run.
	counters map[string]pendingCounter
	minutes  map[string]pendingMinute
	local    bool // the other relays' load is zeroed (Redis unreachable)
	reported int64
}

var _ policy.Shared = (*keySync)(nil)

// AttachKeys shares p's relay-key limits with the cluster: budgets, rpm and
// concurrency hold across the relays on this Redis, within about a second's
// lag. Call it before serving, once.
func (c *Cluster) AttachKeys(p *policy.Policy) { c.attachKeys(p, keyPollInterval) }

func (c *Cluster) attachKeys(p *policy.Policy, every time.Duration) *keySync {
	c.mu.Lock()
	if c.closed || c.keys != nil {
		c.mu.Unlock()
		return nil
	}
	ks := &keySync{c: c, p: p, every: every, events: make(chan keyEvent, keyQueueSize),
		counters: map[string]pendingCounter{}, minutes: map[string]pendingMinute{}}
	c.keys = ks
	c.mu.Unlock()
	p.SetShared(ks)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); ks.run() }()
	return ks
}

// Charge queues a request's cost and tokens for the cluster's counters.
func (ks *keySync) Charge(k *policy.Key, at time.Time, costMicros, tokens int64) {
	ks.queue(keyEvent{k: k, at: at, cost: costMicros, tokens: tokens})
}

// Admitted queues one admitted request for the cluster's rpm counts.
func (ks *keySync) Admitted(k *policy.Key, at time.Time) {
	ks.queue(keyEvent{k: k, at: at, admitted: true})
}

func (ks *keySync) queue(e keyEvent) {
	select {
	case ks.events <- e:
	default:
		ks.dropped.Add(1)
	}
}

func (ks *keySync) run() {
	c := ks.c
	flush := time.NewTicker(keyFlushInterval)
	defer flush.Stop()
	poll := time.NewTicker(ks.every)
	defer poll.Stop()
	ks.timed(ks.poll)
	for {
		select {
		case <-c.ctx.Done():
			ks.final()
			return
		case e := <-ks.events:
			ks.add(e)
			ks.drain()
		case <-flush.C:
			ks.timed(ks.flush)
		case <-poll.C:
			ks.drain()
			ks.timed(ks.flush)
			ks.timed(ks.poll)
			ks.reportDrops()
		}
	}
}

func (ks *keySync) timed(f func(context.Context)) {
	ctx, cancel := context.WithTimeout(ks.c.ctx, 2*dialTimeout)
	defer cancel()
	f(ctx)
}

// drain counts what is queued, a bounded number at a time.
func (ks *keySync) drain() {
	for range keyQueueSize {
		select {
		case e := <-ks.events:
			ks.add(e)
		default:
			return
		}
	}
}

// add folds one event into the counters waiting to be written.
func (ks *keySync) add(e keyEvent) {
	c := ks.c
	if e.admitted {
		m := unixMinute(e.at)
		name := c.keyMinuteKey(e.k.ID, m)
		pm, ok := ks.minutes[name]
		if !ok && ks.full() {
			ks.dropped.Add(1)
			return
		}
		ks.minutes[name] = pendingMinute{minute: m, n: pm.n + 1}
		return
	}
	for w := policy.Day; w <= policy.Month; w++ {
		start, end := ks.p.WindowStart(e.k, w, e.at)
		if e.cost > 0 {
			ks.count(c.keyWindowKey(e.k.ID, w, start), e.cost, end)
		}
		if w == policy.Day && e.tokens > 0 {
			ks.count(c.keyTokensKey(e.k.ID, start), e.tokens, end)
		}
	}
}

func (ks *keySync) count(name string, delta int64, end time.Time) {
	pc, ok := ks.counters[name]
	if !ok && ks.full() {
		ks.dropped.Add(1)
		return
	}
	ks.counters[name] = pendingCounter{delta: pc.delta + delta, expireAt: end.Add(windowGrace)}
}

func (ks *keySync) full() bool { return len(ks.counters)+len(ks.minutes) >= maxPendingCounters }

// flush writes the pending counters in one transaction; on a failure they
// are kept for the next try (Redis refusing the commands drops them).
func (ks *keySync) flush(ctx context.Context) {
	c := ks.c
	oldest := unixMinute(time.Now()) - 1
	for name, m := range ks.minutes {
		if m.minute < oldest { // outside every sliding minute now: worthless
			delete(ks.minutes, name)
		}
	}
	if (len(ks.counters) == 0 && len(ks.minutes) == 0) || c.Degraded() {
		return
	}
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for name, pc := range ks.counters {
			p.IncrBy(ctx, name, pc.delta)
			p.ExpireAt(ctx, name, pc.expireAt)
		}
		for name, pm := range ks.minutes {
			p.HIncrBy(ctx, name, c.id, pm.n)
			p.Expire(ctx, name, minuteTTL)
		}
		return nil
	})
	if err != nil {
		c.noteErr(err)
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			return // unreachable: nothing was applied; keep them for when Redis answers
		}
		// Redis answered: a command it refused inside the transaction does
		// not undo the others, so writing them again would count them twice.
		ks.dropped.Add(int64(len(ks.counters) + len(ks.minutes)))
	}
	clear(ks.counters)
	clear(ks.minutes)
}

// budgetRead is one window counter read back from Redis.
type budgetRead struct {
	k        *policy.Key
	w        policy.Window
	start    time.Time
	usd, tok int // indexes of the values; tok -1 when none
}

// poll publishes this relay's in-flight counts, reads the cluster's totals
// and hands them to the policy.
func (ks *keySync) poll(ctx context.Context) {
	c, p := ks.c, ks.p
	load := p.LoadKeys()
	if c.Degraded() {
		ks.goLocal(load)
		return
	}
	now := time.Now()
	var reads []budgetRead
	var names []string
	for _, k := range p.Keys() {
		for w := policy.Day; w <= policy.Month; w++ {
			start, _ := p.WindowStart(k, w, now)
			r := budgetRead{k: k, w: w, start: start, usd: len(names), tok: -1}
			names = append(names, c.keyWindowKey(k.ID, w, start))
			if w == policy.Day {
				r.tok = len(names)
				names = append(names, c.keyTokensKey(k.ID, start))
			}
			reads = append(reads, r)
		}
	}
	minute := unixMinute(now)
	keys := make([]string, 0, 4*len(load))
	args := make([]any, 0, 2+2*len(load))
	args = append(args, c.id, inFlightTTL.Milliseconds())
	for _, k := range load {
		keys = append(keys, c.keyInFlightKey(k.ID), c.keyQueuedKey(k.ID), c.keyMinuteKey(k.ID, minute), c.keyMinuteKey(k.ID, minute-1))
		args = append(args, p.LocalInFlight(k), p.LocalQueued(k))
	}
	if len(names) == 0 && len(keys) == 0 {
		ks.goLive()
		return
	}
	var mget *redis.SliceCmd
	var loads *redis.Cmd
	_, err := c.rdb.Pipelined(ctx, func(pp redis.Pipeliner) error {
		if len(names) > 0 {
			mget = pp.MGet(ctx, names...)
		}
		if len(keys) > 0 {
			loads = loadScript.Eval(ctx, pp, keys, args...)
		}
		return nil
	})
	if err != nil {
		c.noteErr(err)
		ks.goLocal(load)
		return
	}
	if mget != nil {
		vals := mget.Val()
		for _, r := range reads {
			var tok int64
			if r.tok >= 0 {
				tok = counterValue(vals[r.tok])
			}
			p.ApplyShared(r.k, r.w, r.start, counterValue(vals[r.usd]), tok)
		}
	}
	if loads != nil && !ks.applyLoads(loads, load, now) {
		ks.goLocal(load)
		return
	}
	ks.goLive()
}

// applyLoads hands each key of load the other relays' numbers that
// loadScript returned; false when the answer is not what it returns.
func (ks *keySync) applyLoads(loads *redis.Cmd, load []*policy.Key, now time.Time) bool {
	res, err := loads.Int64Slice()
	if err != nil || len(res) != 4*len(load) {
		return false
	}
	// The sliding minute holds the current minute and the part of the
	// previous one not yet past.
	minute := unixMinute(now)
	left := 1 - float64(now.UnixMilli()-minute*60_000)/60_000
	for i, k := range load {
		inFlight, queued, cur, prev := res[4*i], res[4*i+1], res[4*i+2], res[4*i+3]
		recent := cur + int64(math.Ceil(float64(prev)*left))
		ks.p.ApplyClusterLoad(k, int(recent), int(inFlight))
		ks.p.ApplyClusterQueued(k, int(queued))
	}
	return true
}

// goLive records that the other relays' numbers are current.
func (ks *keySync) goLive() {
	ks.local = false
	ks.p.SetClusterLive(true)
}

// counterValue reads an MGET value: a missing counter is 0.
func counterValue(v any) int64 {
	s, ok := v.(string)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// goLocal makes every key's limits local: the other relays' load is
// unknown while Redis is unreachable, so it counts as none.
func (ks *keySync) goLocal(load []*policy.Key) {
	if ks.local {
		return
	}
	ks.local = true
	ks.p.SetClusterLive(false)
	for _, k := range load {
		ks.p.ApplyClusterLoad(k, 0, 0)
		ks.p.ApplyClusterQueued(k, 0)
	}
}

// reportDrops logs, at most once a poll, how many events the queue dropped.
func (ks *keySync) reportDrops() {
	if d := ks.dropped.Load(); d > ks.reported {
		ks.c.log.Warn("cluster key counters dropped: the queue to Redis was full; the cluster's totals miss them (this relay's own limits do not)", "dropped", d-ks.reported)
		ks.reported = d
	}
}

// final writes what is pending and withdraws this relay's in-flight counts
// (briefly; not while Redis is unreachable).
func (ks *keySync) final() {
	ks.drain()
	if ks.c.Degraded() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	ks.flush(ctx)
	c := ks.c
	load := ks.p.LoadKeys()
	if len(load) == 0 {
		return
	}
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range load {
			p.HDel(ctx, c.keyInFlightKey(k.ID), c.id)
			p.HDel(ctx, c.keyQueuedKey(k.ID), c.id)
		}
		return nil
	})
}

// Dropped returns how many charges and admissions were not counted in the
// cluster's totals (a full queue, or Redis refusing the write).
func (ks *keySync) Dropped() int64 { return ks.dropped.Load() }
