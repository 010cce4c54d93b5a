package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/store"
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
//	                          the grouping (k key, a account, m model, p platform)
//	P u:seq:<relay>           the last chunk this relay process merged (its
//	                          chunks go in order): a chunk retried after a
//	                          lost reply is merged once
//
// One hash per bucket and grouping keeps each `stats --by X` exact and a
// read small: a window reads one hash per day or hour of the one grouping
// it asks for. Ungrouped totals sum the platform hashes. Minute buckets hold
// the platform grouping only (the dashboard's last hour and day).
//
// The sums, in order: requests, errors (status 400 and up, or none), input,
// output, cache-write and cache-read tokens, known cost (micro-USD),
// requests of unknown cost, successes (2xx, 3xx), their latency and
// time-to-first-byte sums (ms). A key's group is "<hash> <name>" (the hash
// holds no space). One field per group, not one per sum: a read of a month
// by key fetches 11 times fewer fields. The merge script adds in Lua, whose
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
	// account, model, platform) tuples: an outage of hours at a steady mix
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
}

// usageSums are the sums of one tuple or group, in the order above.
type usageSums [numMeasures]int64

const numMeasures = 11

// encode is the sums as a hash value.
func (s *usageSums) encode() string {
	b := make([]byte, 0, 64)
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return string(b)
}

// decode reads a hash value; ok is false when it is malformed. Values with
// more sums (a later relay's) keep the first numMeasures.
func decodeSums(v string) (s usageSums, ok bool) {
	for i := 0; i < numMeasures; i++ {
		part, rest, _ := strings.Cut(v, ",")
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return s, false
		}
		s[i], v = n, rest
	}
	return s, true
}

func (s *usageSums) addSums(o *usageSums) {
	for i := range s {
		s[i] += o[i]
	}
}

func (s *usageSums) add(r usage.Record) {
	s[0]++
	if r.Status >= 400 || r.Status == 0 {
		s[1]++
	}
	s[2] += r.InputTokens
	s[3] += r.OutputTokens
	s[4] += r.CacheCreationTokens
	s[5] += r.CacheReadTokens
	if r.CostKnown {
		s[6] += r.CostMicros
	} else {
		s[7]++
	}
	if r.Status >= 200 && r.Status <= 399 {
		s[8]++
		s[9] += r.Latency.Milliseconds()
		s[10] += r.TTFB.Milliseconds()
	}
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
	go func() { defer c.wg.Done(); u.loop() }()
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

func (u *UsageShare) loop() {
	c := u.c
	var retry <-chan time.Time
	for {
		select {
		case <-c.ctx.Done():
			u.final()
			return
		case <-u.wake:
		case <-retry:
		}
		retry = nil
		// Let a burst gather into one merge.
		select {
		case <-c.ctx.Done():
			u.final()
			return
		case <-time.After(usageFlushEvery):
		}
		u.take()
		if len(u.pending) == 0 && len(u.chunks) == 0 {
			continue
		}
		if c.Degraded() {
			// Keep summing; try again once the health loop sees Redis.
			retry = time.After(healthInterval)
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 2*dialTimeout)
		err := u.flush(ctx)
		cancel()
		if err != nil {
			c.noteErr(err)
			retry = time.After(healthInterval)
		}
	}
}

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
			account: r.AccountID, model: r.Model, platform: r.Platform,
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
		s.add(r)
	}
	u.mu.Lock()
	u.dropped += dropped
	u.mu.Unlock()
	if dropped > 0 && !u.warnedFull {
		u.warnedFull = true
		u.c.log.Warn("cluster usage buffer full while redis is unreachable; these records stay in this relay's database only", "dropped", dropped)
	}
}

// seal sums the pending tuples into the increments of each Redis hash
// (the tuples of one hour add up in its hour hashes, of one day in its day
// hashes) and cuts those into chunks of at most usageChunkFields increments,
// each with its marker id. A chunk never changes once sealed, so a retry
// merges exactly what its first try did.
func (u *UsageShare) seal() {
	if len(u.pending) == 0 {
		return
	}
	c := u.c
	type field struct{ key, group string }
	sums := map[field]*usageSums{}
	expiry := map[string]int64{}
	var keys []string
	var records int64
	byKey := map[string][]fieldInc{}
	for k, s := range u.pending {
		records += s[0]
		for _, gr := range usageGrans {
			bucket := k.minute - k.minute%gr.size
			for i := 0; i < len(gr.dims); i++ {
				key := c.usageKey(gr.g, gr.dims[i], bucket)
				if _, ok := expiry[key]; !ok {
					expiry[key] = (bucket+gr.size)/1000 + int64(gr.ttl/time.Second)
					keys = append(keys, key)
				}
				f := field{key, k.group(gr.dims[i])}
				t := sums[f]
				if t == nil {
					t = new(usageSums)
					sums[f] = t
					byKey[key] = append(byKey[key], fieldInc{f.group, t})
				}
				t.addSums(s)
			}
		}
	}
	var cur *usageChunk
	n := 0
	for _, key := range keys {
		fs := byKey[key]
		for len(fs) > 0 {
			if cur == nil || n >= usageChunkFields {
				u.seq++
				u.chunks = append(u.chunks, usageChunk{seq: u.seq})
				cur, n = &u.chunks[len(u.chunks)-1], 0
			}
			take := min(len(fs), usageChunkFields-n)
			cur.hashes = append(cur.hashes, hashInc{key: key, at: expiry[key], fields: fs[:take]})
			fs, n = fs[take:], n+take
		}
	}
	// The records count as merged with the last chunk.
	if cur != nil {
		cur.records = records
	}
	u.sealed += len(u.pending)
	u.pending = map[usageTuple]*usageSums{}
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

// mergeUsageScript applies one chunk unless this relay merged it (or a
// later one) already.
//
// KEYS: the relay's sequence key, then the hashes. ARGV: the chunk's
// sequence number, the sequence key's TTL (s), then per hash: its expiry
// (Unix s), its number of groups n, and n group/sums pairs (the sums
// comma-separated, added to the group's).
var mergeUsageScript = redis.NewScript(`
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local a = 3
for i = 2, #KEYS do
  local at = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for j = 1, n do
    local f, v = ARGV[a], ARGV[a + 1]
    a = a + 2
    local cur = redis.call('HGET', KEYS[i], f)
    if cur then
      local add = {}
      for x in string.gmatch(v, '[^,]+') do add[#add + 1] = tonumber(x) end
      local out = {}
      for x in string.gmatch(cur, '[^,]+') do
        local k = #out + 1
        out[k] = string.format('%.0f', tonumber(x) + (add[k] or 0))
      end
      for k = #out + 1, #add do out[k] = string.format('%.0f', add[k]) end
      v = table.concat(out, ',')
    end
    redis.call('HSET', KEYS[i], f, v)
  end
  redis.call('EXPIREAT', KEYS[i], at)
end
return 1
`)

// usageKey is the hash of one granularity, grouping and bucket.
func (c *conn) usageKey(gran, dim byte, bucket int64) string {
	return c.prefix + "u:" + string(gran) + ":" + string(dim) + ":" + strconv.FormatInt(bucket, 10)
}

func (c *conn) usageSeqKey() string { return c.prefix + "u:seq:" + c.id }

// usageGrans are the granularities merged: their letter, bucket size, the
// groupings they hold and how long they are kept.
var usageGrans = []struct {
	g    byte
	size int64
	dims string
	ttl  time.Duration
}{
	{'m', minuteMs, "p", minuteBucketTTL},
	{'h', hourMs, "kamp", hourBucketTTL},
	{'d', dayMs, "kamp", dayBucketTTL},
}

// group is a tuple's group value in grouping dim.
func (k usageTuple) group(dim byte) string {
	switch dim {
	case 'k':
		return k.keyHash + " " + k.keyName
	case 'a':
		return k.account
	case 'm':
		return k.model
	}
	return k.platform
}

// write merges one chunk atomically (once, whatever the retries).
func (u *UsageShare) write(ctx context.Context, ch usageChunk) error {
	c := u.c
	keys := make([]string, 0, len(ch.hashes)+1)
	keys = append(keys, c.usageSeqKey())
	args := []any{ch.seq, int64(usageSeqTTL / time.Second)}
	for _, h := range ch.hashes {
		keys = append(keys, h.key)
		args = append(args, h.at, len(h.fields))
		for _, f := range h.fields {
			args = append(args, f.group, f.sums.encode())
		}
	}
	return mergeUsageScript.Run(ctx, c.rdb, keys, args...).Err()
}

// --- reading ---

// ErrUsageNotCovered says the cluster's buckets cannot answer a question
// (a series step they do not hold, or a window older than they are kept);
// the relay's own database answers it instead.
var ErrUsageNotCovered = errors.New("not covered by the cluster's usage buckets")

// usageDim is the Redis grouping each store grouping reads.
var usageDim = map[string]byte{
	store.GroupNone: 'p', store.GroupKey: 'k', store.GroupAccount: 'a', store.GroupModel: 'm', store.GroupPlatform: 'p',
}

// span is a run of buckets of one granularity.
type span struct {
	gran     byte
	size     int64
	from, to int64 // ms, [from, to), multiples of size
}

// plan splits [from, to) (hour-aligned) into hours at the edges and whole
// days between, reading days only when useDays.
func plan(from, to int64, useDays bool) []span {
	if !useDays {
		return []span{{'h', hourMs, from, to}}
	}
	dFrom := from + (dayMs-from%dayMs)%dayMs
	dTo := to - to%dayMs
	if dFrom >= dTo {
		return []span{{'h', hourMs, from, to}}
	}
	var out []span
	if from < dFrom {
		out = append(out, span{'h', hourMs, from, dFrom})
	}
	out = append(out, span{'d', dayMs, dFrom, dTo})
	if dTo < to {
		out = append(out, span{'h', hourMs, dTo, to})
	}
	return out
}

// readable says why the cluster's numbers cannot be read now, or nil.
func (u *UsageShare) readable() error {
	c := u.c
	c.mu.Lock()
	down, since := c.degraded, c.downSince
	c.mu.Unlock()
	if down {
		return fmt.Errorf("the cluster's redis is unreachable since %s", since.UTC().Format(time.RFC3339))
	}
	return nil
}

// fetch reads the hashes of grouping dim for each bucket of spans and
// passes every group's sums to add with its bucket start.
func (u *UsageShare) fetch(ctx context.Context, dim byte, spans []span, add func(bucket int64, group string, s *usageSums)) error {
	c := u.c
	type req struct {
		bucket int64
		cmd    *redis.MapStringStringCmd
	}
	var reqs []req
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range spans {
			for b := s.from; b < s.to; b += s.size {
				reqs = append(reqs, req{b, p.HGetAll(ctx, c.usageKey(s.gran, dim, b))})
			}
		}
		return nil
	})
	if err != nil {
		c.noteErr(err)
		return fmt.Errorf("read the cluster's usage: %s", errReason(err))
	}
	for _, r := range reqs {
		for group, v := range r.cmd.Val() {
			if s, ok := decodeSums(v); ok {
				add(r.bucket, group, &s)
			}
		}
	}
	return nil
}

// addTo adds sums to a usage row.
func (s *usageSums) addTo(r *store.UsageRow) {
	r.Requests += s[0]
	r.Errors += s[1]
	r.InputTokens += s[2]
	r.OutputTokens += s[3]
	r.CacheCreationTokens += s[4]
	r.CacheReadTokens += s[5]
	r.CostMicros += s[6]
	r.CostUnknown += s[7]
	r.Successes += s[8]
	r.LatencyMsSum += s[9]
	r.TTFBMsSum += s[10]
}

// splitGroup turns a field's group into the two group values GroupUsage
// takes (key name and hash for keys; the value for the others).
func splitGroup(dim byte, by, group string) (g1, g2 string) {
	switch {
	case by == store.GroupNone:
		return "", ""
	case dim == 'k':
		hash, name, _ := strings.Cut(group, " ")
		return name, hash
	}
	return group, ""
}

// usageStart is where the cluster's numbers for a window from since begin:
// since rounded down to the hour while hour buckets are kept for it, else to
// the UTC day; "all" (zero) is as far back as day buckets are kept.
func usageStart(since, now time.Time) (from int64, useDays bool) {
	n := now.UnixMilli()
	oldest := n - n%dayMs - int64(dayBucketTTL/time.Millisecond) + dayMs
	if since.IsZero() {
		return oldest, true
	}
	s := since.UnixMilli()
	if s < oldest {
		s = oldest
	}
	// Hour buckets expire hourBucketTTL after their end; a day's margin.
	if n-s < int64(hourBucketTTL/time.Millisecond)-dayMs {
		return s - s%hourMs, true
	}
	return s - s%dayMs, true
}

// Usage sums the cluster's usage since since (zero: everything kept), by
// grouping by, up to now (the current hour included: it is merged live).
// start is where the sums begin: since rounded down to the hour (to the UTC
// day for a window reaching back more than ~34 days). An error means Redis
// cannot answer now; the relay's own numbers are the fallback.
func (u *UsageShare) Usage(ctx context.Context, since time.Time, by string) (rows []store.UsageRow, start time.Time, err error) {
	dim, ok := usageDim[by]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("unknown usage grouping %q", by)
	}
	if err := u.readable(); err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	from, useDays := usageStart(since, now)
	n := now.UnixMilli()
	to := n - n%hourMs + hourMs
	parts := map[string]*store.UsageRow{}
	err = u.fetch(ctx, dim, plan(from, to, useDays), func(_ int64, group string, s *usageSums) {
		r := parts[group]
		if r == nil {
			g1, g2 := splitGroup(dim, by, group)
			r = &store.UsageRow{KeyName: g1, KeyHash: g2}
			parts[group] = r
		}
		s.addTo(r)
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	list := make([]store.UsageRow, 0, len(parts))
	for _, r := range parts {
		list = append(list, *r)
	}
	return store.GroupUsage(by, list), time.UnixMilli(from), nil
}

// UsageSeries sums the cluster's usage since since into buckets of step
// (aligned to the Unix epoch) by grouping by, up to now. Steps of whole
// hours read hour buckets (day buckets for whole-day steps), kept about 34
// and 400 days; steps of whole minutes under an hour read minute buckets
// (kept 2 days), ungrouped or by platform only. Anything else is
// ErrUsageNotCovered. start is since rounded down to the granularity read.
func (u *UsageShare) UsageSeries(ctx context.Context, since time.Time, step time.Duration, by string) (pts []store.SeriesPoint, start time.Time, err error) {
	dim, ok := usageDim[by]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("unknown usage grouping %q", by)
	}
	stepMs := step.Milliseconds()
	now := time.Now()
	n, s := now.UnixMilli(), since.UnixMilli()
	var spans []span
	switch {
	case since.IsZero() || stepMs <= 0:
		return nil, time.Time{}, ErrUsageNotCovered
	case stepMs%hourMs == 0:
		from := s - s%hourMs
		useDays := stepMs%dayMs == 0
		if n-from >= int64(hourBucketTTL/time.Millisecond)-dayMs {
			if !useDays || n-from >= int64(dayBucketTTL/time.Millisecond)-dayMs {
				return nil, time.Time{}, ErrUsageNotCovered
			}
			from = s - s%dayMs
		}
		spans = plan(from, n-n%hourMs+hourMs, useDays)
	case stepMs%minuteMs == 0 && stepMs < hourMs && (by == store.GroupNone || by == store.GroupPlatform):
		from := s - s%minuteMs
		if n-from >= int64(minuteBucketTTL/time.Millisecond)-hourMs {
			return nil, time.Time{}, ErrUsageNotCovered
		}
		spans = []span{{'m', minuteMs, from, n - n%minuteMs + minuteMs}}
	default:
		return nil, time.Time{}, ErrUsageNotCovered
	}
	if err := u.readable(); err != nil {
		return nil, time.Time{}, err
	}
	type id struct {
		bucket int64
		group  string
	}
	parts := map[id]*store.SeriesPart{}
	err = u.fetch(ctx, dim, spans, func(b int64, group string, s *usageSums) {
		k := id{b - b%stepMs, group}
		p := parts[k]
		if p == nil {
			g1, g2 := splitGroup(dim, by, group)
			p = &store.SeriesPart{Start: k.bucket}
			p.KeyName, p.KeyHash = g1, g2
			parts[k] = p
		}
		s.addTo(&p.UsageRow)
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	list := make([]store.SeriesPart, 0, len(parts))
	for _, p := range parts {
		list = append(list, *p)
	}
	return store.GroupSeries(by, list), time.UnixMilli(spans[0].from), nil
}
