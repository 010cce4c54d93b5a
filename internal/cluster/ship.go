package cluster

import (
	"context"
	"time"
)

// shipper is what this relay queues for Redis and writes in batches: the
// request log's rows (RequestShare) and the usage sums (UsageShare). Its
// Record queues and signals a wake channel; ship drives the rest on one
// goroutine, which owns what take moves out of the queue.
type shipper interface {
	// take moves what Record queued into what waits to be written.
	take()
	// waiting reports whether anything waits to be written.
	waiting() bool
	// flush writes what waits; on an error what was not written still waits.
	flush(ctx context.Context) error
	// final writes what is left when the cluster closes (briefly).
	final()
}

// ship runs s until the cluster closes, then calls s.final. After each
// wake it lets a burst gather for usageFlushEvery, then writes what waits
// in one flush. While Redis is unreachable, or after a failed flush, what
// waits is kept and tried again after healthInterval (or at the next wake).
func (c *Cluster) ship(wake <-chan struct{}, s shipper) {
	var retry <-chan time.Time
	for {
		select {
		case <-c.ctx.Done():
			s.final()
			return
		case <-wake:
		case <-retry:
		}
		retry = nil
		// Let a burst gather into one write.
		select {
		case <-c.ctx.Done():
			s.final()
			return
		case <-time.After(usageFlushEvery):
		}
		s.take()
		if !s.waiting() {
			continue
		}
		if c.Degraded() {
			// Keep it; try again once the health loop sees Redis.
			retry = time.After(healthInterval)
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 2*dialTimeout)
		err := s.flush(ctx)
		cancel()
		if err != nil {
			c.noteErr(err)
			retry = time.After(healthInterval)
		}
	}
}
