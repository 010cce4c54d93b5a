package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// The request log of the cluster (issue 34): every relay keeps its own
// request log rows in its SQLite and also appends each row's metadata (no
// bodies: captured bodies stay on the relay that took them) to one Redis
// stream, so the admin API of any relay lists the whole cluster's requests.
//
// Keys (P is key_prefix):
//
//	P rl                   stream of rows, oldest first; each entry holds
//	                       r (the relay that served it), t (arrival, ms),
//	                       k (key label), a (every account it tried, the
//	                       served one included, newline-separated), m
//	                       (model asked), s (model served, "" = as asked),
//	                       st (final status) and j (the store.RequestRow
//	                       JSON); filters read the small fields, only
//	                       matches decode j
//	P rl:id:<request id>   the row's stream entry id, expiring with the log
//	                       (or sooner when the cap, not the age, trims it)
//	P rl:seq:<relay>       the last chunk this relay process appended: a
//	                       chunk retried after a lost reply is appended once
//
// The stream is capped at about requestStreamMax entries (XADD MAXLEN ~)
// and trimmed to request_log_days (XTRIM MINID ~) on every append. Entry
// ids are Redis's clock at the append, so the stream is in the order rows
// were recorded (a request's end), not its arrival; reads filter on the
// arrival time.

const (
	// requestStreamMax bounds the stream: at about 0.7 KB an entry, some
	// 70 MB of Redis memory. A relay's own request_log_max_rows lowers it.
	requestStreamMax = 100_000
	// maxRequestQueue bounds the rows waiting for Redis (records queued
	// plus rows converted but not appended, e.g. during an outage); beyond
	// it rows are dropped from the shared index (the relay's database
	// keeps them).
	maxRequestQueue = 32_768
	// requestChunk is how many rows one script run appends.
	requestChunk = 256
)

// RequestShare appends this relay's request log rows to the cluster's
// stream and reads the cluster's rows back. Record never blocks: records are
// queued, converted by one goroutine and appended every usageFlushEvery;
// while Redis is unreachable rows wait (bounded by maxRequestQueue) and are
// appended when it answers again.
type RequestShare struct {
	c    *Cluster
	wake chan struct{}
	// retention and maxLen are request_log_days and the stream's cap.
	retention atomic.Int64 // nanoseconds
	maxLen    atomic.Int64

	mu      sync.Mutex
	queue   []queuedRecord
	dropped int64
	written int64

	// The writer goroutine's own state: rows converted, not yet appended,
	// oldest first, and the sequence of the chunks it appended.
	pending []store.RequestRow
	seq     int64
	// maxQueue is maxRequestQueue (smaller in tests).
	maxQueue int
}

// queuedRecord is a usage record without its bodies (they never leave the
// relay) and whether it had any.
type queuedRecord struct {
	rec      usage.Record
	captured bool
}

// ShareRequests starts appending this relay's request log rows to the
// cluster's stream. Feed it every usage record (Record); read the cluster's
// rows with Requests and Request. Closing the cluster appends what is
// queued (briefly).
func (c *Cluster) ShareRequests() *RequestShare {
	s := &RequestShare{c: c, wake: make(chan struct{}, 1), maxQueue: maxRequestQueue}
	s.retention.Store(int64(store.DefaultRequestLogRetention))
	s.maxLen.Store(requestStreamMax)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.ship(s.wake, s) }()
	return s
}

// SetLimits sets how long rows stay in the stream (request_log_days) and
// caps it at maxRows when that is under requestStreamMax; values <= 0 are
// ignored.
func (s *RequestShare) SetLimits(retention time.Duration, maxRows int) {
	if retention > 0 {
		s.retention.Store(int64(retention))
	}
	if maxRows > 0 {
		s.maxLen.Store(int64(min(maxRows, requestStreamMax)))
	}
}

// Relay is this relay's id in the cluster (the rows' "relay").
func (s *RequestShare) Relay() string { return s.c.id }

// Record queues r's request log row for the cluster; it never waits on
// Redis. The bodies stay here: only whether there were any is kept.
func (s *RequestShare) Record(r usage.Record) {
	q := queuedRecord{captured: r.Bodies != nil}
	r.Bodies = nil
	q.rec = r
	s.mu.Lock()
	if len(s.queue) >= s.maxQueue {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, q)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Dropped is the number of rows never appended to the cluster's stream
// (queue full, or refused by Redis); the relay's database keeps them.
func (s *RequestShare) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Written is the number of rows appended to the stream so far.
func (s *RequestShare) Written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// waiting reports whether rows wait to be appended (shipper).
func (s *RequestShare) waiting() bool { return len(s.pending) > 0 }

// take converts the queued records into pending rows (bodies already gone),
// dropping the newest beyond maxQueue rows waiting.
func (s *RequestShare) take() {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	var dropped int64
	for i := range q {
		if len(s.pending) >= s.maxQueue {
			dropped++
			continue
		}
		row := store.RequestRowOf(&q[i].rec)
		row.Captured = q[i].captured
		s.pending = append(s.pending, row)
	}
	if dropped > 0 {
		s.mu.Lock()
		s.dropped += dropped
		s.mu.Unlock()
		s.c.log.Warn("cluster request log queue full while redis is unreachable; these rows stay in this relay's database only", "dropped", dropped)
	}
}

// flush appends the pending rows in chunks, oldest first; it stops at the
// first failure (the rest waits for the next try).
func (s *RequestShare) flush(ctx context.Context) error {
	for len(s.pending) > 0 {
		n := min(len(s.pending), requestChunk)
		err := s.write(ctx, s.seq+1, s.pending[:n])
		var rerr redis.Error
		if err != nil && errors.As(err, &rerr) && (strings.HasPrefix(rerr.Error(), "ERR") || strings.HasPrefix(rerr.Error(), "WRONGTYPE")) {
			// Redis refused the append itself (not an outage): retrying
			// cannot help.
			s.c.log.Error("redis refused a request log append; these rows stay in this relay's database only", "err", rerr.Error())
			s.mu.Lock()
			s.dropped += int64(n)
			s.mu.Unlock()
		} else if err != nil {
			return err
		} else {
			s.mu.Lock()
			s.written += int64(n)
			s.mu.Unlock()
		}
		s.seq++
		s.pending = s.pending[n:]
	}
	s.pending = nil
	return nil
}

func (s *RequestShare) final() {
	s.take()
	if len(s.pending) == 0 {
		return
	}
	if s.c.Degraded() {
		s.c.log.Warn("cluster request log not written before shutdown (redis unreachable); this relay's database keeps it", "rows", len(s.pending))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := s.flush(ctx); err != nil {
		s.c.log.Warn("cluster request log not written before shutdown; this relay's database keeps it", "err", errReason(err))
	}
}

// appendRequestsScript appends one chunk of rows unless this relay appended
// it (or a later one) already, then trims the stream by age. The id keys
// expire with the retention, or, once the stream is at its cap, after twice
// the time the stream spans (at least a minute): they stay about as many as
// the rows the stream holds, whatever the traffic.
//
// KEYS: the stream, the relay's sequence key. ARGV: the chunk's sequence
// number, the sequence key's TTL (s), the stream's cap, the oldest entry
// id kept (MINID), the id keys' prefix and TTL (s), the row count n, then
// per row: request id, relay, arrival ms, key, accounts, model, served
// model, status, JSON.
var appendRequestsScript = redis.NewScript(`
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[2]) or '0') then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
local ttl = tonumber(ARGV[6])
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  local now = redis.call('TIME')
  local span = tonumber(now[1]) - math.floor(tonumber(string.match(first[1][1], '^(%d+)')) / 1000)
  ttl = math.max(60, math.min(ttl, 2 * span + 60))
end
local n = tonumber(ARGV[7])
local a = 8
for i = 1, n do
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'r', ARGV[a + 1], 't', ARGV[a + 2], 'k', ARGV[a + 3],
    'a', ARGV[a + 4], 'm', ARGV[a + 5], 's', ARGV[a + 6], 'st', ARGV[a + 7], 'j', ARGV[a + 8])
  if ARGV[a] ~= '' then redis.call('SET', ARGV[5] .. ARGV[a], id, 'EX', ttl) end
  a = a + 9
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[4])
return 1
`)

// write appends rows as chunk seq (once, whatever the retries).
func (s *RequestShare) write(ctx context.Context, seq int64, rows []store.RequestRow) error {
	c := s.c
	retention := time.Duration(s.retention.Load())
	minID := strconv.FormatInt(time.Now().Add(-retention).UnixMilli(), 10) + "-0"
	args := make([]any, 0, 7+9*len(rows))
	args = append(args, seq, int64(usageSeqTTL/time.Second), s.maxLen.Load(), minID, c.requestIDKey(""),
		int64(retention/time.Second)+1, len(rows))
	for i := range rows {
		r := &rows[i]
		j, err := json.Marshal(r)
		if err != nil {
			return err
		}
		args = append(args, r.ID, c.id, r.Time.UnixMilli(), r.Key, strings.Join(rowAccounts(r), "\n"), r.Model, r.ServedModel,
			r.Status, j)
	}
	return appendRequestsScript.Run(ctx, c.rdb, []string{c.requestStreamKey(), c.requestSeqKey()}, args...).Err()
}

// rowAccounts is every account r tried: the one that answered and each
// attempt's (a request is found by the accounts it failed over from).
func rowAccounts(r *store.RequestRow) []string {
	out := make([]string, 0, 1+len(r.Attempts))
	if r.Account != "" {
		out = append(out, r.Account)
	}
	for _, a := range r.Attempts {
		if a.Account != "" && a.Account != r.Account {
			out = append(out, a.Account)
		}
	}
	return out
}

func (c *conn) requestStreamKey() string         { return c.prefix + "rl" }
func (c *conn) requestSeqKey() string            { return c.prefix + "rl:seq:" + c.id }
func (c *conn) requestIDKey(reqID string) string { return c.prefix + "rl:id:" + reqID }
