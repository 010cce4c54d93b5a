// Package gcfloor keeps the garbage collector's heap goal from falling below
// a floor.
//
// Go starts a collection when the heap reaches twice what the last one left
// live (GOGC=100), and never below 4 MB. A relay's live heap is about 1 MB
// while every request allocates tens of KB that die at once (headers, bodies,
// usage rows), so at the 4 MB minimum it collects every ~100 requests, and at
// low concurrency each cycle also wakes idle threads for its mark workers.
// Above the floor nothing changes: once the live heap is half the floor or
// more, GOGC is Go's default again, so memory under many open streams grows
// as before.
//
// The floor trades memory for CPU: at 16 MB, relaybench measured 2-19% less
// CPU per request on the plain rows up to 16 concurrent (level at 64 with
// 100 KB bodies) and 9-19 MB more RSS (BENCHMARKS.md), so it is off unless
// CCRELAY_GC_FLOOR_MB sets it. The floor is kept by
// adjusting GOGC after each collection (a cleanup on a sentinel object runs
// once per cycle). An operator who sets GOGC has chosen the collector's
// pace, and the floor is then not used.
package gcfloor

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Env names the environment variable that sets the floor, in MB.
const Env = "CCRELAY_GC_FLOOR_MB"

// maxFloorMB bounds the floor: beyond this it is a memory setting, and
// GOMEMLIMIT is the tool for that.
const maxFloorMB = 4096

// FromEnv reads the floor from Env: 0 when unset or 0, an error naming the
// variable for anything but a whole number of MB up to 4096.
func FromEnv(getenv func(string) string) (floor uint64, err error) {
	v := getenv(Env)
	if v == "" {
		return 0, nil
	}
	var mb uint64
	if _, err := fmt.Sscan(v, &mb); err != nil || fmt.Sprint(mb) != v || mb > maxFloorMB {
		return 0, fmt.Errorf("%s=%q: want a whole number of MB from 0 (off) to %d, e.g. 16", Env, v, maxFloorMB)
	}
	return mb << 20, nil
}

// goMinimum is Go's own minimum heap goal at GOGC=100. The runtime scales it
// with GOGC, so the percent chosen here never exceeds floor/goMinimum*100
// (beyond that the runtime's minimum alone would pass the floor).
const goMinimum = 4 << 20

// base is the percent used when the live heap is large: Go's default.
const base = 100

// Percent returns the GOGC that puts the next heap goal at the floor for a
// live heap of live bytes, and never below Go's default: live*(1+p/100)
// reaches floor, and the runtime's own minimum (4 MB * p/100) stays within it.
func Percent(live, floor uint64) int {
	if floor <= goMinimum {
		return base
	}
	if live == 0 {
		live = 1
	}
	p := uint64(base)
	if r := floor * 100 / live; r > 100+base {
		p = r - 100
	}
	if limit := floor * 100 / goMinimum; p > limit {
		p = limit
	}
	if p < base {
		p = base
	}
	return int(p)
}

var (
	mu     sync.Mutex
	users  int
	active *tuner
)

type tuner struct {
	floor   uint64
	stopped atomic.Bool
	last    int
	sample  []metrics.Sample
}

// Start keeps the heap goal at floor or above until the returned function is
// called, and reports whether it did (false when GOGC is set in the
// environment, which getenv reads; nil means os.Getenv). Starts nest: the
// first one sets the floor, the last stop gives GOGC back to Go's default.
func Start(floor uint64, getenv func(string) string) (stop func(), on bool) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("GOGC") != "" {
		return func() {}, false
	}
	mu.Lock()
	defer mu.Unlock()
	users++
	if active == nil {
		t := &tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		active = t
		t.adjustLocked()
		t.arm()
	}
	var once sync.Once
	return func() { once.Do(release) }, true
}

func release() {
	mu.Lock()
	defer mu.Unlock()
	users--
	if users > 0 || active == nil {
		return
	}
	active.stopped.Store(true)
	active = nil
	debug.SetGCPercent(base)
}

// sentinel is allocated once per cycle; its cleanup runs after the
// collection that finds it unreachable. It holds a pointer so the runtime
// does not batch it with other tiny objects (whose cleanups may never run).
type sentinel struct{ _ *byte }

func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets GOGC for the live heap the last collection left.
func (t *tuner) adjust() {
	mu.Lock()
	defer mu.Unlock()
	t.adjustLocked()
}

func (t *tuner) adjustLocked() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.floor)
	if t.stopped.Load() || p == t.last {
		return
	}
	t.last = p
	debug.SetGCPercent(p)
}
