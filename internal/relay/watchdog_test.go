package relay

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The watchdog's timers run on synctest's fake clock: each test states exact
// times, and none depends on how busy the machine is.

func TestWatchdogCancelsAfterSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Bool
		const limit = 30 * time.Second
		w := newWatchdog(limit, func() { cancelled.Store(true) })
		defer w.stop()
		time.Sleep(limit - time.Millisecond)
		synctest.Wait()
		if cancelled.Load() {
			t.Fatal("cancelled before the allowance ran out")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !cancelled.Load() || !w.timedOut() {
			t.Fatal("the watchdog did not cancel after exactly the allowance with no read")
		}
	})
}

func TestWatchdogKicksKeepItAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Bool
		const limit = 200 * time.Millisecond
		w := newWatchdog(limit, func() { cancelled.Store(true) })
		defer w.stop()
		// A read every 5 ms for five allowances: the timer ticks many times
		// meanwhile and must re-arm each time.
		for range 5 * limit / (5 * time.Millisecond) {
			w.kick()
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
			if cancelled.Load() {
				t.Fatal("cancelled although reads kept coming")
			}
		}
		// A read just short of the allowance after the last still counts,
		// and the allowance starts over from it.
		time.Sleep(limit - limit/watchdogTicks - time.Millisecond)
		w.kick()
		time.Sleep(limit - time.Millisecond)
		synctest.Wait()
		if cancelled.Load() {
			t.Fatal("cancelled within the allowance that the last read started")
		}
		// Then silence: cut after the allowance and at most an eighth more.
		time.Sleep(limit/watchdogTicks + time.Millisecond)
		synctest.Wait()
		if !cancelled.Load() {
			t.Fatal("silence after the reads was not cut")
		}
	})
}

func TestWatchdogResetSetsANewAllowance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Bool
		w := newWatchdog(20*time.Millisecond, func() { cancelled.Store(true) })
		defer w.stop()
		w.reset(time.Hour) // e.g. first byte arrived: the idle timeout now applies
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if cancelled.Load() || w.timedOut() {
			t.Fatal("cancelled under the old, shorter allowance")
		}
		w.reset(10 * time.Millisecond)
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if !cancelled.Load() {
			t.Fatal("the new, shorter allowance did not apply")
		}
	})
}

func TestWatchdogStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Bool
		w := newWatchdog(10*time.Millisecond, func() { cancelled.Store(true) })
		w.stop()
		time.Sleep(time.Hour)
		synctest.Wait()
		if cancelled.Load() {
			t.Fatal("a stopped watchdog cancelled")
		}
	})
}
