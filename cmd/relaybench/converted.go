package main

// Converted streams: a client of one API served by an account of another
// (PRODUCT.md §7), which the relay converts event by event. The relay under
// test has openai-responses and gemini-api accounts on the same fake
// upstream besides its Claude ones, and routes by model name: a Messages
// request for gpt-5 goes to the openai pool (Messages -> Responses,
// "m2r"), a Responses request for claude-sonnet-4-5 to the Claude pool
// (Responses -> Messages, "r2m"), a Messages request for gemini-2.5-pro to
// the gemini pool (Messages -> Gemini streamGenerateContent, "m2g").
//
// A conversion re-encodes every event, so the upstream's JSON stamps are
// lost; these streams are steered and stamped through their text instead
// (streamSpec.textDeltas, fakeupstream.TextSteer): only text deltas are
// timed, in every leg of the row. Each row runs, in alternating rounds:
// direct (the client's own API straight from the fake upstream), ccrelay
// converting, ccrelay's passthrough stream (the streams table's load,
// Messages on Claude, 50 events of which 45 text deltas, with the same
// stamped text as the converted streams) and, with --before, the earlier
// build converting. The bar (issue 32): CPU per converted stream at most
// 1.5x the passthrough stream's, read from the per-round ratios; the
// ratio to the streams table's own row (plain delta text, when it ran in
// the same run) is reported too.

import (
	"context"
	"fmt"
	"io"
	"time"
)

// conversion is one pair of APIs streamed through the relay's conversion.
type conversion struct {
	name, client, upstream string
	// responses: the client speaks the Responses API.
	responses bool
	bodies    func() [][]byte
}

var conversions = []conversion{
	{name: "m2r", client: "Messages", upstream: "Responses",
		bodies: func() [][]byte { return messagesBodies(256, true, "gpt-5", steerMark) }},
	{name: "r2m", client: "Responses", upstream: "Messages", responses: true,
		bodies: func() [][]byte { return responsesBodies(256, "claude-sonnet-4-5", steerMark) }},
	{name: "m2g", client: "Messages", upstream: "Gemini",
		bodies: func() [][]byte { return messagesBodies(256, true, "gemini-2.5-pro", steerMark) }},
}

// convertedDeltas is the text deltas of a converted stream: as many as the
// passthrough stream of 50 events has (Fast's Messages stream has five
// other events), so both carry the same text.
const convertedDeltas = 45

// convertedConcs are the concurrencies of the converted rows.
var convertedConcs = []int{16, 256}

// convertedGaps are the event spacings of the converted rows: with --quick
// back to back only.
func convertedGaps(quick bool) []time.Duration {
	if quick {
		return []time.Duration{0}
	}
	return []time.Duration{0, 20 * time.Millisecond}
}

// convertedRows is how many converted rows a run has at most.
func convertedRows(quick bool) int {
	return len(conversions) * len(convertedGaps(quick)) * len(convertedConcs)
}

// convertedName is the scenario name --filter matches.
func convertedName(cv conversion, gap time.Duration, conc int) string {
	return fmt.Sprintf("streams/convert-%s/%dms/c=%d", cv.name, gap.Milliseconds(), conc)
}

// leg is one measured load of a converted row: a target, the streams asked
// and the bodies they are asked with.
type leg struct {
	name   string
	t      *target
	spec   streamSpec
	bodies [][]byte
}

func (b *bench) target(name string) *target {
	for _, t := range b.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

// convertedStreams runs the converted rows the filter selects.
func (b *bench) convertedStreams(ctx context.Context) error {
	defer b.resume()
	pass := messagesBodies(256, true, "claude-sonnet-5", steerMark)
	for _, cv := range conversions {
		bodies := cv.bodies()
		for _, gap := range convertedGaps(b.o.quick) {
			for _, conc := range convertedConcs {
				if !b.selected(convertedName(cv, gap, conc)) {
					continue
				}
				legs := convertedLegs(cv, gap, b.target("direct"), b.target("ccrelay"), b.target("before"), bodies, pass)
				row := b.convertedRow(ctx, cv, legs, conc)
				if err := ctx.Err(); err != nil {
					return err
				}
				b.rep.Converted = append(b.rep.Converted, row)
				b.logf("%s: CPU per stream converted %.0f, passthrough %.0f µs (%.2fx), added delay p99 %s%s", convertedName(cv, gap, conc),
					row.Relay.CPUUsPerStream, row.Passthrough.CPUUsPerStream, row.CPURatio, fmtUs(row.Relay.AddedDelayP99Us), errNote(row.Direct.FirstError, row.Relay.FirstError, row.Passthrough.FirstError))
			}
		}
	}
	return nil
}

// convertedLegs are the loads of one converted row: direct and relay (and
// before, when not nil) get the conversion's bodies, the relay's
// passthrough leg the Messages bodies pass (a claude model) with the same
// text. Only the legs through a relay must arrive converted.
func convertedLegs(cv conversion, gap time.Duration, direct, relay, before *target, bodies, pass [][]byte) []leg {
	spec := streamSpec{gap: gap, textDeltas: convertedDeltas, responses: cv.responses}
	conv := spec
	conv.converted = true
	legs := []leg{
		{"direct", direct, spec, bodies},
		{"ccrelay", relay, conv, bodies},
		{"passthrough", relay, streamSpec{gap: gap, textDeltas: convertedDeltas}, pass},
	}
	if before != nil {
		legs = append(legs, leg{"before", before, conv, bodies})
	}
	return legs
}

// convertedRow measures one converted row: each leg warmed up, then
// b.o.rounds rounds with the legs in rotating order.
func (b *bench) convertedRow(ctx context.Context, cv conversion, legs []leg, conc int) ConvertedRow {
	spec := legs[1].spec
	res := map[string]*streamRun{}
	for _, l := range legs {
		res[l.name] = &streamRun{}
		warm := l.spec
		warm.gap = 0
		b.focus(l.t)
		runStreams(ctx, l.t, l.bodies, warm, conc, b.warmup())
	}
	var paired, pairedBefore []float64
	for r := range b.o.rounds {
		round := map[string]streamRun{}
		for _, l := range rotate(legs, r) {
			b.focus(l.t)
			round[l.name] = runStreams(ctx, l.t, l.bodies, l.spec, conc, b.o.streamDur)
			res[l.name].merge(round[l.name])
		}
		rl, ps := round["ccrelay"], round["passthrough"]
		paired = append(paired, ratio(rl.cpuPer(rl.streams+rl.bad), ps.cpuPer(ps.streams+ps.bad)))
		if bf, ok := round["before"]; ok && bf.streams > 0 {
			pairedBefore = append(pairedBefore, ratio(rl.cpuPer(rl.streams+rl.bad), bf.cpuPer(bf.streams+bf.bad)))
		}
	}
	row := ConvertedRow{Conversion: cv.name, Client: cv.client, Upstream: cv.upstream, TextDeltas: spec.textDeltas,
		GapMs: float64(spec.gap) / 1e6, Concurrency: conc,
		Direct: streamStats(res["direct"], nil), Relay: streamStats(res["ccrelay"], res["direct"]), Passthrough: streamStats(res["passthrough"], nil)}
	row.CPURatio = ratio(row.Relay.CPUUsPerStream, row.Passthrough.CPUUsPerStream)
	row.CPURatioRounds = paired
	for _, s := range b.rep.Streams {
		if s.GapMs == row.GapMs && s.Concurrency == conc {
			row.CPUVsStreamsRow = ratio(row.Relay.CPUUsPerStream, s.Relay.CPUUsPerStream)
		}
	}
	if run, ok := res["before"]; ok {
		if run.streams == 0 {
			// An earlier build that cannot convert answers with errors,
			// or passes the request through unconverted (streamSpec.converted).
			row.BeforeSkipped = "the --before build served none of these streams: " + run.firstErr
		} else {
			bf := streamStats(run, res["direct"])
			row.Before = &bf
			row.CPUVsBefore = ratio(row.Relay.CPUUsPerStream, bf.CPUUsPerStream)
			row.CPUVsBeforeRounds = pairedBefore
		}
	}
	return row
}

// ConvertedRow is one converted stream scenario.
type ConvertedRow struct {
	// Conversion is m2r (a Messages client on a Responses upstream), r2m
	// or m2g (a Messages client on a Gemini upstream).
	Conversion  string  `json:"conversion"`
	Client      string  `json:"client_api"`
	Upstream    string  `json:"upstream_api"`
	TextDeltas  int     `json:"text_deltas"`
	GapMs       float64 `json:"gap_ms"`
	Concurrency int     `json:"concurrency"`
	// Direct is the client's API straight from the fake upstream; Relay is
	// ccrelay converting (added times are over Direct); Passthrough is
	// ccrelay's passthrough stream (the streams table's load, with the same
	// text as the converted streams) in the same rounds. Only text deltas
	// are timed.
	Direct      StreamStats `json:"direct"`
	Relay       StreamStats `json:"ccrelay"`
	Passthrough StreamStats `json:"passthrough"`
	// CPURatio is ccrelay's CPU per converted stream over its CPU per
	// passthrough stream, all rounds together; CPURatioRounds the same in
	// each round alone (the check reads their median).
	CPURatio       float64   `json:"cpu_ratio"`
	CPURatioRounds []float64 `json:"cpu_ratio_rounds"`
	// CPUVsStreamsRow is the same over the streams table's row of the same
	// spacing and concurrency (0 when that row did not run).
	CPUVsStreamsRow float64 `json:"cpu_vs_streams_row,omitempty"`
	// Before is the --before build converting, in the same rounds.
	Before            *StreamStats `json:"before,omitempty"`
	CPUVsBefore       float64      `json:"cpu_vs_before,omitempty"`
	CPUVsBeforeRounds []float64    `json:"cpu_vs_before_rounds,omitempty"`
	// BeforeSkipped says why there is no Before (a build that cannot convert).
	BeforeSkipped string `json:"before_skipped,omitempty"`
}

// cpuRatioChecked is the ratio the bar reads: the median of the rounds'
// with three rounds or more, else all rounds together; and how it reads.
func (c ConvertedRow) cpuRatioChecked() (float64, string) {
	if len(c.CPURatioRounds) >= 3 {
		v := medianOf(c.CPURatioRounds)
		return v, fmt.Sprintf("%.2fx (median of %d rounds, %s; %.0f vs %.0f µs)", v, len(c.CPURatioRounds), spread(c.CPURatioRounds), c.Relay.CPUUsPerStream, c.Passthrough.CPUUsPerStream)
	}
	return c.CPURatio, fmt.Sprintf("%.2fx (%.0f vs %.0f µs)", c.CPURatio, c.Relay.CPUUsPerStream, c.Passthrough.CPUUsPerStream)
}

func (c ConvertedRow) tag() string {
	return fmt.Sprintf("converted %s (%s -> %s) c=%d, %g ms", c.Conversion, c.Client, c.Upstream, c.Concurrency, c.GapMs)
}

// convertedChecks adds the bar of every converted row.
func (r *Report) convertedChecks() {
	for _, c := range r.Converted {
		v, how := c.cpuRatioChecked()
		r.Checks = append(r.Checks, Check{What: c.tag() + ": CPU per stream vs passthrough stream", Target: "<= 1.5x", Value: how, Pass: v > 0 && v <= 1.5})
	}
}

// writeConverted writes the converted rows' table.
func (r *Report) writeConverted(w io.Writer) {
	if len(r.Converted) == 0 {
		return
	}
	tableStart(w, fmt.Sprintf("Converted streams (%d text deltas, timed from the stamp in their text; added = over the client's API straight from the upstream; CPU ratio = ccrelay's CPU per converted stream over its passthrough stream (the streams table's load, same text) in the same rounds):", r.Converted[0].TextDeltas),
		"| conversion | spacing | conc | added TTFE p50 / p99 | added delivery p50 / p99 | max gap direct / ccrelay | coalesced direct / ccrelay | CPU µs/stream passthrough / converted | CPU ratio | CPU ratio per round: median (range) | vs streams row | bad |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range r.Converted {
		vsRow := "-"
		if c.CPUVsStreamsRow > 0 {
			vsRow = fmt.Sprintf("%.2fx", c.CPUVsStreamsRow)
		}
		fmt.Fprintf(w, "| %s → %s | %g ms | %d | %s / %s | %s / %s | %s / %s | %d / %d | %.0f / %.0f | %.2fx | %s | %s | %d |\n",
			c.Client, c.Upstream, c.GapMs, c.Concurrency,
			fmtUs(c.Relay.AddedTTFEP50Us), fmtUs(c.Relay.AddedTTFEP99Us), fmtUs(c.Relay.AddedDelayP50Us), fmtUs(c.Relay.AddedDelayP99Us),
			fmtUs(c.Direct.MaxGapUs), fmtUs(c.Relay.MaxGapUs), c.Direct.Coalesced, c.Relay.Coalesced,
			c.Passthrough.CPUUsPerStream, c.Relay.CPUUsPerStream, c.CPURatio, roundsCell(c.CPURatioRounds), vsRow,
			c.Direct.Bad+c.Relay.Bad+c.Passthrough.Bad)
	}
	fmt.Fprintln(w)
	for _, c := range r.Converted {
		if c.BeforeSkipped != "" {
			fmt.Fprintf(w, "- %s: no --before comparison: %s\n", c.tag(), c.BeforeSkipped)
		}
		if e := firstOf(c.Relay.FirstError, c.Passthrough.FirstError, c.Direct.FirstError); e != "" {
			fmt.Fprintf(w, "- %s: first error: %s\n", c.tag(), e)
		}
	}
	fmt.Fprintln(w)
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
