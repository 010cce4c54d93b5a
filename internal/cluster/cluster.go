package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/state"
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

// --- Sessions read and written on the request path ---

// sessionSyncTimeout bounds the Redis round trip a request may wait for
// when its conversation is new to this relay.
const sessionSyncTimeout = 100 * time.Millisecond

// removed marks a binding or cooldown that another relay dropped.
const removed = true

// LookupSession reads one conversation's binding from Redis. The relay asks
// when the conversation is new to it: another relay may have bound it a
// moment ago, with the event still on its way. Nothing while Redis is
// degraded; a slow Redis costs at most sessionSyncTimeout.
func (c *Cluster) LookupSession(ctx context.Context, key string) (state.Binding, bool) {
	if c.Degraded() {
		return state.Binding{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, sessionSyncTimeout)
	defer cancel()
	v, err := c.rdb.Get(ctx, c.sessionKey(key)).Result()
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			c.noteErr(err)
		}
		return state.Binding{}, false
	}
	b, ok := decodeBinding(key, v)
	if !ok || !b.ExpiresAt.After(time.Now()) {
		return state.Binding{}, false
	}
	return b, true
}

// ClaimSession writes a new conversation's binding to Redis (and publishes
// it) before the request goes upstream, so the conversation's next turn
// finds it on every relay however soon it comes. The binding that ends
// later wins, as for every binding event.
func (c *Cluster) ClaimSession(ctx context.Context, b state.Binding) {
	if c.Degraded() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sessionSyncTimeout)
	defer cancel()
	err := setSessionScript.Run(ctx, c.rdb, []string{c.sessionKey(b.Key), c.channel()},
		strconv.FormatInt(b.ExpiresAt.UnixMilli(), 10), b.AccountID, c.id, b.Key).Err()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		c.noteErr(err)
	}
}

// --- Observer (called with the scheduler's mutex held: never block) ---

// SessionChanged queues a binding change for the cluster.
func (c *Cluster) SessionChanged(b state.Binding, cleared bool) {
	c.enqueue(sessionEvent(c.id, b, cleared))
}

// CooldownChanged queues a cooldown change for the cluster.
func (c *Cluster) CooldownChanged(cd state.Cooldown, cleared bool) {
	c.enqueue(cooldownEvent(c.id, cd, cleared))
}

// AccountUsed records a use; uses are written in batches.
func (c *Cluster) AccountUsed(accountID string, t time.Time) {
	ms := t.UnixMilli()
	c.usedMu.Lock()
	if ms > c.used[accountID] {
		c.used[accountID] = ms
	}
	c.usedMu.Unlock()
}

func (c *Cluster) enqueue(e event) {
	select {
	case c.events <- e:
	default:
		c.mu.Lock()
		c.needPush = true
		c.mu.Unlock()
		c.resyncWanted.Store(true)
	}
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

// --- writing ---

func (c *Cluster) publisher() {
	t := time.NewTicker(lastUsedFlush)
	defer t.Stop()
	for {
		var batch []event
		select {
		case <-c.ctx.Done():
			c.finalFlush()
			return
		case e := <-c.events:
			batch = c.drain(append(batch, e))
		case <-t.C:
		}
		used := c.takeUsed()
		if len(batch) == 0 && len(used) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 2*dialTimeout)
		c.write(ctx, batch, used)
		cancel()
	}
}

func (c *Cluster) drain(batch []event) []event {
	for len(batch) < 512 {
		select {
		case e := <-c.events:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

func (c *Cluster) finalFlush() {
	batch := c.drain(nil)
	used := c.takeUsed()
	if (len(batch) == 0 && len(used) == 0) || c.Degraded() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c.write(ctx, batch, used)
}

func (c *Cluster) takeUsed() map[string]int64 {
	c.usedMu.Lock()
	used := c.used
	if len(used) == 0 {
		c.usedMu.Unlock()
		return nil
	}
	c.used = map[string]int64{}
	c.usedMu.Unlock()
	c.mu.Lock()
	for id, ms := range used {
		if ms > c.known[id] {
			c.known[id] = ms
		}
	}
	c.mu.Unlock()
	return used
}

// write applies a batch in one MULTI/EXEC, so the writes and their events
// keep their order across relays.
func (c *Cluster) write(ctx context.Context, batch []event, used map[string]int64) {
	if c.Degraded() {
		c.keep(batch)
		return
	}
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range batch {
			c.queueEvent(ctx, p, e)
		}
		if len(used) > 0 {
			args := make([]any, 0, 2*len(used))
			for id, ms := range used {
				args = append(args, id, strconv.FormatInt(ms, 10))
			}
			maxLastUsedScript.Eval(ctx, p, []string{c.lastUsedKey()}, args...)
			p.Publish(ctx, c.channel(), event{Origin: c.id, Type: evLastUsed, Used: used}.json())
		}
		return nil
	})
	if err != nil {
		c.noteErr(err)
		c.keep(batch)
	}
}

func (c *Cluster) queueEvent(ctx context.Context, p redis.Pipeliner, e event) {
	switch e.Type {
	case evSession:
		if e.Del {
			p.Del(ctx, c.sessionKey(e.Key))
			p.Publish(ctx, c.channel(), e.json())
		} else if e.At != "0" {
			setSessionScript.Eval(ctx, p, []string{c.sessionKey(e.Key), c.channel()}, e.At, e.Acct, c.id, e.Key)
		}
	case evCooldown:
		key := c.cooldownKey(e.Acct, e.Model)
		if e.Del {
			p.Del(ctx, key)
		} else if e.At != "0" {
			p.Do(ctx, "SET", key, encodeCooldown(e.cooldown()), "PXAT", e.At)
		} else {
			return
		}
		p.Publish(ctx, c.channel(), e.json())
	}
}

// keep remembers what an outage kept from Redis: removals one by one (a
// resync cannot infer them), everything else through the resync's push of
// the whole local view.
func (c *Cluster) keep(batch []event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.needPush = true
	for _, e := range batch {
		if e.Del && len(c.pendingDel) < maxPendingDeletes {
			c.pendingDel = append(c.pendingDel, e)
		}
	}
}

// --- reading ---

func (c *Cluster) subscriber(ps *redis.PubSub) {
	first := true
	wait := 100 * time.Millisecond
	for {
		msg, err := ps.Receive(c.ctx)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.noteErr(err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if !first {
				// Reconnected: events may have been missed either way.
				c.mu.Lock()
				c.needPush = true
				c.mu.Unlock()
			}
			first = false
			c.resyncWanted.Store(false)
			c.resync()
		case *redis.Message:
			c.apply(m.Payload)
		}
		if c.resyncWanted.Swap(false) {
			c.resync()
		}
	}
}

// apply merges one event, this relay's own included: every relay applies the
// same events in Redis's order, so all converge on what Redis holds.
func (c *Cluster) apply(payload string) {
	var e event
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		return
	}
	s := c.sched.Load()
	if s == nil {
		return
	}
	switch e.Type {
	case evSession:
		b := e.binding()
		s.ApplyRemoteBinding(b, e.Del)
	case evCooldown:
		cd := e.cooldown()
		s.ApplyRemoteCooldown(cd, e.Del)
	case evLastUsed:
		if e.Origin == c.id {
			return
		}
		lu := make(map[string]time.Time, len(e.Used))
		for id, ms := range e.Used {
			lu[id] = time.UnixMilli(ms)
		}
		s.Restore(nil, nil, lu)
		c.mu.Lock()
		for id, ms := range e.Used {
			if ms > c.known[id] {
				c.known[id] = ms
			}
		}
		c.mu.Unlock()
	case evCred:
		if e.Origin == c.id || c.db == nil {
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, dialTimeout)
		defer cancel()
		if cr, ok, err := c.credential(ctx, e.Acct); err == nil && ok {
			c.mirror(ctx, cr)
		}
	}
}

// resync makes this relay and Redis agree: after an outage (or when Redis
// came back empty) it first pushes its local view, merged so that the later
// binding and the longer cooldown win; then it replaces its view with
// Redis's. It runs on the subscriber goroutine, so events published after
// the snapshot are applied after it.
func (c *Cluster) resync() {
	s := c.sched.Load()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	fresh, err := c.rdb.SetNX(ctx, c.epochKey(), c.id, 0).Result()
	if err != nil {
		c.noteErr(err)
		return
	}
	c.mu.Lock()
	push, dels := c.needPush || fresh, c.pendingDel
	c.needPush, c.pendingDel = false, nil
	c.mu.Unlock()
	if push {
		if err := c.push(ctx, s, dels); err != nil {
			c.noteErr(err)
			c.mu.Lock()
			c.needPush = true
			c.pendingDel = append(dels, c.pendingDel...)
			c.mu.Unlock()
			return
		}
	}
	if err := c.pull(ctx, s); err != nil {
		c.noteErr(err)
		return
	}
	c.log.Debug("cluster state synced", "pushed", push)
}

func (c *Cluster) push(ctx context.Context, s *scheduler.Scheduler, dels []event) error {
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range dels {
			c.queueEvent(ctx, p, e)
		}
		for _, b := range s.Sessions() {
			c.queueEvent(ctx, p, sessionEvent(c.id, b, false))
		}
		for _, cd := range s.Cooldowns() {
			ev := cooldownEvent(c.id, cd, false)
			mergeCooldownScript.Eval(ctx, p, []string{c.cooldownKey(cd.AccountID, cd.Model), c.channel()}, ev.At, encodeCooldown(cd), ev.json())
		}
		c.mu.Lock()
		args := make([]any, 0, 2*len(c.known))
		for id, ms := range c.known {
			args = append(args, id, strconv.FormatInt(ms, 10))
		}
		c.mu.Unlock()
		if len(args) > 0 {
			maxLastUsedScript.Eval(ctx, p, []string{c.lastUsedKey()}, args...)
		}
		if c.db != nil {
			for _, a := range s.Accounts() {
				cr, err := c.db.Credential(ctx, a.ID)
				if err != nil || cr.RefreshToken == "" {
					continue
				}
				ev := event{Origin: c.id, Type: evCred, Acct: a.ID}.json()
				args := append([]any{strconv.FormatInt(msOf(cr.UpdatedAt), 10), ev, strconv.FormatInt(cr.Generation, 10)}, c.credFields(cr, c.id)...)
				pushCredScript.Eval(ctx, p, []string{c.credKey(a.ID), c.channel()}, args...)
			}
		}
		return nil
	})
	return err
}

func (c *Cluster) pull(ctx context.Context, s *scheduler.Scheduler) error {
	sessions, err := c.sessions(ctx)
	if err != nil {
		return err
	}
	cooldowns, err := c.cooldowns(ctx)
	if err != nil {
		return err
	}
	lastUsed, err := c.lastUsed(ctx)
	if err != nil {
		return err
	}
	haveS := make(map[string]bool, len(sessions))
	for _, b := range sessions {
		haveS[b.Key] = true
	}
	for _, b := range s.Sessions() {
		if !haveS[b.Key] {
			s.ApplyRemoteBinding(b, removed)
		}
	}
	haveC := make(map[string]bool, len(cooldowns))
	for _, cd := range cooldowns {
		haveC[cd.AccountID+"/"+cd.Model] = true
	}
	for _, cd := range s.Cooldowns() {
		if !haveC[cd.AccountID+"/"+cd.Model] {
			s.ApplyRemoteCooldown(cd, removed)
		}
	}
	c.mu.Lock()
	for id, t := range lastUsed {
		if ms := t.UnixMilli(); ms > c.known[id] {
			c.known[id] = ms
		}
	}
	c.mu.Unlock()
	s.Restore(sessions, cooldowns, lastUsed)
	return nil
}
