package main

// The rows beyond plain requests and streams: access logging, metrics, a
// thousand named keys, memory and start-up.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// logging runs the c=64 4 KB load against ccrelay at warn and at info (one
// access-log line per request, written to a file) in alternating rounds.
func (b *bench) logging(ctx context.Context) error {
	info, err := startRelay(b.bin, b.dir, "ccrelay-info", relayConfig{logLevel: "info", accounts: b.o.accounts, upstream: "http://" + b.upstream.addr})
	if err != nil {
		return err
	}
	defer info.stop()
	if err := waitHealthy(ctx, info, 15*time.Second); err != nil {
		return err
	}
	ti := newTarget("ccrelay-info", info.addr, info, b.upstream)
	tw := b.targets[2]
	bodies := smallBodies(256, false)
	const conc = 64
	runPlain(ctx, ti, bodies, conc, b.warmup())
	runPlain(ctx, tw, bodies, conc, b.warmup())
	fi, _ := os.Stat(info.logPath)
	var size0 int64
	if fi != nil {
		size0 = fi.Size()
	}
	rw, ri := &plainRun{}, &plainRun{}
	for r := range b.o.rounds {
		for _, t := range rotate([]*target{tw, ti}, r) {
			res := runPlain(ctx, t, bodies, conc, b.o.plainDur)
			if t == ti {
				ri.merge(res)
			} else {
				rw.merge(res)
			}
		}
	}
	res := &LoggingResult{Body: "4 KB", Concurrency: conc, Warn: plainStats(rw, nil), Info: plainStats(ri, nil)}
	if fi, _ := os.Stat(info.logPath); fi != nil && ri.ok > 0 {
		res.LogBytesPerRq = float64(fi.Size()-size0) / float64(ri.ok)
	}
	b.rep.Logging = res
	return ctx.Err()
}

// metrics runs the c=64 4 KB load against ccrelay with metrics off (the
// main target) and on (metrics_listen set) in alternating rounds.
func (b *bench) metrics(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	on, err := startRelay(b.bin, b.dir, "ccrelay-metrics", relayConfig{logLevel: "warn", accounts: b.o.accounts, upstream: "http://" + b.upstream.addr,
		metricsListen: fmt.Sprintf("127.0.0.1:%d", port)})
	if err != nil {
		return err
	}
	defer on.stop()
	if err := waitHealthy(ctx, on, 15*time.Second); err != nil {
		return err
	}
	tOn := newTarget("ccrelay-metrics", on.addr, on, b.upstream)
	tOff := b.targets[2]
	bodies := smallBodies(256, false)
	const conc = 64
	runPlain(ctx, tOn, bodies, conc, b.warmup())
	runPlain(ctx, tOff, bodies, conc, b.warmup())
	rOff, rOn := &plainRun{}, &plainRun{}
	for r := range b.o.rounds {
		for _, t := range rotate([]*target{tOff, tOn}, r) {
			res := runPlain(ctx, t, bodies, conc, b.o.plainDur)
			if t == tOn {
				rOn.merge(res)
			} else {
				rOff.merge(res)
			}
		}
	}
	b.rep.Metrics = &MetricsResult{Body: "4 KB", Concurrency: conc, Off: plainStats(rOff, nil), On: plainStats(rOn, nil)}
	return ctx.Err()
}

// benchKeys is how many [[keys]] the keys phase configures.
const benchKeys = 1000

// keys runs the c=64 4 KB plain load and a c=16 stream load against ccrelay
// with api_keys only (the main target) and against one with 1,000 named
// keys that all have limits and budgets (the load uses the last one), in
// alternating rounds.
func (b *bench) keys(ctx context.Context) error {
	kp, err := startRelay(b.bin, b.dir, "ccrelay-keys", relayConfig{logLevel: "warn", accounts: b.o.accounts, upstream: "http://" + b.upstream.addr, namedKeys: benchKeys})
	if err != nil {
		return err
	}
	defer kp.stop()
	if err := waitHealthy(ctx, kp, 15*time.Second); err != nil {
		return err
	}
	tKeys := newTarget("ccrelay-keys", kp.addr, kp, b.upstream)
	tOff := b.targets[2]
	const conc, sconc = 64, 16
	plain, streams := smallBodies(256, false), smallBodies(256, true)
	spec := streamSpec{events: 50}
	for _, t := range []*target{tOff, tKeys} {
		runPlain(ctx, t, plain, conc, b.warmup())
		runStreams(ctx, t, streams, spec, sconc, b.warmup())
	}
	pOff, pOn := &plainRun{}, &plainRun{}
	sOff, sOn := &streamRun{}, &streamRun{}
	for r := range b.o.rounds {
		for _, t := range rotate([]*target{tOff, tKeys}, r) {
			pr := runPlain(ctx, t, plain, conc, b.o.plainDur)
			sr := runStreams(ctx, t, streams, spec, sconc, b.o.streamDur)
			if t == tKeys {
				pOn.merge(pr)
				sOn.merge(sr)
			} else {
				pOff.merge(pr)
				sOff.merge(sr)
			}
		}
	}
	b.rep.Keys = &KeysResult{Keys: benchKeys, Body: "4 KB", Concurrency: conc, StreamConcurrency: sconc, Events: spec.events,
		APIKeys: plainStats(pOff, nil), Named: plainStats(pOn, nil), APIKeysStream: streamStats(sOff, nil), NamedStream: streamStats(sOn, nil)}
	return ctx.Err()
}

// memory measures a fresh ccrelay and a fresh baseline: after start, after a
// little traffic, at 256 active streams, then with 256 and 2000 idle ones.
// memory measures each proxy against the plain-HTTP upstream (the
// benchmark's own, HTTP/1.1: a connection per stream), then again against a
// TLS upstream, which Go's transport reaches over HTTP/2 as it reaches every
// real provider (streams share connections).
func (b *bench) memory(ctx context.Context) error {
	tlsUp, err := startRole("upstream-tls", "upstream", tlsDirEnv+"="+b.dir)
	if err != nil {
		return err
	}
	defer tlsUp.stop()
	trust := "SSL_CERT_FILE=" + filepath.Join(b.dir, tlsCertFile)
	for _, up := range []struct{ label, url string }{
		{"", "http://" + b.upstream.addr},
		{", TLS upstream (HTTP/2)", "https://" + tlsUp.addr},
	} {
		for _, name := range []string{"ccrelay", "baseline"} {
			var p *proc
			var err error
			if name == "ccrelay" {
				p, err = startRelay(b.bin, b.dir, "ccrelay-mem", relayConfig{logLevel: "warn", accounts: b.o.accounts, upstream: up.url, env: []string{trust}})
				if err == nil {
					err = waitHealthy(ctx, p, 15*time.Second)
				}
			} else {
				p, err = startRole("baseline-mem", "baseline", "RELAYBENCH_TARGET="+up.url, trust)
			}
			if err != nil {
				p.stop()
				return err
			}
			row, err := b.memoryOf(ctx, name, p)
			p.stop()
			if err != nil {
				return err
			}
			row.Proxy += up.label
			b.rep.Memory = append(b.rep.Memory, row)
			b.logf("memory %s: peak 256 active %.1f MB, 256 idle %.1f MB, 2000 idle %.1f MB, %.1f KB/stream", row.Proxy, row.PeakActive256MB, row.Idle256MB, row.Idle2000MB, row.PerIdleKB)
		}
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func (b *bench) memoryOf(ctx context.Context, name string, p *proc) (MemRow, error) {
	row := MemRow{Proxy: name}
	time.Sleep(100 * time.Millisecond)
	rss, _, err := p.mem()
	if err != nil {
		return row, err
	}
	row.StartMB = mb(rss)
	t := newTarget(name+"-mem", p.addr, p, b.upstream)
	small, streamBodies := smallBodies(256, false), smallBodies(256, true)
	runPlain(ctx, t, small, 16, 300*time.Millisecond)
	runPlain(ctx, t, claudeCodeBodies(4, false), 16, 300*time.Millisecond)
	runStreams(ctx, t, streamBodies, streamSpec{events: 50}, 16, 300*time.Millisecond)
	rss, _, _ = p.mem()
	row.WarmMB = mb(rss)
	// One stream per worker: 256 at once, 20 ms apart, about a second.
	runStreams(ctx, t, streamBodies, streamSpec{events: 50, gap: 20 * time.Millisecond}, 256, time.Millisecond)
	_, hwm, _ := p.mem()
	row.PeakActive256MB = mb(hwm)

	hctx, cancel := context.WithCancel(ctx)
	idle := &idleStreams{cancel: cancel}
	defer idle.close()
	idle.open(hctx, t, streamBodies[0], 256, 64, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	rss256, hwm256, _ := p.mem()
	row.Idle256MB, row.Peak256MB = mb(rss256), mb(hwm256)
	idle.open(hctx, t, streamBodies[0], 2000-256, 128, 60*time.Second)
	time.Sleep(300 * time.Millisecond)
	rss2000, hwm2000, _ := p.mem()
	if b.o.holdIdle > 0 {
		fmt.Fprintf(os.Stderr, "relaybench: %s (pid %d, %s) holds %d idle streams for %s\n", name, p.pid(), p.addr, idle.ready.Load(), b.o.holdIdle)
		time.Sleep(b.o.holdIdle)
	}
	row.Idle2000MB, row.Peak2000MB = mb(rss2000), mb(hwm2000)
	row.Opened, row.FailedToOpen, row.FirstOpenError = idle.ready.Load(), idle.failed.Load(), idle.err
	if extra := row.Opened - 256; extra > 0 {
		row.PerIdleKB = float64(rss2000-rss256) / 1024 / float64(extra)
	}
	if row.Opened < 2000 {
		b.logf("memory %s: only %d of 2000 streams opened (%s)", name, row.Opened, row.FirstOpenError)
	}
	return row, ctx.Err()
}

// startup times exec -> healthy /health with 100 accounts, on a new database
// and again on the one that start created.
func (b *bench) startup(ctx context.Context) error {
	runs := 5
	if !b.o.quick {
		runs = 15
	}
	const accounts = 100
	var cold, warm []float64
	for i := range runs {
		db := filepath.Join(b.dir, fmt.Sprintf("startup-%d.db", i))
		for _, list := range []*[]float64{&cold, &warm} {
			t0 := time.Now()
			p, err := startRelay(b.bin, b.dir, "ccrelay-startup", relayConfig{logLevel: "warn", accounts: accounts, upstream: "http://" + b.upstream.addr, dbPath: db})
			if err != nil {
				return err
			}
			err = waitHealthy(ctx, p, 15*time.Second)
			took := time.Since(t0)
			p.stop()
			if err != nil {
				return err
			}
			*list = append(*list, float64(took.Microseconds())/1000)
		}
	}
	slices.Sort(cold)
	slices.Sort(warm)
	b.rep.Startup = &StartupResult{Accounts: accounts, Runs: runs,
		ColdP50Ms: cold[len(cold)/2], ColdMaxMs: cold[len(cold)-1], WarmP50Ms: warm[len(warm)/2], WarmMaxMs: warm[len(warm)-1]}
	return nil
}
