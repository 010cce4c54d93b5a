package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// Usage rollups shared through Redis (issue 21): every relay merges the
// requests it records into small counters per time bucket, so any relay
// can answer the usage of the whole cluster; each relay's SQLite keeps its
// own raw rows and rollups as before.
//
// Keys (P is key_prefix):
//
//	P u:<g>:<d>:<bucket ms>   hash group -> its 11 sums, comma-separated; g is
//	                          the granularity (m minute, h hour, d UTC day), d
//	                          the grouping (k key, a account, m model asked,
//	                          s model served, p platform)
//	P u:seq:<relay>           the last chunk this relay process merged (its
//	                          chunks go in order): a chunk retried after a
//	                          lost reply is merged once
//
// One hash per bucket and grouping keeps each `stats --by X` exact and a
// read small: a window reads one hash per day or hour of the one grouping
// it asks for. Ungrouped totals sum the platform hashes. Minute buckets hold
// the platform grouping only (the dashboard's last hour and day).
//
// The sums are store.Measures, in order (requests, errors, input, output,
// cache-write and cache-read tokens, known cost in micro-USD, requests of
// unknown cost, successes, their latency and time-to-first-byte sums in
// ms); usagesums.go encodes them. A key's group is "<hash> <name>" (the hash
// holds no space). One field per group, not one per sum: a read of a month
// by key fetches store.NumMeasures times fewer fields. The merge script adds in Lua, whose
// numbers are exact integers up to 2^53 (9e15 tokens, or $9e9, per bucket).

// Retention of the usage buckets: each expires this long after its end.
const (
	minuteBucketTTL = 2 * 24 * time.Hour
	hourBucketTTL   = 35 * 24 * time.Hour
	dayBucketTTL    = 400 * 24 * time.Hour
	// usageSeqTTL is how long a relay's chunk sequence outlives its last
	// merge: a retry later than this (a relay cut off from Redis that long
	// right after a merge whose reply it lost) could merge twice.
	usageSeqTTL = 7 * 24 * time.Hour
)

const (
	// usageFlushEvery is how long records gather before a merge: the
	// cluster's numbers lag the requests by about this much.
	usageFlushEvery = 250 * time.Millisecond
	// maxUsageQueue bounds the records waiting for the merger goroutine.
	maxUsageQueue = 65536
	// maxUsageTuples bounds what waits for Redis, in distinct (minute, key,
	// account, model asked and served, platform) tuples: an outage of hours at a steady mix
	// holds a few thousand. Beyond it new records are not merged (counted
	// as dropped; each relay's own database still has them).
	maxUsageTuples = 200_000
	// usageChunkFields bounds one atomic merge (one script run, a
	// millisecond or two of Redis's time), in groups.
	usageChunkFields = 512
)

// Bucket sizes in milliseconds.
const (
	minuteMs = int64(time.Minute / time.Millisecond)
	hourMs   = int64(time.Hour / time.Millisecond)
	dayMs    = 24 * hourMs
)

// usageTuple is what one bucket of merged usage is summed by.
type usageTuple struct {
	minute                   int64 // bucket start, ms
	keyHash, keyName         string
	account, model, platform string
	// served is the model that served (usage.Record.Served).
	served string
}

// usageChunk is one atomic merge: its place in this relay's sequence, the
// hashes it increments and how many records it completes (counted when it
// is merged).
type usageChunk struct {
	seq     int64
	hashes  []hashInc
	records int64
}

// hashInc is the increments of one Redis hash.
type hashInc struct {
	key    string
	at     int64 // expiry, Unix seconds
	fields []fieldInc
}

type fieldInc struct {
	group string
	sums  *usageSums
}

// UsageShare merges this relay's usage into the cluster's Redis and reads
// the cluster's usage back. Record never blocks: records are queued, summed
// per tuple by one goroutine and merged every usageFlushEvery; while Redis
// is unreachable the sums wait (bounded by maxUsageTuples) and are merged
// when it answers again.
type UsageShare struct {
	c    *Cluster
	wake chan struct{}

	mu      sync.Mutex
	queue   []usage.Record
	dropped int64 // records never merged (queue or tuple bound)

	// The merger goroutine's own state.
	pending map[usageTuple]*usageSums
	chunks  []usageChunk // sealed, not yet merged, in order
	// sealed is how many tuples the chunks were cut from (0 once merged).
	sealed int
	seq    int64
	// warnedFull: the full buffer was logged (once until a merge succeeds).
	warnedFull bool
	// maxTuples is maxUsageTuples (smaller in tests).
	maxTuples int

	merged int64 // records merged (under mu)
}

// ShareUsage starts merging this relay's usage into Redis. Feed it every
// usage record (Record); read the cluster's numbers with Usage and
// UsageSeries. Closing the cluster merges what is queued (briefly).
func (c *Cluster) ShareUsage() *UsageShare {
	u := &UsageShare{c: c, wake: make(chan struct{}, 1), pending: map[usageTuple]*usageSums{}, maxTuples: maxUsageTuples}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.ship(u.wake, u) }()
	return u
}

// Record queues one usage record for the cluster; it never waits on Redis.
func (u *UsageShare) Record(r usage.Record) {
	u.mu.Lock()
	if len(u.queue) >= maxUsageQueue {
		u.dropped++
		u.mu.Unlock()
		return
	}
	u.queue = append(u.queue, r)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Dropped is the number of records that were never merged into Redis
// because the outage buffer was full.
func (u *UsageShare) Dropped() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dropped
}

// Merged is the number of records merged into Redis so far.
func (u *UsageShare) Merged() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.merged
}

// waiting reports whether sums wait to be merged (shipper).
func (u *UsageShare) waiting() bool { return len(u.pending) > 0 || len(u.chunks) > 0 }

// take moves the queued records into the pending sums.
func (u *UsageShare) take() {
	u.mu.Lock()
	q := u.queue
	u.queue = nil
	u.mu.Unlock()
	var dropped int64
	for _, r := range q {
		k := usageTuple{
			minute: r.Time.UnixMilli() - r.Time.UnixMilli()%minuteMs, keyHash: r.KeyHash, keyName: r.KeyName,
			account: r.AccountID, model: r.Model, platform: r.Platform, served: r.Served(),
		}
		if k.keyHash == "" {
			k.keyHash = usage.Anonymous
		}
		s := u.pending[k]
		if s == nil {
			if len(u.pending)+u.sealed >= u.maxTuples {
				dropped++
				continue
			}
			s = new(usageSums)
			u.pending[k] = s
		}
		s.add(&r)
	}
	u.mu.Lock()
	u.dropped += dropped
	u.mu.Unlock()
	if dropped > 0 && !u.warnedFull {
		u.warnedFull = true
		u.c.log.Warn("cluster usage buffer full while redis is unreachable; these records stay in this relay's database only", "dropped", dropped)
	}
}

// flush merges every sealed chunk, then seals and merges the pending sums;
// it stops at the first failure (the rest waits for the next try).
func (u *UsageShare) flush(ctx context.Context) error {
	for round := 0; round < 2; round++ {
		for len(u.chunks) > 0 {
			ch := u.chunks[0]
			err := u.write(ctx, ch)
			var rerr redis.Error
			if err != nil && errors.As(err, &rerr) && (strings.HasPrefix(rerr.Error(), "ERR") || strings.HasPrefix(rerr.Error(), "WRONGTYPE")) {
				// Redis refused the merge itself (not an outage): retrying
				// cannot help, so the chunk is dropped rather than block
				// every later one.
				u.c.log.Error("redis refused a usage merge; these numbers stay in this relay's database only", "err", rerr.Error())
				u.mu.Lock()
				u.dropped += ch.records
				u.mu.Unlock()
				u.chunks = u.chunks[1:]
				continue
			}
			if err != nil {
				return err
			}
			u.chunks = u.chunks[1:]
			u.mu.Lock()
			u.merged += ch.records
			u.mu.Unlock()
		}
		u.chunks, u.sealed, u.warnedFull = nil, 0, false
		u.seal()
	}
	return nil
}

func (u *UsageShare) final() {
	u.take()
	if u.c.Degraded() || (len(u.pending) == 0 && len(u.chunks) == 0) {
		if n := u.sealed + len(u.pending); n > 0 {
			u.c.log.Warn("cluster usage not merged before shutdown (redis unreachable); this relay's database keeps it", "tuples", n)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := u.flush(ctx); err != nil {
		u.c.log.Warn("cluster usage not merged before shutdown; this relay's database keeps it", "err", errReason(err))
	}
}
