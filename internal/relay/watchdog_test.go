package relay

import (
	"sync/atomic"
	"testing"
	"time"
)

// waitFired polls until the watchdog cancelled (or gives up after 5 s).
func waitFired(t *testing.T, cancelled *atomic.Bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cancelled.Load() {
			return
		}
	}
	t.Fatal("the watchdog did not cancel a silent attempt")
}

func TestWatchdogCancelsAfterSilence(t *testing.T) {
	var cancelled atomic.Bool
	w := newWatchdog(30*time.Millisecond, func() { cancelled.Store(true) })
	defer w.stop()
	waitFired(t, &cancelled)
	if !w.timedOut() {
		t.Error("timedOut is false after the watchdog cancelled")
	}
}

func TestWatchdogKicksKeepItAlive(t *testing.T) {
	var cancelled atomic.Bool
	const limit = 200 * time.Millisecond
	w := newWatchdog(limit, func() { cancelled.Store(true) })
	defer w.stop()
	// Reads every 5 ms for five allowances: the timer fires several times
	// meanwhile and must re-arm each time.
	for end := time.Now().Add(5 * limit); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		w.kick()
		if cancelled.Load() {
			t.Fatal("cancelled although reads kept coming")
		}
	}
	// Then silence: it must end the attempt.
	waitFired(t, &cancelled)
}

func TestWatchdogResetSetsANewAllowance(t *testing.T) {
	var cancelled atomic.Bool
	w := newWatchdog(20*time.Millisecond, func() { cancelled.Store(true) })
	defer w.stop()
	w.reset(time.Hour) // e.g. first byte arrived: the idle timeout now applies
	time.Sleep(100 * time.Millisecond)
	if cancelled.Load() || w.timedOut() {
		t.Fatal("cancelled under the old, shorter allowance")
	}
	w.reset(10 * time.Millisecond)
	waitFired(t, &cancelled)
}

func TestWatchdogStopped(t *testing.T) {
	var cancelled atomic.Bool
	w := newWatchdog(10*time.Millisecond, func() { cancelled.Store(true) })
	w.stop()
	time.Sleep(50 * time.Millisecond)
	if cancelled.Load() {
		t.Fatal("a stopped watchdog cancelled")
	}
}
