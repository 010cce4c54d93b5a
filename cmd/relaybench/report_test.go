package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// Rows measured against a --before build get their own table and a check
// each, which fails past 3% more CPU.
func TestReportAgainstBefore(t *testing.T) {
	r := &Report{
		Plain: []PlainRow{{Body: "4 KB", Concurrency: 64, Relay: PlainStats{RPS: 1000, CPUUsPerReq: 100, SyscallsPerReq: 9, SwitchesPerReq: 12.5},
			Before: &PlainStats{RPS: 1000, CPUUsPerReq: 99, SyscallsPerReq: 10, SwitchesPerReq: 12.25}, RelayVsBefore: 1, CPUVsBefore: 100.0 / 99}},
		Streams: []StreamRow{{GapMs: 0, Concurrency: 16, Relay: StreamStats{Streams: 100, CPUUsPerStream: 110},
			Before: &StreamStats{Streams: 100, CPUUsPerStream: 100}, CPUVsBefore: 1.1}},
	}
	r.checks()
	var buf bytes.Buffer
	r.writeMarkdown(&buf)
	out := buf.String()
	for _, want := range []string{"Against --before", "| plain 4 KB | 64 | 1000 / 1000 req/s | 1.00x | 99 / 100 µs/req | 1.010x | - | 10.0 / 9.0 | 12.25 / 12.50 |", "| streams 0 ms | 16 | 100 / 100 streams |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	pass := map[string]bool{}
	for _, c := range r.Checks {
		if strings.Contains(c.What, "--before") {
			pass[c.What] = c.Pass
		}
	}
	if !pass["plain 4 KB c=64 CPU per request vs --before"] || pass["streams c=16, 0 ms CPU per stream vs --before"] {
		t.Fatalf("checks against --before: %v", pass)
	}

	// With three rounds or more, the check reads the median of the
	// per-round ratios: one disturbed round does not decide it, and a
	// build that is slower in most rounds fails however the rest go.
	for _, c := range []struct {
		rounds []float64
		pass   bool
		cell   string
	}{
		{[]float64{1.01, 0.99, 1.20, 1.02}, true, "1.015x (0.99-1.20x)"},
		{[]float64{1.05, 1.04, 0.90}, false, "1.040x (0.90-1.05x)"},
	} {
		r = &Report{Plain: []PlainRow{{Body: "4 KB", Concurrency: 1, Relay: PlainStats{RPS: 1000, CPUUsPerReq: 100},
			Before: &PlainStats{RPS: 1000, CPUUsPerReq: 100}, RelayVsBefore: 1, CPUVsBefore: 1.0, CPUVsBeforeRounds: c.rounds}}}
		r.checks()
		buf.Reset()
		r.writeMarkdown(&buf)
		if !strings.Contains(buf.String(), "| "+c.cell+" |") {
			t.Errorf("rounds %v: no cell %q in\n%s", c.rounds, c.cell, buf.String())
		}
		for _, ch := range r.Checks {
			if strings.Contains(ch.What, "--before") && ch.Pass != c.pass {
				t.Errorf("rounds %v: check %q passed=%v, want %v", c.rounds, ch.Value, ch.Pass, c.pass)
			}
		}
	}

	// Without --before, no such table.
	r = &Report{Plain: []PlainRow{{Body: "4 KB", Concurrency: 64}}}
	buf.Reset()
	r.writeMarkdown(&buf)
	if strings.Contains(buf.String(), "--before") {
		t.Fatal("a table against --before without a before build")
	}
}

// A process's context switches are counted over all its threads, and grow
// as its threads sleep and wake.
func TestTaskSwitchesCountsThisProcess(t *testing.T) {
	before := taskSwitches(os.Getpid())
	for range 20 {
		time.Sleep(time.Millisecond) // the thread parks: a switch each
	}
	if after := taskSwitches(os.Getpid()); after < before+20 {
		t.Fatalf("context switches %d -> %d over 20 sleeps", before, after)
	}
	if taskSwitches(-1) != 0 {
		t.Fatal("switches of no process")
	}
}

// sumFields reads both /proc shapes relaybench uses: io ("syscr: 12") and
// status ("voluntary_ctxt_switches:\t7"), and only the keys asked for.
func TestSumFields(t *testing.T) {
	io := []byte("rchar: 900\nwchar: 800\nsyscr: 12\nsyscw: 30\nread_bytes: 4096\n")
	if got := sumFields(io, "syscr", "syscw"); got != 42 {
		t.Errorf("io: %d, want 42", got)
	}
	status := []byte("Name:\tccrelay\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n")
	if got := sumFields(status, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"); got != 10 {
		t.Errorf("status: %d, want 10", got)
	}
	if got := sumFields(status, "syscr"); got != 0 {
		t.Errorf("absent key: %d", got)
	}
}
