package relay

import (
	"sync/atomic"
	"time"
)

// watchdog cancels an attempt after a stretch of silence: no response
// within the response (or first-byte) timeout, then no stream bytes within
// the idle timeout.
//
// Moving a runtime timer takes a lock and a heap fix, and a stream reads
// dozens of times, so a read only notes the time (kick). When the timer
// fires it re-arms itself for what is left of the allowance since the last
// kick, and cancels only when the allowance has really run out: a stream
// that keeps reading costs one timer move per allowance, not one per read.
type watchdog struct {
	timer  *time.Timer
	cancel func()
	base   time.Time    // monotonic origin of last
	limit  atomic.Int64 // the allowance, ns
	last   atomic.Int64 // ns since base of the last kick (or reset)
	fired  atomic.Bool
}

func newWatchdog(limit time.Duration, cancel func()) *watchdog {
	w := &watchdog{cancel: cancel, base: time.Now()}
	w.limit.Store(int64(limit))
	w.timer = time.AfterFunc(limit, w.fire)
	return w
}

func (w *watchdog) fire() {
	quiet := time.Since(w.base) - time.Duration(w.last.Load())
	if left := time.Duration(w.limit.Load()) - quiet; left > 0 {
		w.timer.Reset(left)
		return
	}
	w.fired.Store(true)
	w.cancel()
}

// kick restarts the allowance (a read that brought bytes). No timer move.
func (w *watchdog) kick() { w.last.Store(int64(time.Since(w.base))) }

// reset sets a new allowance counted from now.
func (w *watchdog) reset(limit time.Duration) {
	w.limit.Store(int64(limit))
	w.kick()
	w.timer.Reset(limit)
}

// stop ends the watch (the attempt is over or is retried).
func (w *watchdog) stop() { w.timer.Stop() }

// timedOut reports whether the watchdog cancelled the attempt.
func (w *watchdog) timedOut() bool { return w.fired.Load() }
