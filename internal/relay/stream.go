package relay

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// pipeStream carries one upstream SSE stream to the client as it arrives, in
// two phases.
//
// Before the first content event (beforeCommit), events are inspected one
// by one: an error event (or a stream that dies) there fails the attempt
// over to the next account, and events that carry no answer yet
// (message_start, ping) are written at once so the client's first byte is
// not delayed. A later attempt drops its own preamble, so the client sees
// one coherent stream.
//
// After the first content event the stream is committed (copyCommitted):
// no other account can take over, the request body is released, and
// upstream chunks are written and flushed as they are read — the exact bytes
// on passthrough routes, converted events on the others. A failure then
// becomes an error event rather than a silently truncated stream.
func (r *Relay) pipeStream(c *call, up *Upstream, resp *http.Response, wd *watchdog) attemptResult {
	bufp := r.bufPool.Get().(*[]byte)
	defer r.bufPool.Put(bufp)
	p := r.parserPool.Get().(*sse.Parser)
	defer func() { p.Reset(); r.parserPool.Put(p) }()
	s := &upstreamStream{
		r: r, c: c, resp: resp, st: c.ad.newStream(c, up), wd: wd,
		buf: (*bufp)[:cap(*bufp)], p: p,
	}
	if res, committed := s.beforeCommit(); !committed {
		return res
	}
	c.releaseBody() // no other account can take over now
	wd.kick()       // the committing read counts as life
	return s.copyCommitted()
}

// upstreamStream is one attempt's stream on its way to the client.
type upstreamStream struct {
	r    *Relay
	c    *call
	resp *http.Response
	st   streamer
	wd   *watchdog
	// buf is the read buffer (pooled by pipeStream).
	buf []byte
	p   *sse.Parser // pooled by pipeStream
	// terminal: the upstream's final event was seen.
	terminal bool
	// wroteAny: this attempt wrote something to the client.
	wroteAny bool
	// errorSeen: the bytes being copied hold an upstream error event, which
	// is redacted before it reaches the client.
	errorSeen bool
	// held: the start of an unfinished passthrough event that may be an
	// error, not written yet (see holdError).
	held []byte
}

// write sends stream bytes, writing the response header first.
func (s *upstreamStream) write(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	rs := &s.c.resp
	if !rs.started {
		h := rs.Header()
		copyResponseHeader(h, s.resp.Header)
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		rs.begin(http.StatusOK)
	}
	s.wroteAny = true
	return rs.flushWrite(b)
}

// streamPhase is where a stream is: before its first content event
// (another account may still take over) or after it.
type streamPhase int

const (
	uncommitted streamPhase = iota
	committed
)

// read reads the next chunk. Silence is bounded by the idle timeout: once
// committed every read restarts the clock (pings are life); before the
// commit only the first read does, so an upstream that sends pings forever
// and never an answer cannot hold the client and the account.
func (s *upstreamStream) read(p streamPhase, first *bool) (int, error) {
	n, err := s.resp.Body.Read(s.buf)
	if n > 0 {
		switch {
		case *first:
			s.wd.reset(s.r.opts.IdleTimeout)
			*first = false
		case p == committed:
			s.wd.kick()
		}
	}
	return n, err
}

// beforeCommit reads until the first content event (committed) or until the
// attempt fails. Events of the committing chunk that follow the first content
// event are written as well.
func (s *upstreamStream) beforeCommit() (attemptResult, bool) {
	c := s.c
	outp := s.r.outPool.Get().(*[]byte)
	defer s.r.putOut(outp)
	first := true
	for {
		n, rerr := s.read(uncommitted, &first)
		if n > 0 {
			out := (*outp)[:0]
			committed := false
			var errEvent *provider.Verdict
			s.p.Feed(s.buf[:n], func(ev *sse.Event) bool {
				if len(ev.Data) == 0 && len(ev.Name) == 0 {
					return true // comments and stray blank lines carry nothing
				}
				cls := s.st.observe(ev)
				switch {
				case committed:
					if cls == provider.Terminal {
						s.terminal = true
					}
				case cls == provider.Preamble:
					if c.resp.preamble && !s.wroteAny {
						return true // this attempt's preamble: the client has one already
					}
				case cls == provider.ErrorEvent:
					if v := s.st.errVerdict(ev); v.Kind.Failover() {
						errEvent = &v
						return false
					}
					s.errorSeen = true
					committed = true
				default:
					committed = true
					s.terminal = cls == provider.Terminal
				}
				out = s.st.transform(out, ev)
				return true
			})
			if committed && s.st.passthrough() {
				// The committed copy writes raw bytes from the next read on:
				// the start of an event this read left unfinished goes now,
				// or the client would get only its tail.
				// One that may be an error waits for its end (holdError).
				if pend := s.p.PendingBytes(); bytes.Contains(pend, errorWord) {
					s.held = append(s.held[:0], pend...)
				} else {
					out = append(out, pend...)
				}
			}
			*outp = out[:0]
			if s.errorSeen {
				out, s.errorSeen = s.r.table.Load().redact.body(out), false
			}
			if len(out) > 0 {
				if !s.write(out) {
					return s.r.gone(c), false
				}
				if !committed {
					c.resp.preamble = true
				}
			}
			if errEvent != nil {
				c.streamUsage(s.st)
				return attemptResult{outcome: failed, verdict: *errEvent}, false
			}
			if committed {
				return attemptResult{}, true
			}
		}
		if rerr != nil {
			c.streamUsage(s.st)
			if errors.Is(rerr, io.EOF) {
				return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.ServerError, Reason: "upstream stream ended before any content"}}, false
			}
			if c.req.Context().Err() != nil {
				return s.r.gone(c), false
			}
			return attemptResult{outcome: failed, verdict: s.readFailure(rerr)}, false
		}
	}
}

// copyCommitted copies the rest of a committed stream. Passthrough routes
// write the bytes as read (the parser only watches for the final event and
// usage); converting routes write each event transformed.
func (s *upstreamStream) copyCommitted() attemptResult {
	pass := s.st.passthrough()
	var outp *[]byte
	if !pass {
		outp = s.r.outPool.Get().(*[]byte)
		defer s.r.putOut(outp)
	}
	first := false
	for {
		n, rerr := s.read(committed, &first)
		if n > 0 {
			chunk := s.buf[:n]
			out := chunk
			if pass {
				s.p.Feed(chunk, s.watch)
				out = s.holdError(chunk)
			} else {
				out = (*outp)[:0]
				s.p.Feed(chunk, func(ev *sse.Event) bool {
					if len(ev.Data) == 0 && len(ev.Name) == 0 {
						return true
					}
					s.watch(ev)
					out = s.st.transform(out, ev)
					return true
				})
				*outp = out[:0]
			}
			if s.errorSeen {
				// An error event is rare and small: its chunk is checked
				// for secrets before it goes out.
				out, s.errorSeen = s.r.table.Load().redact.body(out), false
			}
			if !s.write(out) {
				return s.r.gone(s.c)
			}
		}
		if rerr != nil {
			return s.end(rerr)
		}
	}
}

// holdError returns the bytes of a passthrough read to write now. An
// unfinished event that may be an error (its bytes so far say "error") is
// held back until it is complete, so its secrets are redacted whole even
// when the upstream's event spans several reads; a client cannot use half
// an event anyway. Everything else goes out as read, with no copy.
func (s *upstreamStream) holdError(chunk []byte) []byte {
	pend := s.p.PendingBytes()
	hold := 0
	if len(pend) > 0 && bytes.Contains(pend, errorWord) {
		// The part of the unfinished event not written yet: what was held
		// before plus what this read added (earlier parts went out when
		// they did not say "error", and so held no error text).
		hold = min(len(pend), len(s.held)+len(chunk))
	}
	if len(s.held) == 0 && hold == 0 {
		return chunk
	}
	all := append(s.held, chunk...)
	cut := len(all) - hold
	out := append([]byte(nil), all[:cut]...)
	s.held = append(all[:0], all[cut:]...)
	return out
}

var errorWord = []byte("error")

// watch observes a committed event for usage and the final event.
func (s *upstreamStream) watch(ev *sse.Event) bool {
	switch s.st.observe(ev) {
	case provider.Terminal:
		s.terminal = true
	case provider.ErrorEvent:
		s.errorSeen = true
	}
	return true
}

// end finishes a committed stream: a clean end closes it in the route's
// form; anything else reaches the client as an error event in the route's
// shape and counts against the account.
func (s *upstreamStream) end(rerr error) attemptResult {
	c := s.c
	c.streamUsage(s.st)
	if len(s.held) > 0 {
		// An unfinished event that may be an error: checked, then sent.
		s.write(s.r.table.Load().redact.body(s.held))
		s.held = nil
	}
	if errors.Is(rerr, io.EOF) {
		if s.terminal || !s.st.needsTerminal() {
			s.write(s.st.end(nil))
			return attemptResult{outcome: done}
		}
		reason := "upstream stream ended before its final event"
		s.failCommitted(reason + "; the answer is incomplete")
		c.resp.errMsg = reason
		return attemptResult{outcome: final, verdict: provider.Verdict{Kind: provider.ServerError, Reason: reason}}
	}
	if c.req.Context().Err() != nil && !s.wd.timedOut() {
		return s.r.gone(c)
	}
	v := s.readFailure(rerr)
	s.failCommitted(v.Reason + "; the answer is incomplete")
	c.resp.errMsg = v.Reason
	return attemptResult{outcome: final, verdict: v}
}

// failCommitted ends a committed stream with an error event. A half-written
// event (passthrough) is closed first so the error event parses as its own.
func (s *upstreamStream) failCommitted(msg string) {
	if s.st.passthrough() && s.p.Pending() > 0 {
		s.write([]byte("\n\n"))
	}
	s.c.resp.failed(http.StatusBadGateway, msg)
	s.write(s.c.dialect.streamError(http.StatusBadGateway, msg))
}

// readFailure is the verdict on a stream that broke (not the client's doing).
func (s *upstreamStream) readFailure(rerr error) provider.Verdict {
	reason := "upstream stream failed: " + scrubNetErr(rerr)
	if s.wd.timedOut() {
		reason = "upstream stream stalled: no data for " + s.r.opts.IdleTimeout.String()
	}
	return provider.Verdict{Kind: provider.Network, Reason: reason}
}

// usageReporter is a streamer that can tell a stream without usage from
// one that used nothing (Chat Completions upstreams may send none).
type usageReporter interface{ usageUnknown() bool }

// streamUsage takes an attempt's stream usage, and whether the upstream
// reported none.
func (c *call) streamUsage(st streamer) {
	c.usage = st.usage()
	ur, ok := st.(usageReporter)
	c.usageUnknown = ok && ur.usageUnknown()
}
