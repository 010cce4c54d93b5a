package cluster

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/scheduler"
)

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
			setSessionScript.Eval(ctx, p, []string{c.sessionKey(e.Key), c.channel()}, c.sessionArgs(e)...)
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
	c.receive(ps, func(msg any) {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				return
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
	})
}

// receive hands each message of ps (a *redis.Subscription or a
// *redis.Message) to handle, on the calling goroutine, until the cluster
// closes. A failed receive marks Redis unreachable (noteErr) and is tried
// again after a pause that doubles from 100 ms up to a second; go-redis
// subscribes again by itself, which handle sees as a new "subscribe".
// Every subscriber of the cluster (events, quota numbers) reads this way.
func (c *Cluster) receive(ps *redis.PubSub, handle func(msg any)) {
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
		handle(msg)
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
