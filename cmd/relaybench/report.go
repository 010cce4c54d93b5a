package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured; --json prints it as is.
type Report struct {
	Date     string  `json:"date"`
	Machine  Machine `json:"machine"`
	Mode     string  `json:"mode"`
	Accounts int     `json:"accounts"`
	Rounds   int     `json:"rounds"`
	// PlainSeconds and StreamSeconds are the length of one measured run per target and round.
	PlainSeconds  float64     `json:"plain_seconds"`
	StreamSeconds float64     `json:"stream_seconds"`
	Plain         []PlainRow  `json:"plain,omitempty"`
	Streams       []StreamRow `json:"streams,omitempty"`
	// Converted are the streams the relay converts between APIs.
	Converted   []ConvertedRow `json:"converted,omitempty"`
	Memory      []MemRow       `json:"memory,omitempty"`
	Startup     *StartupResult `json:"startup,omitempty"`
	Logging     *LoggingResult `json:"logging,omitempty"`
	Metrics     *MetricsResult `json:"metrics,omitempty"`
	Keys        *KeysResult    `json:"keys,omitempty"`
	Checks      []Check        `json:"checks"`
	WallSeconds float64        `json:"wall_seconds"`
	// OtherLoadCores is the CPU other processes on the machine used during
	// the run, in cores: above a few tenths the numbers are disturbed.
	OtherLoadCores float64 `json:"other_load_cores"`
}

// Machine describes where the numbers come from.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	MemMB  int64  `json:"mem_mb"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// PlainStats is one target's result for a plain-request scenario.
type PlainStats struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"`
	P50Us    float64 `json:"p50_us"`
	P99Us    float64 `json:"p99_us"`
	// AddedP50Us and AddedP99Us are over direct.
	AddedP50Us float64 `json:"added_p50_us"`
	AddedP99Us float64 `json:"added_p99_us"`
	// CPUUsPerReq is the proxy process's CPU per request (0 for direct).
	CPUUsPerReq float64 `json:"cpu_us_per_req"`
	// SyscallsPerReq is the proxy process's read and write system calls per request.
	SyscallsPerReq float64 `json:"syscalls_per_req"`
	// SwitchesPerReq is the proxy process's context switches per request.
	SwitchesPerReq float64 `json:"switches_per_req"`
	// BusyCores is the CPU the benchmark's own processes (load generator,
	// fake upstream, proxy) used during the runs, in cores.
	BusyCores  float64 `json:"busy_cores"`
	FirstError string  `json:"first_error,omitempty"`
}

// PlainRow is one plain-request scenario.
type PlainRow struct {
	Body        string     `json:"body"`
	BodyBytes   int        `json:"body_bytes"`
	Concurrency int        `json:"concurrency"`
	Direct      PlainStats `json:"direct"`
	Baseline    PlainStats `json:"baseline"`
	Relay       PlainStats `json:"ccrelay"`
	// RelayVsDirect and RelayVsBaseline are throughput ratios.
	RelayVsDirect   float64 `json:"ccrelay_vs_direct"`
	RelayVsBaseline float64 `json:"ccrelay_vs_baseline"`
	BaselineVsDir   float64 `json:"baseline_vs_direct"`
	// CPURatio is ccrelay's CPU per request over the baseline's.
	CPURatio float64 `json:"cpu_ratio"`
	// Before is the --before build, measured in the same rounds; the
	// ratios are ccrelay's throughput and CPU per request over its.
	Before        *PlainStats `json:"before,omitempty"`
	RelayVsBefore float64     `json:"ccrelay_vs_before,omitempty"`
	CPUVsBefore   float64     `json:"cpu_vs_before,omitempty"`
	// CPUVsBeforeRounds is the same CPU ratio in each round alone (both
	// builds ran seconds apart in it); the check reads their median.
	CPUVsBeforeRounds []float64 `json:"cpu_vs_before_rounds,omitempty"`
}

// StreamStats is one target's result for a stream scenario.
type StreamStats struct {
	Streams int64 `json:"streams"`
	Bad     int64 `json:"bad"`
	Events  int64 `json:"events"`
	// TTFE: request sent -> first event read.
	TTFEP50Us      float64 `json:"ttfe_p50_us"`
	TTFEP99Us      float64 `json:"ttfe_p99_us"`
	AddedTTFEP50Us float64 `json:"added_ttfe_p50_us"`
	AddedTTFEP99Us float64 `json:"added_ttfe_p99_us"`
	// Delay: event stamped by the upstream -> read by the client.
	DelayP50Us      float64 `json:"delay_p50_us"`
	DelayP99Us      float64 `json:"delay_p99_us"`
	AddedDelayP50Us float64 `json:"added_delay_p50_us"`
	AddedDelayP99Us float64 `json:"added_delay_p99_us"`
	// MaxGapUs is the largest growth of an event's delay over the one before.
	MaxGapUs       float64 `json:"max_gap_us"`
	Coalesced      int64   `json:"coalesced"`
	CPUUsPerStream float64 `json:"cpu_us_per_stream"`
	// SyscallsPerStream is the proxy process's read and write system calls per stream.
	SyscallsPerStream float64 `json:"syscalls_per_stream"`
	// SwitchesPerStream is the proxy process's context switches per stream.
	SwitchesPerStream float64 `json:"switches_per_stream"`
	// BusyCores is the CPU the benchmark's own processes (load generator,
	// fake upstream, proxy) used during the runs, in cores.
	BusyCores  float64 `json:"busy_cores"`
	FirstError string  `json:"first_error,omitempty"`
}

// StreamRow is one stream scenario.
type StreamRow struct {
	Events      int         `json:"events"`
	GapMs       float64     `json:"gap_ms"`
	Concurrency int         `json:"concurrency"`
	Direct      StreamStats `json:"direct"`
	Baseline    StreamStats `json:"baseline"`
	Relay       StreamStats `json:"ccrelay"`
	// Before is the --before build, measured in the same rounds;
	// CPUVsBefore is ccrelay's CPU per stream over its.
	Before      *StreamStats `json:"before,omitempty"`
	CPUVsBefore float64      `json:"cpu_vs_before,omitempty"`
	// CPUVsBeforeRounds is that ratio in each round alone.
	CPUVsBeforeRounds []float64 `json:"cpu_vs_before_rounds,omitempty"`
}

// MemRow is the memory of one proxy, in a fresh process.
type MemRow struct {
	Proxy string `json:"proxy"`
	// StartMB is right after start; WarmMB after a little plain and stream traffic.
	StartMB float64 `json:"start_mb"`
	WarmMB  float64 `json:"warm_mb"`
	// PeakActive256MB is VmHWM after 256 concurrent streams (20 ms spacing).
	PeakActive256MB float64 `json:"peak_active_256_mb"`
	// Idle: streams open and silent after their third event.
	Idle256MB      float64 `json:"rss_idle_256_mb"`
	Peak256MB      float64 `json:"peak_256_mb"`
	Idle2000MB     float64 `json:"rss_idle_2000_mb"`
	Peak2000MB     float64 `json:"peak_2000_mb"`
	PerIdleKB      float64 `json:"per_idle_stream_kb"`
	Opened         int64   `json:"opened"`
	FailedToOpen   int64   `json:"failed_to_open"`
	FirstOpenError string  `json:"first_open_error,omitempty"`
}

// StartupResult is ccrelay's time from exec to a healthy /health.
type StartupResult struct {
	Accounts int `json:"accounts"`
	Runs     int `json:"runs"`
	// Cold starts create the database; warm ones reopen it.
	ColdP50Ms float64 `json:"cold_p50_ms"`
	ColdMaxMs float64 `json:"cold_max_ms"`
	WarmP50Ms float64 `json:"warm_p50_ms"`
	WarmMaxMs float64 `json:"warm_max_ms"`
}

// MetricsResult compares ccrelay with Prometheus metrics off and on
// (metrics_listen set: every request counted).
type MetricsResult struct {
	Body        string     `json:"body"`
	Concurrency int        `json:"concurrency"`
	Off         PlainStats `json:"off"`
	On          PlainStats `json:"on"`
}

// KeysResult compares ccrelay with api_keys only and with 1,000 named keys
// that all have limits and budgets.
type KeysResult struct {
	Keys              int         `json:"keys"`
	Body              string      `json:"body"`
	Concurrency       int         `json:"concurrency"`
	StreamConcurrency int         `json:"stream_concurrency"`
	Events            int         `json:"events"`
	APIKeys           PlainStats  `json:"api_keys"`
	Named             PlainStats  `json:"named"`
	APIKeysStream     StreamStats `json:"api_keys_stream"`
	NamedStream       StreamStats `json:"named_stream"`
}

// LoggingResult compares ccrelay at log_level warn and info (access log on).
type LoggingResult struct {
	Body          string     `json:"body"`
	Concurrency   int        `json:"concurrency"`
	Warn          PlainStats `json:"warn"`
	Info          PlainStats `json:"info"`
	LogBytesPerRq float64    `json:"log_bytes_per_req"`
}

// Check is one target of the issue, met or missed.
type Check struct {
	What   string `json:"what"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Pass   bool   `json:"pass"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemMB = kb >> 10
	}
	return m
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func fmtUs(v float64) string {
	switch {
	case v >= 10000 || v <= -10000:
		return fmt.Sprintf("%.1f ms", v/1000)
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

// writeMarkdown prints the report as markdown tables.
func (r *Report) writeMarkdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "relaybench %s, %s: %s, %d cores, %d MB, Linux %s, %s; %d ccrelay accounts, %d round(s) of %.1fs (plain) / %.1fs (streams) per target\n\n",
		r.Mode, r.Date, m.CPU, m.Cores, m.MemMB, m.Kernel, m.Go, r.Accounts, r.Rounds, r.PlainSeconds, r.StreamSeconds)
	if len(r.Plain) > 0 {
		tableStart(w, "Plain requests (closed loop; ratios are throughput; added latency is over direct; CPU is the proxy process's):",
			"| body | conc | direct req/s | ccrelay/direct | ccrelay/baseline | baseline/direct | added p50 base / ccrelay | added p99 base / ccrelay | CPU µs/req base / ccrelay | CPU ratio | bench CPU cores d / b / c | errors |",
			"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, p := range r.Plain {
			fmt.Fprintf(w, "| %s | %d | %.0f | %.2fx | %.2fx | %.2fx | %s / %s | %s / %s | %.0f / %.0f | %.2fx | %.1f / %.1f / %.1f | %d |\n",
				p.Body, p.Concurrency, p.Direct.RPS, p.RelayVsDirect, p.RelayVsBaseline, p.BaselineVsDir,
				fmtUs(p.Baseline.AddedP50Us), fmtUs(p.Relay.AddedP50Us), fmtUs(p.Baseline.AddedP99Us), fmtUs(p.Relay.AddedP99Us),
				p.Baseline.CPUUsPerReq, p.Relay.CPUUsPerReq, p.CPURatio, p.Direct.BusyCores, p.Baseline.BusyCores, p.Relay.BusyCores,
				p.Direct.Errors+p.Baseline.Errors+p.Relay.Errors)
		}
		fmt.Fprintln(w)
	}
	if len(r.Streams) > 0 {
		tableStart(w, "Streams (50 events; added = over direct; gap = largest growth of an event's delay over the previous one's; coalesced = events read in one piece with the previous though sent > spacing/2 apart):",
			"| spacing | conc | added TTFE p50 base / ccrelay | added TTFE p99 base / ccrelay | added delivery p50 base / ccrelay | added delivery p99 base / ccrelay | max gap direct / base / ccrelay | coalesced direct / base / ccrelay | CPU µs/stream base / ccrelay | bench CPU cores d / b / c | bad |",
			"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, s := range r.Streams {
			fmt.Fprintf(w, "| %g ms | %d | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s / %s | %d / %d / %d | %.0f / %.0f | %.1f / %.1f / %.1f | %d |\n",
				s.GapMs, s.Concurrency,
				fmtUs(s.Baseline.AddedTTFEP50Us), fmtUs(s.Relay.AddedTTFEP50Us), fmtUs(s.Baseline.AddedTTFEP99Us), fmtUs(s.Relay.AddedTTFEP99Us),
				fmtUs(s.Baseline.AddedDelayP50Us), fmtUs(s.Relay.AddedDelayP50Us), fmtUs(s.Baseline.AddedDelayP99Us), fmtUs(s.Relay.AddedDelayP99Us),
				fmtUs(s.Direct.MaxGapUs), fmtUs(s.Baseline.MaxGapUs), fmtUs(s.Relay.MaxGapUs),
				s.Direct.Coalesced, s.Baseline.Coalesced, s.Relay.Coalesced,
				s.Baseline.CPUUsPerStream, s.Relay.CPUUsPerStream, s.Direct.BusyCores, s.Baseline.BusyCores, s.Relay.BusyCores,
				s.Direct.Bad+s.Baseline.Bad+s.Relay.Bad)
		}
		fmt.Fprintln(w)
	}
	r.writeConverted(w)
	r.writeBefore(w)
	if len(r.Memory) > 0 {
		tableStart(w, "Memory (fresh process each; RSS from /proc/<pid>/status; idle streams are open and silent after their third event):",
			"| proxy | start | warm | peak, 256 active | RSS / peak, 256 idle | RSS / peak, 2000 idle | per extra idle stream | opened |",
			"|---|---:|---:|---:|---:|---:|---:|---:|")
		for _, m := range r.Memory {
			fmt.Fprintf(w, "| %s | %.1f MB | %.1f MB | %.1f MB | %.1f / %.1f MB | %.1f / %.1f MB | %.1f KB | %d |\n",
				m.Proxy, m.StartMB, m.WarmMB, m.PeakActive256MB, m.Idle256MB, m.Peak256MB, m.Idle2000MB, m.Peak2000MB, m.PerIdleKB, m.Opened)
		}
		fmt.Fprintln(w)
	}
	if s := r.Startup; s != nil {
		fmt.Fprintf(w, "Start-up to a healthy /health with %d accounts (%d runs each): new database p50 %.1f ms (max %.1f), existing database p50 %.1f ms (max %.1f)\n\n",
			s.Accounts, s.Runs, s.ColdP50Ms, s.ColdMaxMs, s.WarmP50Ms, s.WarmMaxMs)
	}
	if l := r.Logging; l != nil {
		fmt.Fprintf(w, "Access log cost (%s, c=%d): log_level warn %.0f req/s, %.0f µs CPU/req; info %.0f req/s, %.0f µs CPU/req (%.2fx throughput, +%.0f µs CPU/req, %.0f log bytes/req)\n\n",
			l.Body, l.Concurrency, l.Warn.RPS, l.Warn.CPUUsPerReq, l.Info.RPS, l.Info.CPUUsPerReq, ratio(l.Info.RPS, l.Warn.RPS), l.Info.CPUUsPerReq-l.Warn.CPUUsPerReq, l.LogBytesPerRq)
	}
	if m := r.Metrics; m != nil {
		fmt.Fprintf(w, "Metrics cost (%s, c=%d): off %.0f req/s, %.0f µs CPU/req; on %.0f req/s, %.0f µs CPU/req (%.2fx throughput)\n\n",
			m.Body, m.Concurrency, m.Off.RPS, m.Off.CPUUsPerReq, m.On.RPS, m.On.CPUUsPerReq, ratio(m.On.RPS, m.Off.RPS))
	}
	if k := r.Keys; k != nil {
		fmt.Fprintf(w, "Named keys cost (%d keys with limits and budgets vs api_keys only): plain %s c=%d %.0f → %.0f req/s (%.2fx), %.0f → %.0f µs CPU/req; streams of %d events c=%d %d → %d streams in equal time (%.2fx), TTFE p50 %.0f → %.0f µs, %.0f → %.0f µs CPU/stream\n\n",
			k.Keys, k.Body, k.Concurrency, k.APIKeys.RPS, k.Named.RPS, ratio(k.Named.RPS, k.APIKeys.RPS), k.APIKeys.CPUUsPerReq, k.Named.CPUUsPerReq,
			k.Events, k.StreamConcurrency, k.APIKeysStream.Streams, k.NamedStream.Streams, ratio(float64(k.NamedStream.Streams), float64(k.APIKeysStream.Streams)),
			k.APIKeysStream.TTFEP50Us, k.NamedStream.TTFEP50Us,
			k.APIKeysStream.CPUUsPerStream, k.NamedStream.CPUUsPerStream)
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "| target | goal | measured | |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, c := range r.Checks {
			mark := "met"
			if !c.Pass {
				mark = "MISSED"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.What, c.Target, c.Value, mark)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "wall time %.0fs; other processes used %.2f of %d cores meanwhile", r.WallSeconds, r.OtherLoadCores, r.Machine.Cores)
	if r.OtherLoadCores > 0.2 {
		fmt.Fprint(w, " (the machine was not quiet: treat the numbers with care)")
	}
	fmt.Fprintln(w)
}

// checks evaluates the targets against what was measured.
func (r *Report) checks() {
	add := func(what, goal, value string, pass bool) {
		r.Checks = append(r.Checks, Check{What: what, Target: goal, Value: value, Pass: pass})
	}
	for _, p := range r.Plain {
		if p.Concurrency != 64 {
			continue
		}
		add("plain "+p.Body+" c=64 throughput vs bare proxy", ">= 0.9x (aim 1.0x)", fmt.Sprintf("%.2fx", p.RelayVsBaseline), p.RelayVsBaseline >= 0.9)
		add("plain "+p.Body+" c=64 CPU per request vs bare proxy", "<= 1.1x", fmt.Sprintf("%.2fx (%.0f vs %.0f µs)", p.CPURatio, p.Relay.CPUUsPerReq, p.Baseline.CPUUsPerReq), p.CPURatio > 0 && p.CPURatio <= 1.1)
	}
	var streams, bad, errs int64
	for _, s := range r.Streams {
		streams += s.Relay.Streams
		bad += s.Relay.Bad
	}
	for _, c := range r.Converted {
		streams += c.Relay.Streams + c.Passthrough.Streams
		bad += c.Relay.Bad + c.Passthrough.Bad
	}
	for _, p := range r.Plain {
		errs += p.Relay.Errors
	}
	if len(r.Streams) > 0 || len(r.Plain) > 0 || len(r.Converted) > 0 {
		add("every answer and stream through ccrelay complete and intact", "0 errors, 0 bad streams", fmt.Sprintf("%d errors, %d bad of %d streams", errs, bad, streams+bad), errs == 0 && bad == 0)
	}
	for _, s := range r.Streams {
		if s.GapMs == 0 {
			continue
		}
		tag := fmt.Sprintf("streams c=%d, %g ms", s.Concurrency, s.GapMs)
		if s.Concurrency == 256 {
			add(tag+": added time to first event p50", "<= 2 ms", fmtUs(s.Relay.AddedTTFEP50Us), s.Relay.AddedTTFEP50Us <= 2000)
		}
		add(tag+": added per-event delivery p99", "<= 2 ms", fmtUs(s.Relay.AddedDelayP99Us), s.Relay.AddedDelayP99Us <= 2000)
		add(tag+": coalesced events", "0 (no more than direct)", fmt.Sprintf("%d (direct %d)", s.Relay.Coalesced, s.Direct.Coalesced), s.Relay.Coalesced <= s.Direct.Coalesced)
	}
	beforeCheck := func(what string, pooled float64, rounds []float64) {
		v, how := pooled, fmt.Sprintf("%.3fx", pooled)
		if len(rounds) >= 3 {
			v = medianOf(rounds)
			how = fmt.Sprintf("%.3fx (median of %d rounds, %s; all rounds together %.3fx)", v, len(rounds), spread(rounds), pooled)
		}
		add(what, "<= 1.03x", how, v > 0 && v <= 1.03)
	}
	for _, p := range r.Plain {
		if p.Before != nil {
			beforeCheck(fmt.Sprintf("plain %s c=%d CPU per request vs --before", p.Body, p.Concurrency), p.CPUVsBefore, p.CPUVsBeforeRounds)
		}
	}
	for _, s := range r.Streams {
		if s.Before != nil {
			beforeCheck(fmt.Sprintf("streams c=%d, %g ms CPU per stream vs --before", s.Concurrency, s.GapMs), s.CPUVsBefore, s.CPUVsBeforeRounds)
		}
	}
	r.convertedChecks()
	for _, c := range r.Converted {
		if c.Before != nil {
			beforeCheck(c.tag()+" CPU per stream vs --before", c.CPUVsBefore, c.CPUVsBeforeRounds)
		}
	}
	for _, m := range r.Memory {
		label, ok := strings.CutPrefix(m.Proxy, "ccrelay")
		if !ok {
			continue
		}
		add("peak RSS at 256 open streams"+label, "<= 64 MB", fmt.Sprintf("%.1f MB", m.Peak256MB), m.Peak256MB > 0 && m.Peak256MB <= 64)
		add("memory per additional idle stream (256 -> 2000)"+label, "<= 40 KB", fmt.Sprintf("%.1f KB", m.PerIdleKB), m.PerIdleKB > 0 && m.PerIdleKB <= 40)
	}
	if s := r.Startup; s != nil {
		add(fmt.Sprintf("start-up to healthy, %d accounts (p50, new database)", s.Accounts), "<= 100 ms", fmt.Sprintf("%.1f ms", s.ColdP50Ms), s.ColdP50Ms <= 100)
	}
}

// writeBefore writes the rows measured against a --before build, if any.
func (r *Report) writeBefore(w io.Writer) {
	var rows []string
	for _, p := range r.Plain {
		if b := p.Before; b != nil {
			rows = append(rows, fmt.Sprintf("| plain %s | %d | %.0f / %.0f req/s | %.2fx | %.0f / %.0f µs/req | %.3fx | %s | %.1f / %.1f | %.2f / %.2f | %d |",
				p.Body, p.Concurrency, b.RPS, p.Relay.RPS, p.RelayVsBefore, b.CPUUsPerReq, p.Relay.CPUUsPerReq, p.CPUVsBefore, roundsCell(p.CPUVsBeforeRounds), b.SyscallsPerReq, p.Relay.SyscallsPerReq, b.SwitchesPerReq, p.Relay.SwitchesPerReq, b.Errors))
		}
	}
	for _, s := range r.Streams {
		if b := s.Before; b != nil {
			rows = append(rows, fmt.Sprintf("| streams %g ms | %d | %d / %d streams | %.2fx | %.0f / %.0f µs/stream | %.3fx | %s | %.1f / %.1f | %.2f / %.2f | %d |",
				s.GapMs, s.Concurrency, b.Streams, s.Relay.Streams, ratio(float64(s.Relay.Streams), float64(b.Streams)), b.CPUUsPerStream, s.Relay.CPUUsPerStream, s.CPUVsBefore, roundsCell(s.CPUVsBeforeRounds), b.SyscallsPerStream, s.Relay.SyscallsPerStream, b.SwitchesPerStream, s.Relay.SwitchesPerStream, b.Bad))
		}
	}
	for _, c := range r.Converted {
		if b := c.Before; b != nil {
			rows = append(rows, fmt.Sprintf("| converted %s %g ms | %d | %d / %d streams | %.2fx | %.0f / %.0f µs/stream | %.3fx | %s | %.1f / %.1f | %.2f / %.2f | %d |",
				c.Conversion, c.GapMs, c.Concurrency, b.Streams, c.Relay.Streams, ratio(float64(c.Relay.Streams), float64(b.Streams)), b.CPUUsPerStream, c.Relay.CPUUsPerStream, c.CPUVsBefore, roundsCell(c.CPUVsBeforeRounds), b.SyscallsPerStream, c.Relay.SyscallsPerStream, b.SwitchesPerStream, c.Relay.SwitchesPerStream, b.Bad))
		}
	}
	if len(rows) == 0 {
		return
	}
	tableStart(w, "Against --before (the earlier build ran in the same rounds; ratios are ccrelay over before):",
		"| row | conc | done, before / ccrelay | throughput ratio | CPU, before / ccrelay | CPU ratio | CPU ratio per round: median (range) | read+write syscalls each, before / ccrelay | context switches each, before / ccrelay | errors / bad, before |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}

// medianOf returns the median of vs (vs is not changed).
func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread writes the range of vs as "0.98-1.05x".
func spread(vs []float64) string {
	return fmt.Sprintf("%.2f-%.2fx", slices.Min(vs), slices.Max(vs))
}

// roundsCell is a table cell with the median and range of per-round ratios.
func roundsCell(vs []float64) string {
	if len(vs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fx (%s)", medianOf(vs), spread(vs))
}

// tableStart writes a table's title, a blank line, its header row and its
// alignment row.
func tableStart(w io.Writer, title, header, align string) {
	fmt.Fprintln(w, title)
	fmt.Fprintln(w)
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, align)
}
