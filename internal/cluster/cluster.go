package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Compile-time checks of the interfaces the cluster serves.
var (
	_ scheduler.Observer = (*Cluster)(nil)
	_ credential.Locker  = (*Cluster)(nil)
	_ credential.Store   = credStore{}
)

const (
	// healthInterval is how often Redis is pinged; an outage or a recovery is
	// noticed within it (and any failing command notices an outage at once).
	healthInterval = 500 * time.Millisecond
	// lastUsedFlush batches last-use times: they only break ties, and one
	// write per flush (not per request) keeps Redis off the request path.
	lastUsedFlush = 200 * time.Millisecond
	// queueSize bounds the changes waiting to be written; beyond it a change
	// is dropped and the next resync pushes the whole local view instead.
	queueSize = 8192
	// maxPendingDeletes bounds the removals remembered during an outage.
	maxPendingDeletes = 10000
	// keysLocalNote ends the outage's log line and /health detail when the
	// relay keys' limits are shared (AttachKeys).
	keysLocalNote = "; relay key limits are local-only (each relay enforces budgets, rpm and concurrency on its own)"
)

// Cluster is one relay's membership of a cluster. It implements
// scheduler.Observer (queueing, never blocking) and credential.Locker, and
// hands out a credential.Store through CredentialStore.
type Cluster struct {
	*conn
	leaseTTL time.Duration
	db       *store.DB
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sched  atomic.Pointer[scheduler.Scheduler]
	ps     atomic.Pointer[redis.PubSub]
	events chan event
	// resyncWanted asks the subscriber for a resync at its next message.
	resyncWanted atomic.Bool

	usedMu sync.Mutex
	used   map[string]int64 // last uses not yet written

	mu         sync.Mutex
	held       map[string]*lease
	degraded   bool
	downSince  time.Time
	downReason string
	needPush   bool
	pendingDel []event
	known      map[string]int64 // the newest last use of each account seen
	attached   bool
	closed     bool
	keys       *keySync // relay-key limits shared (AttachKeys); nil: none

	// stateDropped counts the state changes the events queue had no room
	// for (a resync pushes the whole local view instead).
	stateDropped atomic.Int64
}

// New connects to the cluster's Redis. It does not fail when Redis is down:
// the relay then starts degraded and syncs when Redis answers. db is the
// local database the credentials are mirrored into (nil: none). Call Close.
func New(cfg config.ClusterConfig, db *store.DB, log *slog.Logger) (*Cluster, error) {
	cn, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	warnPlaintextRedis(log, cfg.RedisURL)
	cn.log = log.With("component", "cluster")
	ttl := time.Duration(cfg.LeaseSeconds) * time.Second
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		conn: cn, leaseTTL: ttl, db: db, log: log.With("component", "cluster"),
		ctx: ctx, cancel: cancel, events: make(chan event, queueSize),
		used: map[string]int64{}, held: map[string]*lease{}, known: map[string]int64{},
	}
	pctx, pcancel := context.WithTimeout(ctx, dialTimeout)
	err = c.rdb.Ping(pctx).Err()
	pcancel()
	if err != nil {
		c.noteErr(err)
	} else {
		c.log.Info("joined the relay cluster", "relay", c.id, "key_prefix", c.prefix)
	}
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.healthLoop() }()
	go func() { defer c.wg.Done(); c.publisher() }()
	return c, nil
}

// ID is this relay's name in the cluster.
func (c *Cluster) ID() string { return c.id }

// Locker returns the cross-relay refresh lease.
func (c *Cluster) Locker() credential.Locker { return c }

// CredentialStore returns the shared credential store.
func (c *Cluster) CredentialStore() credential.Store { return credStore{c} }

// Attach makes s a cluster member: its changes are published, other relays'
// are applied to it, and its state is synced with Redis now and after every
// reconnection.
func (c *Cluster) Attach(s *scheduler.Scheduler) {
	c.mu.Lock()
	if c.attached || c.closed {
		c.mu.Unlock()
		return
	}
	c.attached = true
	c.mu.Unlock()
	c.sched.Store(s)
	s.SetObserver(c)
	ps := c.rdb.Subscribe(c.ctx, c.channel())
	c.ps.Store(ps)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.subscriber(ps) }()
}

// Degraded reports whether Redis is unreachable.
func (c *Cluster) Degraded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.degraded
}

// Health is /health's cluster detail: "ok", or "degraded: ..." while Redis is
// unreachable (no address or secret in it).
func (c *Cluster) Health() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.degraded {
		return "ok"
	}
	h := fmt.Sprintf("degraded: redis unreachable since %s; serving from this relay's local view", c.downSince.UTC().Format(time.RFC3339))
	if c.keys != nil {
		h += keysLocalNote
	}
	return h
}

// The queues to Redis whose drops Dropped counts.
const (
	// DropState: session and cooldown changes (the next resync makes up
	// for them).
	DropState = "state"
	// DropKeyCounters: relay-key charges and admissions (the cluster's
	// totals miss them; this relay's own limits do not).
	DropKeyCounters = "key_counters"
)

// Dropped returns how many items each of this relay's queues to Redis
// dropped since it started, by queue (DropState, DropKeyCounters; the usage
// queue's are UsageShare.Dropped).
func (c *Cluster) Dropped() map[string]int64 {
	c.mu.Lock()
	ks := c.keys
	c.mu.Unlock()
	out := map[string]int64{DropState: c.stateDropped.Load(), DropKeyCounters: 0}
	if ks != nil {
		out[DropKeyCounters] = ks.Dropped()
	}
	return out
}

// Close writes what is queued (briefly), stops syncing and disconnects.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	if ps := c.ps.Load(); ps != nil {
		_ = ps.Close()
	}
	c.wg.Wait()
	_ = c.rdb.Close()
}

// --- health ---

// noteErr marks the cluster degraded when err means Redis is unreachable
// (not for a missing key or a command Redis refused as malformed).
func (c *Cluster) noteErr(err error) {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "ERR") {
		c.log.Warn("redis refused a cluster command", "err", rerr.Error())
		return
	}
	c.mu.Lock()
	first := !c.degraded
	if first {
		c.degraded, c.downSince, c.downReason = true, time.Now(), errReason(err)
	}
	c.needPush = true
	keys := c.keys != nil
	c.mu.Unlock()
	if first {
		msg := "cluster redis unreachable; serving from this relay's local view until it returns (no oauth refresh meanwhile)"
		if keys {
			msg += keysLocalNote
		}
		c.log.Warn(msg, "err", errReason(err))
	}
}

// errReason describes err without the address or anything from the URL.
func errReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, new(*net.OpError)):
		return "connection failed"
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		s := rerr.Error()
		if i := strings.IndexByte(s, ' '); i > 0 {
			s = s[:i]
		}
		return "redis answered " + s
	}
	return "connection error"
}

func (c *Cluster) healthLoop() {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, dialTimeout)
		err := c.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			c.noteErr(err)
			continue
		}
		c.mu.Lock()
		was, since := c.degraded, c.downSince
		c.degraded = false
		c.mu.Unlock()
		if was {
			c.log.Info("cluster redis reachable again; resyncing", "down_for", time.Since(since).Round(time.Second))
			c.resyncWanted.Store(true)
			if ps := c.ps.Load(); ps != nil {
				// Wakes the subscriber, which resyncs in order with the events.
				pctx, pcancel := context.WithTimeout(c.ctx, dialTimeout)
				_ = ps.Ping(pctx, "resync")
				pcancel()
			}
		}
	}
}
