package relay

import (
	"sync"
	"sync/atomic"
	"time"
)

// watchdog cancels an attempt after a stretch of silence: no response
// within the response (or first-byte) timeout, then no stream bytes within
// the idle timeout.
//
// A stream reads dozens of times a second, and moving a runtime timer (or
// even reading the clock) on each read is measurable, so a read only bumps
// a counter (kick). The timer ticks eight times per allowance and cancels
// after eight ticks in a row without a read: silence is cut after between
// the allowance and an eighth more. Before any read (waiting for the answer)
// the cut comes after exactly the allowance.
type watchdog struct {
	reads  atomic.Int64 // bumped by every kick
	fired  atomic.Bool
	cancel func()

	mu     sync.Mutex // the fields below, shared by fire and reset
	timer  *time.Timer
	period time.Duration
	seen   int64 // reads at the last tick
	quiet  int   // ticks in a row without a read
	done   bool  // stopped: a tick already under way must not re-arm
}

// watchdogTicks is how many ticks make one allowance.
const watchdogTicks = 8

func newWatchdog(limit time.Duration, cancel func()) *watchdog {
	w := &watchdog{cancel: cancel, period: tickOf(limit)}
	w.mu.Lock() // a first tick waits for w.timer to be set
	w.timer = time.AfterFunc(w.period, w.fire)
	w.mu.Unlock()
	return w
}

func tickOf(limit time.Duration) time.Duration {
	return max(limit/watchdogTicks, time.Millisecond)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if n := w.reads.Load(); n != w.seen {
		w.seen, w.quiet = n, 0
	} else {
		w.quiet++
	}
	if w.quiet >= watchdogTicks {
		w.fired.Store(true)
		w.cancel()
		return
	}
	w.timer.Reset(w.period)
}

// kick notes a read that brought bytes: the allowance starts over.
func (w *watchdog) kick() { w.reads.Add(1) }

// reset sets a new allowance counted from now.
func (w *watchdog) reset(limit time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.period, w.seen, w.quiet = tickOf(limit), w.reads.Load(), 0
	w.timer.Reset(w.period)
}

// stop ends the watch (the attempt is over or is retried).
func (w *watchdog) stop() {
	w.mu.Lock()
	w.done = true
	w.timer.Stop()
	w.mu.Unlock()
}

// timedOut reports whether the watchdog cancelled the attempt.
func (w *watchdog) timedOut() bool { return w.fired.Load() }
