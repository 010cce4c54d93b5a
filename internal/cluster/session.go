package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

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
	err := setSessionScript.Run(ctx, c.rdb, []string{c.sessionKey(b.Key), c.channel()}, c.sessionArgs(sessionEvent(c.id, b, false))...).Err()
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
		c.stateDropped.Add(1)
		c.mu.Lock()
		c.needPush = true
		c.mu.Unlock()
		c.resyncWanted.Store(true)
	}
}
