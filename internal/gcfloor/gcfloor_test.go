package gcfloor_test

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/gcfloor"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 16 * mb, 400},        // nothing live yet: the runtime's minimum, scaled, is the floor
		{1 * mb, 16 * mb, 400},   // 1 MB * 16 would pass the floor; capped where 4 MB * p/100 = 16 MB
		{4 * mb, 16 * mb, 300},   // 4 MB * (1+3) = 16 MB
		{6 * mb, 16 * mb, 166},   // 6 MB * 2.66 ≈ 16 MB
		{8 * mb, 16 * mb, 100},   // Go's default already reaches the floor
		{200 * mb, 16 * mb, 100}, // above the floor nothing changes
		{1 * mb, 4 * mb, 100},    // a floor at Go's own minimum is Go's default
		{1 * mb, 2 * mb, 100},    // and one below it too
		{10 * mb, 64 * mb, 540},  // 10 MB * 6.4 = 64 MB
		{1 * mb, 64 * mb, 1600},  // capped: 4 MB * 16 = 64 MB
		{100 * mb, 1 << 30, 924}, // 100 MB * 10.24 = 1 GB
	} {
		if got := gcfloor.Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d MB live, %d MB floor) = %d, want %d", c.live/mb, c.floor/mb, got, c.want)
		}
	}
}

func gogc() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

var sink []byte

// churn allocates n bytes of 4 KB objects that die at once, as a relay's
// requests do, and returns how many collections ran meanwhile.
func churn(n int) uint32 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n/4096; i++ {
		sink = make([]byte, 4096)
	}
	runtime.ReadMemStats(&after)
	return after.NumGC - before.NumGC
}

func noEnv(string) string { return "" }

// waitGOGC runs collections until the cleanup after one of them has set
// GOGC to want (cleanups run on their own goroutine after the cycle).
func waitGOGC(t *testing.T, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d, want %d", gogc(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// The floor is the point: the same garbage costs far fewer collections.
// Counted, not timed; the test binary runs nothing else meanwhile.
func TestFloorCutsCollections(t *testing.T) {
	debug.SetGCPercent(100)
	runtime.GC()
	without := churn(256 << 20)

	stop, on := gcfloor.Start(16<<20, noEnv)
	defer stop()
	if !on {
		t.Fatal("Start reported off with GOGC unset")
	}
	runtime.GC()
	with := churn(256 << 20)
	t.Logf("collections for 256 MB of 4 KB garbage: %d at Go's default, %d with a 16 MB floor", without, with)
	if with*2 >= without {
		t.Fatalf("with the floor %d collections, without %d: want fewer than half", with, without)
	}
}

// Above the floor the collector is Go's own again, and the floor comes back
// when the live heap shrinks.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	stop, _ := gcfloor.Start(16<<20, noEnv)
	defer stop()
	waitGOGC(t, 400)

	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitGOGC(t, 100)
	runtime.KeepAlive(live)
	live = nil
	waitGOGC(t, 400)
}

func TestGOGCInTheEnvironmentTurnsTheFloorOff(t *testing.T) {
	debug.SetGCPercent(100)
	stop, on := gcfloor.Start(16<<20, func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	})
	defer stop()
	if on {
		t.Fatal("Start reported on with GOGC set")
	}
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC = %d with GOGC set in the environment; the floor must leave it alone", got)
	}
}

// Relays started in one process (tests, embedding) share one floor; the
// last stop hands the collector back to Go's default.
func TestStartsNest(t *testing.T) {
	stop1, _ := gcfloor.Start(16<<20, noEnv)
	stop2, _ := gcfloor.Start(16<<20, noEnv)
	waitGOGC(t, 400)
	stop1()
	stop1() // a second call of the same stop does nothing
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogc(); got != 400 {
		t.Fatalf("GOGC = %d after one of two stops, want the floor kept (400)", got)
	}
	stop2()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC = %d after the last stop, want Go's default 100", got)
	}
}

func TestFromEnv(t *testing.T) {
	for v, want := range map[string]uint64{"": 0, "0": 0, "16": 16 << 20, "4096": 4096 << 20} {
		got, err := gcfloor.FromEnv(func(k string) string {
			if k == gcfloor.Env {
				return v
			}
			return ""
		})
		if err != nil || got != want {
			t.Errorf("%s=%q: %d, %v; want %d", gcfloor.Env, v, got, err, want)
		}
	}
	for _, v := range []string{"16MB", "-1", "1.5", " 16", "4097", "lots", "0x10"} {
		_, err := gcfloor.FromEnv(func(string) string { return v })
		if err == nil || !strings.Contains(err.Error(), gcfloor.Env) || !strings.Contains(err.Error(), "e.g. 16") {
			t.Errorf("%s=%q: err %v, want one naming the variable and an example", gcfloor.Env, v, err)
		}
	}
}
