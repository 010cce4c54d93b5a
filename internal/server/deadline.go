package server

import (
	"net"
	"sync/atomic"
	"time"
)

// deadlineListener gives every connection it accepts a write deadline that
// follows the connection's writes (see deadlineConn). One bound on the
// connection covers every byte the relay sends: stream events, whole
// answers, the part of an answer net/http sends after the handler returns,
// answers to pipelined requests, and net/http's own error answers.
type deadlineListener struct {
	net.Listener
	// timeout is the write timeout in nanoseconds (<= 0: none); it may
	// change while connections are open (a reload).
	timeout *atomic.Int64
	// now is the clock (time.Now outside tests); epoch is its reading when
	// the listener was made, for the connections' arm times.
	now   func() time.Time
	epoch time.Time
}

func newDeadlineListener(ln net.Listener, timeout *atomic.Int64, now func() time.Time) *deadlineListener {
	if now == nil {
		now = time.Now
	}
	return &deadlineListener{Listener: ln, timeout: timeout, now: now, epoch: now()}
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, l: l}, nil
}

// deadlineConn bounds every write: a write that cannot finish within the
// timeout (a client that stopped reading) fails, the relay learns the
// client is gone (its upstream call is cancelled, the request recorded as
// 499) and net/http closes the connection.
//
// Moving a deadline costs a runtime timer update, and often a wake-up of
// the thread waiting in the network poller: done for each request it was
// a measurable share of a small request's cost. So the deadline moves only
// when a quarter of the timeout has passed since it last moved, at most
// four times per timeout per connection however many requests and events
// it carries: a write that blocks is cut after between 3/4 of the timeout
// and all of it. The deadline is never lifted between requests; it bounds
// writes only, and an idle connection's expired one is moved before its
// next write.
type deadlineConn struct {
	net.Conn
	l *deadlineListener
	// armedAt is when the deadline last moved, in nanoseconds after the
	// listener's epoch plus one; 0: no deadline is set.
	armedAt atomic.Int64
	// explicit: a deadline set through SetWriteDeadline is in force, and
	// the bound leaves it alone until it is lifted.
	explicit atomic.Bool
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.arm()
	return c.Conn.Write(p)
}

// SetWriteDeadline keeps the connection's bound when net/http lifts the
// write deadline, as it does after every request (SetWriteDeadline of the
// zero time): the bound limits writes only, and one that expired while the
// connection was idle is moved before its next write. A deadline set
// explicitly (by a handler through http.ResponseController, or net/http's
// TLS handshake) replaces the bound until it is lifted; the next write
// after the lift sets the bound again.
func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	switch {
	case !t.IsZero():
		c.explicit.Store(true)
	case c.explicit.Swap(false):
		c.armedAt.Store(0)
	case c.l.timeout.Load() > 0:
		return nil
	default:
		c.armedAt.Store(0)
	}
	return c.Conn.SetWriteDeadline(t)
}

// CloseWrite keeps net/http's half-close (it sends a final error answer,
// then lets the client read it before closing) on the wrapped connection.
func (c *deadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *deadlineConn) arm() {
	if c.explicit.Load() {
		return
	}
	t := time.Duration(c.l.timeout.Load())
	at := c.armedAt.Load()
	if t <= 0 {
		if at != 0 && c.armedAt.CompareAndSwap(at, 0) {
			_ = c.Conn.SetWriteDeadline(time.Time{})
		}
		return
	}
	now := c.l.now()
	n := int64(now.Sub(c.l.epoch)) + 1
	if at != 0 && n-at < int64(t/4) {
		return
	}
	if c.armedAt.CompareAndSwap(at, n) {
		_ = c.Conn.SetWriteDeadline(now.Add(t))
	}
}
