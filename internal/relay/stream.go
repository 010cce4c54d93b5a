package relay

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// pipeStream carries one upstream SSE stream to the client as it arrives.
//
// Until the first content event, events are inspected one by one: an error
// event (or a stream that dies) there fails the attempt over to the next
// account, and events that carry no answer yet (message_start, ping) are
// written at once so the client's first byte is not delayed. A later attempt
// drops its own preamble, so the client sees one coherent stream. After the
// first content event the stream is committed: upstream chunks are written and
// flushed as they are read (passthrough routes write the exact bytes), and a
// failure becomes an error event rather than a silently truncated stream.
func (r *Relay) pipeStream(c *call, resp *http.Response, timer *time.Timer, timedOut *atomic.Bool) attemptResult {
	st := c.ad.newStream(c)
	flusher, _ := c.w.(http.Flusher)
	// Memory per open stream is what a relay of many idle streams pays for:
	// one read buffer, and an output buffer only while events are rewritten
	// (before the commit, or on a converting route). A committed passthrough
	// stream gives its output buffer back.
	bufp := r.bufPool.Get().(*[]byte)
	defer r.bufPool.Put(bufp)
	var outp *[]byte
	defer func() {
		if outp != nil {
			r.putOut(outp)
		}
	}()
	buf := (*bufp)[:cap(*bufp)]
	var p sse.Parser
	terminal := false
	var errEvent *provider.Verdict
	wroteAny := false // this attempt wrote something to the client
	pass := st.passthrough()
	released := false
	started := false // the first byte arrived

	writeOut := func(b []byte) bool {
		if len(b) == 0 {
			return true
		}
		if !c.wroteHeader {
			h := c.w.Header()
			copyResponseHeader(h, resp.Header)
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			c.w.WriteHeader(http.StatusOK)
			c.wroteHeader = true
			c.status = http.StatusOK
			c.ttfb = time.Since(c.start)
		}
		if _, err := c.w.Write(b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		wroteAny = true
		return true
	}

	// closePartial ends a half-written event (fast path) so that an error
	// event that follows is parsed as an event of its own.
	closePartial := func() {
		if pass && p.Pending() > 0 {
			writeOut([]byte("\n\n"))
		}
	}

	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			// Silence is bounded by the idle timeout. Before the first
			// content event, only the first read starts that clock: an
			// upstream that sends pings forever and never an answer must
			// not hold the client (and the account) forever.
			if c.committed || !started {
				timer.Reset(r.opts.IdleTimeout)
				started = true
			}
			chunk := buf[:n]
			if c.committed && pass {
				// Fast path: bytes go out as read; the parser only watches.
				p.Feed(chunk, func(ev *sse.Event) bool {
					if st.observe(ev) == provider.Terminal {
						terminal = true
					}
					return true
				})
				if !writeOut(chunk) {
					return r.gone(c)
				}
				continue
			}
			if outp == nil {
				outp = r.outPool.Get().(*[]byte)
			}
			out := (*outp)[:0]
			p.Feed(chunk, func(ev *sse.Event) bool {
				if len(ev.Data) == 0 && len(ev.Name) == 0 {
					return true // comments and stray blank lines carry nothing
				}
				cls := st.observe(ev)
				switch {
				case c.committed:
					if cls == provider.Terminal {
						terminal = true
					}
					out = st.transform(out, ev)
				case cls == provider.Preamble:
					if c.wrotePreamble && !wroteAny {
						return true // this attempt's preamble: the client has one already
					}
					out = st.transform(out, ev)
				case cls == provider.ErrorEvent:
					v := st.errVerdict(ev)
					if v.Kind.Failover() {
						errEvent = &v
						return false
					}
					c.committed = true
					out = st.transform(out, ev)
				default:
					c.committed = true
					if cls == provider.Terminal {
						terminal = true
					}
					out = st.transform(out, ev)
				}
				return true
			})
			if c.committed && pass {
				// The fast path takes over with the next read and writes
				// raw bytes: the start of an event this read left
				// unfinished must go out now, or the client would get only
				// its tail.
				out = append(out, p.PendingBytes()...)
			}
			*outp = out[:0]
			if len(out) > 0 {
				if !writeOut(out) {
					return r.gone(c)
				}
				if !c.committed {
					c.wrotePreamble = true
				}
			}
			if c.committed && !released {
				// No other account can take over now.
				c.releaseBody()
				released = true
			}
			if c.committed && pass {
				// From here bytes go out as read (see the fast path above).
				r.putOut(outp)
				outp = nil
			}
			if errEvent != nil {
				c.usage = st.usage()
				return attemptResult{outcome: failed, verdict: *errEvent}
			}
		}
		if rerr == nil {
			continue
		}
		c.usage = st.usage()
		if errors.Is(rerr, io.EOF) {
			if !c.committed {
				return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.ServerError, Reason: "upstream stream ended before any content"}}
			}
			if !terminal && st.needsTerminal() {
				closePartial()
				c.errMsg = "upstream stream ended before its final event"
				c.status = http.StatusBadGateway
				writeOut(c.ad.dialect().streamError(http.StatusBadGateway, "upstream stream ended before its final event; the answer is incomplete"))
				return attemptResult{outcome: final, verdict: provider.Verdict{Kind: provider.ServerError, Reason: c.errMsg}}
			}
			writeOut(st.end(nil))
			return attemptResult{outcome: done}
		}
		if c.req.Context().Err() != nil {
			return r.gone(c)
		}
		reason := "upstream stream failed: " + scrubNetErr(rerr)
		if timedOut.Load() {
			reason = "upstream stream stalled (no data within the timeout)"
		}
		v := provider.Verdict{Kind: provider.Network, Reason: reason}
		if !c.committed {
			return attemptResult{outcome: failed, verdict: v}
		}
		c.errMsg = reason
		c.status = http.StatusBadGateway
		closePartial()
		writeOut(c.ad.dialect().streamError(http.StatusBadGateway, reason+"; the answer is incomplete"))
		return attemptResult{outcome: final, verdict: v}
	}
}
