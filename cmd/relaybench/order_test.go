package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ccrelay and --before take turns going first, and every target still
// goes first in turn.
func TestRoundOrderAlternatesTheTwoBuilds(t *testing.T) {
	ts := []*target{{name: "direct"}, {name: "baseline"}, {name: "ccrelay"}, {name: "before"}}
	want := []string{
		"direct baseline ccrelay before",
		"baseline before ccrelay direct",
		"ccrelay before direct baseline",
		"before direct baseline ccrelay",
		"direct baseline ccrelay before",
		"baseline before ccrelay direct",
	}
	relayFirst := 0
	for r, w := range want {
		var names []string
		for _, tg := range roundOrder(ts, r) {
			names = append(names, tg.name)
		}
		got := strings.Join(names, " ")
		if got != w {
			t.Errorf("round %d: %s, want %s", r, got, w)
		}
		if strings.Index(got, "ccrelay") < strings.Index(got, "before") {
			relayFirst++
		}
	}
	if relayFirst != len(want)/2 {
		t.Errorf("ccrelay ahead of before in %d rounds of %d, want half", relayFirst, len(want))
	}
	if got := roundOrder(ts[:3], 1); got[0].name != "baseline" || len(got) != 3 {
		t.Errorf("without before the order is the rotation: %v", got)
	}
	if ts[2].name != "ccrelay" || ts[3].name != "before" {
		t.Error("roundOrder changed its argument")
	}
}

// The run's bound grows with what it is asked to measure: six rounds of the
// full set with --before took 13 minutes and were cut off at a fixed 12.
func TestRunLimitScalesWithTheRounds(t *testing.T) {
	full := options{rounds: 3, plainDur: 2 * time.Second, streamDur: 3 * time.Second}
	if got := runLimit(full); got < 12*time.Minute+3*time.Minute {
		t.Errorf("default full run bounded at %s", got)
	}
	long := options{rounds: 6, plainDur: 3 * time.Second, streamDur: 3 * time.Second, before: "/old"}
	// What it measures: 7 passes x 4 targets x (6x3 s + 4x3 s) = 14 min.
	if got := runLimit(long); got < 12*time.Minute+2*14*time.Minute {
		t.Errorf("6 rounds of 3 s with --before bounded at %s, want room for twice the 14 min it measures", got)
	}
	if runLimit(options{quick: true, rounds: 1, plainDur: 700 * time.Millisecond, streamDur: time.Second}) >= runLimit(full) {
		t.Error("--quick is bounded no tighter than a full run")
	}
}

// procState is the state letter of /proc/<pid>/stat ('T' when stopped).
func procState(t *testing.T, p *proc) byte {
	t.Helper()
	for range 100 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
		if err != nil {
			t.Skip("no /proc:", err)
		}
		st := b[bytes.LastIndexByte(b, ')')+2]
		if st != 'R' { // a signal is delivered asynchronously; R is in between
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 'R'
}

// With --isolate only the measured target's proxy runs; resume continues all.
func TestIsolateStopsTheOtherProxies(t *testing.T) {
	var ts []*target
	for _, name := range []string{"baseline", "ccrelay", "before"} {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Skip("no sleep:", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ts = append(ts, &target{name: name, proc: &proc{name: name, cmd: cmd}})
	}
	ts = append([]*target{{name: "direct"}}, ts...)
	b := &bench{o: options{isolate: true}, targets: ts}
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var got []byte
			for _, tg := range ts[1:] {
				got = append(got, procState(t, tg.proc))
			}
			if string(got) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("states %s, want %s (T = stopped)", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.focus(ts[2])
	wait("TST")
	b.focus(ts[0]) // direct: no proxy of its own runs
	wait("TTT")
	b.focus(ts[3])
	wait("TTS")
	b.resume()
	wait("SSS")

	b.o.isolate = false
	b.focus(ts[1])
	wait("SSS")
}
