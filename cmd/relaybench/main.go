// Command relaybench measures ccrelay against a bare Go reverse proxy and
// against no proxy at all, on loopback, and prints one table of ratios.
//
// It starts three processes: a lean fake Anthropic upstream
// (fakeupstream.Fast), a bare httputil.ReverseProxy in front of it (the
// baseline) and `ccrelay serve` on a generated config (several accounts, relay
// key auth, sticky sessions, usage in SQLite, log_level warn). The load
// generator runs in this process and drives direct, baseline and ccrelay in
// alternating rounds; CPU and memory are each proxy process's own, read from
// /proc. Every phase is bounded in time.
//
//	go run ./cmd/relaybench --quick        # about 75 seconds
//	go run ./cmd/relaybench                # about five minutes
//	go run ./cmd/relaybench --json > bench.json
//	go run ./cmd/relaybench usagedb        # the usage database at scale (see usagedb.go)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick     bool
	json      bool
	ccrelay   string
	only      string
	rounds    int
	isolate   bool
	plainDur  time.Duration
	streamDur time.Duration
	accounts  int
	keep      bool
	verbose   bool
	filter    *regexp.Regexp
	holdIdle  time.Duration
	jsonOut   string
	// before is an earlier ccrelay build measured in the same rounds as
	// the one under test (plain and stream phases), for before/after ratios
	// that do not depend on how busy the machine was between two runs.
	before string
}

func main() {
	if role := os.Getenv("RELAYBENCH_ROLE"); role != "" {
		if err := runRole(role); err != nil {
			fmt.Fprintln(os.Stderr, "relaybench "+role+":", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "usagedb" {
		if err := runUsageDB(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "relaybench usagedb:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short run (about 75 seconds) instead of the full one (about five minutes)")
	flag.BoolVar(&o.json, "json", false, "print the report as JSON instead of markdown tables")
	flag.StringVar(&o.jsonOut, "json-out", "", "also write the JSON report to this file")
	flag.StringVar(&o.ccrelay, "ccrelay", "", "ccrelay binary to measure (default: go build ./cmd/ccrelay of this module)")
	flag.StringVar(&o.before, "before", "", "an earlier ccrelay binary to measure in the same rounds (plain and streams): each row then also gives ccrelay against it")
	flag.StringVar(&o.only, "only", "", "comma-separated phases to run: plain,streams,memory,startup,logging,metrics,keys (default all)")
	flag.BoolVar(&o.isolate, "isolate", false, "in the plain and stream rounds, stop (SIGSTOP) every proxy but the one measured, so one's background work cannot run in another's window")
	flag.IntVar(&o.rounds, "rounds", 0, "rounds per scenario (default 1 quick, 3 full)")
	flag.DurationVar(&o.plainDur, "plain-duration", 0, "one plain-request run per target and round (default 0.7s quick, 2s full)")
	flag.DurationVar(&o.streamDur, "stream-duration", 0, "one stream run per target and round (default 1s quick, 3s full)")
	flag.IntVar(&o.accounts, "accounts", 4, "accounts in ccrelay's config")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, databases)")
	flag.BoolVar(&o.verbose, "v", false, "print progress and process ids to stderr")
	flag.DurationVar(&o.holdIdle, "hold-idle", 0, "in the memory phase, keep the 2000 idle streams open this long (to inspect the process)")
	filter := flag.String("filter", "", "run only the plain and stream scenarios whose name matches this regexp (names: plain/4KB/c=64, plain/100KB/c=1, streams/20ms/c=256, streams/convert-m2r/0ms/c=16, streams/convert-r2m/20ms/c=256, streams/convert-m2g/0ms/c=16, ...)")
	flag.Parse()
	if *filter != "" {
		re, err := regexp.Compile(*filter)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relaybench: --filter:", err)
			os.Exit(2)
		}
		o.filter = re
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}

type bench struct {
	o        options
	dir      string
	bin      string
	upstream *proc
	targets  []*target // direct, baseline, ccrelay, and "before" with --before
	rep      *Report
}

func (b *bench) logf(format string, args ...any) {
	if b.o.verbose {
		fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

func run(o options) error {
	if o.rounds == 0 {
		o.rounds = map[bool]int{true: 1, false: 3}[o.quick]
	}
	if o.plainDur == 0 {
		o.plainDur = map[bool]time.Duration{true: 700 * time.Millisecond, false: 2 * time.Second}[o.quick]
	}
	if o.streamDur == 0 {
		o.streamDur = map[bool]time.Duration{true: time.Second, false: 3 * time.Second}[o.quick]
	}
	phases := map[string]bool{}
	for _, p := range strings.Split(o.only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			phases[p] = true
		}
	}
	want := func(p string) bool { return len(phases) == 0 || phases[p] }

	// The whole run is bounded whatever happens to a child.
	limit := runLimit(o)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "relaybench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b := &bench{o: o, dir: dir, bin: o.ccrelay}
	b.rep = &Report{Date: time.Now().Format("2006-01-02 15:04 MST"), Machine: machine(), Mode: map[bool]string{true: "quick", false: "full"}[o.quick],
		Accounts: o.accounts, Rounds: o.rounds, PlainSeconds: o.plainDur.Seconds(), StreamSeconds: o.streamDur.Seconds()}
	start := time.Now()
	if b.bin == "" {
		b.logf("building ccrelay")
		if b.bin, err = buildRelay(ctx, dir); err != nil {
			return err
		}
	}
	defer b.close()
	mark := markCPU()
	if err := b.setup(ctx); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"plain", b.plain}, {"streams", b.streams}, {"logging", b.logging}, {"metrics", b.metrics}, {"keys", b.keys}, {"memory", b.memory}, {"startup", b.startup},
	}
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		b.logf("phase %s", s.name)
		if err := s.fn(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%s: %w (the whole run is bounded at %s, from --rounds and the durations)", s.name, err, limit)
			}
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.close() // reaps the children, so their CPU counts as ours
	b.rep.OtherLoadCores = mark.otherCores(markCPU())
	b.rep.checks()
	b.rep.WallSeconds = time.Since(start).Seconds()
	js, err := json.MarshalIndent(b.rep, "", "  ")
	if err != nil {
		return err
	}
	if o.jsonOut != "" {
		if err := os.WriteFile(o.jsonOut, append(js, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.json {
		_, err := os.Stdout.Write(append(js, '\n'))
		return err
	}
	b.rep.writeMarkdown(os.Stdout)
	return nil
}

// setup starts the fake upstream, the baseline and the ccrelay under test.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.upstream, err = startRole("upstream", "upstream"); err != nil {
		return err
	}
	base, err := startRole("baseline", "baseline", "RELAYBENCH_TARGET=http://"+b.upstream.addr)
	if err != nil {
		return err
	}
	relay, err := startRelay(b.bin, b.dir, "ccrelay", relayConfig{logLevel: "warn", accounts: b.o.accounts, openaiAccounts: b.o.accounts, geminiAccounts: b.o.accounts, upstream: "http://" + b.upstream.addr})
	if err != nil {
		base.stop()
		return err
	}
	b.targets = []*target{newTarget("direct", b.upstream.addr, nil, b.upstream), newTarget("baseline", base.addr, base, b.upstream), newTarget("ccrelay", relay.addr, relay, b.upstream)}
	if err := waitHealthy(ctx, relay, 15*time.Second); err != nil {
		return err
	}
	b.logf("upstream pid %d, baseline pid %d, ccrelay pid %d (%s)", b.upstream.pid(), base.pid(), relay.pid(), relay.addr)
	if b.o.before == "" {
		return nil
	}
	before, err := startRelay(b.o.before, b.dir, "ccrelay-before", relayConfig{logLevel: "warn", accounts: b.o.accounts, openaiAccounts: b.o.accounts, geminiAccounts: b.o.accounts, upstream: "http://" + b.upstream.addr})
	if err != nil {
		return fmt.Errorf("--before: %w", err)
	}
	b.targets = append(b.targets, newTarget("before", before.addr, before, b.upstream))
	if err := waitHealthy(ctx, before, 15*time.Second); err != nil {
		return fmt.Errorf("--before: %w", err)
	}
	b.logf("before pid %d (%s)", before.pid(), before.addr)
	return nil
}

func (b *bench) close() {
	for _, t := range b.targets {
		t.proc.stop()
	}
	b.upstream.stop()
}

// runLimit bounds the whole run: the fixed parts (build, memory, start-up,
// usagedb) get 12 minutes (4 with --quick), and the plain and stream rounds
// three times what they were asked to measure (6 plain and 4 stream rows,
// each target once per round and once to warm up, and the converted stream
// rows, each of their legs likewise). A fixed limit cut long --rounds runs
// off in the middle, with nothing reported.
func runLimit(o options) time.Duration {
	base := 12 * time.Minute
	if o.quick {
		base = 4 * time.Minute
	}
	targets := 3
	if o.before != "" {
		targets = 4
	}
	perRound := 6*o.plainDur + 4*o.streamDur
	rows, legs := convertedRows(o.quick), targets
	converted := time.Duration(rows*legs) * o.streamDur
	return base + 3*time.Duration(o.rounds+1)*(time.Duration(targets)*perRound+converted)
}

// rotate returns ts starting at index r (mod len), so each target goes first in turn.
func rotate[T any](ts []T, r int) []T {
	r %= len(ts)
	return append(slices.Clone(ts[r:]), ts[:r]...)
}

// roundOrder is the order of the targets in round r: rotated, and with
// ccrelay and before (when there is one) swapped so that ccrelay runs ahead
// of before in even rounds and after it in odd ones. Rotation alone puts
// ccrelay ahead in three rotations of four, so an effect of the order
// (what ran just before, on a shared machine) would not cancel. Two runs of
// the same binary against itself read 1.039x and 1.005x at 4 KB c=1.
func roundOrder(ts []*target, r int) []*target {
	order := rotate(ts, r)
	i := slices.IndexFunc(order, func(t *target) bool { return t.name == "ccrelay" })
	j := slices.IndexFunc(order, func(t *target) bool { return t.name == "before" })
	if i < 0 || j < 0 {
		return order
	}
	relay, before := order[i], order[j]
	first, second := min(i, j), max(i, j)
	if r%2 == 0 {
		order[first], order[second] = relay, before
	} else {
		order[first], order[second] = before, relay
	}
	return order
}

// focus, with --isolate, lets only t's proxy run: the other targets' proxies
// are stopped (SIGSTOP) and t's continued. Work a proxy leaves behind a
// window (a usage flush, a collection) then runs at the start of its own
// next window instead of in another proxy's. resume continues them all.
func (b *bench) focus(t *target) {
	if !b.o.isolate {
		return
	}
	for _, o := range b.targets {
		if o.proc != nil && o != t {
			_ = syscall.Kill(o.proc.pid(), syscall.SIGSTOP)
		}
	}
	if t.proc != nil {
		_ = syscall.Kill(t.proc.pid(), syscall.SIGCONT)
	}
}

func (b *bench) resume() {
	for _, o := range b.targets {
		if o.proc != nil {
			_ = syscall.Kill(o.proc.pid(), syscall.SIGCONT)
		}
	}
}

func (b *bench) plain(ctx context.Context) error {
	defer b.resume()
	type body struct {
		name   string
		bodies [][]byte
	}
	bodies := []body{{"4 KB", smallBodies(256, false)}, {"100 KB Claude Code", claudeCodeBodies(16, false)}}
	for _, bd := range bodies {
		for _, conc := range []int{1, 16, 64} {
			if !b.selected(fmt.Sprintf("plain/%s/c=%d", strings.Fields(bd.name)[0]+strings.Fields(bd.name)[1], conc)) {
				continue
			}
			res := map[string]*plainRun{}
			for _, t := range b.targets {
				res[t.name] = &plainRun{}
				b.focus(t)
				runPlain(ctx, t, bd.bodies, conc, b.warmup()) // connections, caches, sessions bound
			}
			var paired []float64 // per round: ccrelay's CPU per request over before's
			for r := range b.o.rounds {
				round := map[string]plainRun{}
				for _, t := range roundOrder(b.targets, r) {
					b.focus(t)
					round[t.name] = runPlain(ctx, t, bd.bodies, conc, b.o.plainDur)
					res[t.name].merge(round[t.name])
				}
				if bf, ok := round["before"]; ok {
					paired = append(paired, ratio(round["ccrelay"].cpuPer(round["ccrelay"].ok), bf.cpuPer(bf.ok)))
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			row := PlainRow{Body: bd.name, BodyBytes: len(bd.bodies[0]), Concurrency: conc}
			d, bs, rl := plainStats(res["direct"], nil), plainStats(res["baseline"], res["direct"]), plainStats(res["ccrelay"], res["direct"])
			row.Direct, row.Baseline, row.Relay = d, bs, rl
			row.RelayVsDirect, row.RelayVsBaseline, row.BaselineVsDir = ratio(rl.RPS, d.RPS), ratio(rl.RPS, bs.RPS), ratio(bs.RPS, d.RPS)
			row.CPURatio = ratio(rl.CPUUsPerReq, bs.CPUUsPerReq)
			if run, ok := res["before"]; ok {
				bf := plainStats(run, res["direct"])
				row.Before = &bf
				row.RelayVsBefore, row.CPUVsBefore = ratio(rl.RPS, bf.RPS), ratio(rl.CPUUsPerReq, bf.CPUUsPerReq)
				row.CPUVsBeforeRounds = paired
			}
			b.rep.Plain = append(b.rep.Plain, row)
			b.logf("plain %s c=%d: direct %.0f/s baseline %.0f/s ccrelay %.0f/s (cpu %.0f vs %.0f µs/req)%s",
				bd.name, conc, d.RPS, bs.RPS, rl.RPS, bs.CPUUsPerReq, rl.CPUUsPerReq, errNote(d.FirstError, bs.FirstError, rl.FirstError))
		}
	}
	return nil
}

func (b *bench) selected(name string) bool {
	return b.o.filter == nil || b.o.filter.MatchString(name)
}

func errNote(errs ...string) string {
	for _, e := range errs {
		if e != "" {
			return "; first error: " + e
		}
	}
	return ""
}

func (b *bench) warmup() time.Duration {
	if b.o.quick {
		return 200 * time.Millisecond
	}
	return 500 * time.Millisecond
}

func plainStats(r, direct *plainRun) PlainStats {
	sortSample(r.lat)
	s := PlainStats{Requests: r.ok, Errors: r.errs, FirstError: r.firstErr,
		P50Us: us(r.lat.pct(50)), P99Us: us(r.lat.pct(99))}
	if r.elapsed > 0 {
		s.RPS = float64(r.ok) / r.elapsed.Seconds()
	}
	if r.ok > 0 && r.cpu > 0 {
		s.CPUUsPerReq = us(r.cpu) / float64(r.ok)
	}
	if r.ok > 0 {
		s.SyscallsPerReq = float64(r.syscalls) / float64(r.ok)
		s.SwitchesPerReq = float64(r.switches) / float64(r.ok)
	}
	if r.elapsed > 0 {
		s.BusyCores = float64(r.busy) / float64(r.elapsed)
	}
	if direct != nil {
		sortSample(direct.lat)
		s.AddedP50Us = s.P50Us - us(direct.lat.pct(50))
		s.AddedP99Us = s.P99Us - us(direct.lat.pct(99))
	}
	return s
}

func (b *bench) streams(ctx context.Context) error {
	defer b.resume()
	bodies := smallBodies(256, true)
	for _, gap := range []time.Duration{0, 20 * time.Millisecond} {
		spec := streamSpec{events: 50, gap: gap}
		for _, conc := range []int{16, 256} {
			if !b.selected(fmt.Sprintf("streams/%dms/c=%d", gap.Milliseconds(), conc)) {
				continue
			}
			res := map[string]*streamRun{}
			for _, t := range b.targets {
				res[t.name] = &streamRun{}
				b.focus(t)
				runStreams(ctx, t, bodies, streamSpec{events: 50}, conc, b.warmup())
			}
			var paired []float64 // per round: ccrelay's CPU per stream over before's
			for r := range b.o.rounds {
				round := map[string]streamRun{}
				for _, t := range roundOrder(b.targets, r) {
					b.focus(t)
					round[t.name] = runStreams(ctx, t, bodies, spec, conc, b.o.streamDur)
					res[t.name].merge(round[t.name])
				}
				if bf, ok := round["before"]; ok {
					rl := round["ccrelay"]
					paired = append(paired, ratio(rl.cpuPer(rl.streams+rl.bad), bf.cpuPer(bf.streams+bf.bad)))
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			d, bs, rl := streamStats(res["direct"], nil), streamStats(res["baseline"], res["direct"]), streamStats(res["ccrelay"], res["direct"])
			row := StreamRow{Events: spec.events, GapMs: float64(gap) / 1e6, Concurrency: conc, Direct: d, Baseline: bs, Relay: rl}
			if run, ok := res["before"]; ok {
				bf := streamStats(run, res["direct"])
				row.Before = &bf
				row.CPUVsBefore = ratio(rl.CPUUsPerStream, bf.CPUUsPerStream)
				row.CPUVsBeforeRounds = paired
			}
			b.rep.Streams = append(b.rep.Streams, row)
			b.logf("streams gap=%s c=%d: streams %d/%d/%d, added ttfe p50 %s/%s, added delay p99 %s/%s%s", gap, conc, d.Streams, bs.Streams, rl.Streams,
				fmtUs(bs.AddedTTFEP50Us), fmtUs(rl.AddedTTFEP50Us), fmtUs(bs.AddedDelayP99Us), fmtUs(rl.AddedDelayP99Us), errNote(d.FirstError, bs.FirstError, rl.FirstError))
		}
	}
	return b.convertedStreams(ctx)
}

func streamStats(r, direct *streamRun) StreamStats {
	sortSample(r.ttfe)
	sortSample(r.delay)
	s := StreamStats{Streams: r.streams, Bad: r.bad, Events: r.events, FirstError: r.firstErr,
		TTFEP50Us: us(r.ttfe.pct(50)), TTFEP99Us: us(r.ttfe.pct(99)),
		DelayP50Us: us(r.delay.pct(50)), DelayP99Us: us(r.delay.pct(99)),
		MaxGapUs: us(r.maxGap), Coalesced: r.coalesced}
	if n := r.streams + r.bad; n > 0 && r.cpu > 0 {
		s.CPUUsPerStream = us(r.cpu) / float64(n)
	}
	if n := r.streams + r.bad; n > 0 {
		s.SyscallsPerStream = float64(r.syscalls) / float64(n)
		s.SwitchesPerStream = float64(r.switches) / float64(n)
	}
	if r.elapsed > 0 {
		s.BusyCores = float64(r.busy) / float64(r.elapsed)
	}
	if direct != nil {
		sortSample(direct.ttfe)
		sortSample(direct.delay)
		s.AddedTTFEP50Us = s.TTFEP50Us - us(direct.ttfe.pct(50))
		s.AddedTTFEP99Us = s.TTFEP99Us - us(direct.ttfe.pct(99))
		s.AddedDelayP50Us = s.DelayP50Us - us(direct.delay.pct(50))
		s.AddedDelayP99Us = s.DelayP99Us - us(direct.delay.pct(99))
	}
	return s
}
