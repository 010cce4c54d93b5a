package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// target is one way to reach the fake upstream: direct, through the baseline
// proxy or through ccrelay.
type target struct {
	name string
	url  string // of the Messages endpoint
	// base is the scheme and address: other endpoints are under it.
	base   string
	client *http.Client
	// proc is the proxy process whose CPU is charged; nil for direct.
	proc *proc
	// upstream is the fake upstream process behind every target.
	upstream *proc
}

// ownCPU is the CPU time of the processes a run keeps busy: this load
// generator, the fake upstream and the proxy.
func (t *target) ownCPU() time.Duration {
	d := selfCPU()
	for _, p := range []*proc{t.proc, t.upstream} {
		if p != nil {
			c, _ := p.cpu()
			d += c
		}
	}
	return d
}

func newTarget(name, addr string, p, upstream *proc) *target {
	return &target{
		upstream: upstream,
		name:     name,
		url:      "http://" + addr + "/v1/messages?beta=true",
		base:     "http://" + addr,
		client: &http.Client{Transport: &http.Transport{
			// Reuse one connection per worker: sized for the largest load.
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     120 * time.Second,
			DisableCompression:  true,
		}},
		proc: p,
	}
}

// sample collects durations (ns) and answers percentiles.
type sample []int64

func (s sample) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(p/100*float64(len(s)-1) + 0.5)
	return time.Duration(s[i])
}

// runTotals are what every measured run adds up: wall time, the target's
// CPU, the CPU of the load generator, upstream and proxy together (busy),
// and the first error seen.
type runTotals struct {
	elapsed time.Duration
	cpu     time.Duration
	busy    time.Duration
	// syscalls: the target's read and write system calls.
	syscalls int64
	// switches: the target's context switches.
	switches int64
	firstErr string
}

// noteErr keeps the first error and pauses: a failing target must not
// turn a worker's loop into a spin.
func (r *runTotals) noteErr(msg string) {
	if r.firstErr == "" {
		r.firstErr = msg
	}
	time.Sleep(time.Millisecond)
}

// cpuPer is the target's CPU per unit of work (n requests or streams), in µs.
func (r runTotals) cpuPer(n int64) float64 {
	if n <= 0 {
		return 0
	}
	return us(r.cpu) / float64(n)
}

func (r *runTotals) add(o runTotals) {
	r.elapsed += o.elapsed
	r.cpu += o.cpu
	r.busy += o.busy
	r.syscalls += o.syscalls
	r.switches += o.switches
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
}

// startTotals notes the clock and the CPU counters now; the function it
// returns gives the totals since (the workers' first errors are merged in
// by the caller).
func (t *target) startTotals() func() runTotals {
	start, own0 := time.Now(), t.ownCPU()
	var cpu0 time.Duration
	var sys0, sw0 int64
	if t.proc != nil {
		cpu0, _ = t.proc.cpu()
		sys0, sw0 = t.proc.syscalls(), t.proc.switches()
	}
	return func() runTotals {
		r := runTotals{elapsed: time.Since(start), busy: t.ownCPU() - own0}
		if t.proc != nil {
			cpu1, _ := t.proc.cpu()
			r.cpu = cpu1 - cpu0
			r.syscalls = t.proc.syscalls() - sys0
			r.switches = t.proc.switches() - sw0
		}
		return r
	}
}

// plainRun is one measured run of plain (non-streaming) requests.
type plainRun struct {
	runTotals
	ok, errs int64
	lat      sample
}

func (r *plainRun) merge(o plainRun) {
	r.runTotals.add(o.runTotals)
	r.ok += o.ok
	r.errs += o.errs
	r.lat = append(r.lat, o.lat...)
}

// runPlain keeps conc requests in flight for dur (each worker sends its next
// request when the previous answer is read) and measures them.
func runPlain(ctx context.Context, t *target, bodies [][]byte, conc int, dur time.Duration) plainRun {
	hdr := requestHeaders()
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	totals := t.startTotals()
	start := time.Now()
	deadline := start.Add(dur)
	runs := make([]plainRun, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &runs[w]
			r.lat = make(sample, 0, 4096)
			for i := w; ctx.Err() == nil; i += conc {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(bodies[i%len(bodies)]))
				req.Header = hdr // read-only: shared by every request
				resp, err := t.client.Do(req)
				if err != nil {
					r.fail(err.Error())
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					r.fail("read: " + err.Error())
					continue
				case resp.StatusCode != http.StatusOK || n == 0:
					r.fail("status " + strconv.Itoa(resp.StatusCode))
					continue
				}
				r.ok++
				r.lat = append(r.lat, int64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	out := plainRun{runTotals: totals()}
	for _, r := range runs {
		r.elapsed = 0
		out.merge(r)
	}
	return out
}

func (r *plainRun) fail(msg string) {
	r.errs++
	r.noteErr(msg)
}

// streamRun is one measured run of SSE streams.
type streamRun struct {
	runTotals
	streams, bad, events int64
	// ttfe: request sent -> first event read; delay: event stamped by the
	// upstream -> event read by the client.
	ttfe, delay sample
	// maxGap is the largest growth of the delay from one event to the next:
	// the longest an event was held beyond the upstream's own spacing.
	maxGap time.Duration
	// coalesced counts events read together with the one before although the
	// upstream sent them more than half a spacing apart.
	coalesced int64
}

func (r *streamRun) merge(o streamRun) {
	r.runTotals.add(o.runTotals)
	r.streams += o.streams
	r.bad += o.bad
	r.events += o.events
	r.ttfe = append(r.ttfe, o.ttfe...)
	r.delay = append(r.delay, o.delay...)
	r.maxGap = max(r.maxGap, o.maxGap)
	r.coalesced += o.coalesced
}

// streamSpec describes the streams a run asks for.
type streamSpec struct {
	events int
	gap    time.Duration
	// hold keeps each stream open and silent after its third event.
	hold time.Duration
	// textDeltas, when set, steers the upstream from the request's text
	// (fakeupstream.TextSteer in place of steerMark) rather than the
	// BenchField: a relay that converts the request keeps only its text.
	// The stream then has that many text deltas, each stamped in its text
	// (the events around them, rewritten by a conversion, carry no stamp
	// that survives): only text deltas are timed, events counts text
	// deltas, and the time to first event is to the first event of any kind.
	textDeltas int
	// responses: the client speaks the Responses API (POST /v1/responses,
	// Codex CLI's headers) instead of Messages.
	responses bool
	// converted: the stream must have been converted: an event that still
	// carries the upstream's JSON stamp (which every conversion drops)
	// makes it bad. A relay that cannot convert may pass the request
	// through to a pool of the client's own API, which the fake upstream
	// would serve all the same.
	converted bool
}

// steerMark is where a body for a textDeltas spec takes its steering.
const steerMark = "BENCHSTEER "

func (s streamSpec) header() http.Header {
	if s.responses {
		return codexHeaders()
	}
	return requestHeaders()
}

// url is the endpoint of t the spec's client calls.
func (s streamSpec) url(t *target) string {
	if s.responses {
		return t.base + "/v1/responses"
	}
	return t.url
}

// want is the number of timed events a whole stream has.
func (s streamSpec) want() int {
	if s.textDeltas > 0 {
		return s.textDeltas
	}
	return s.events
}

// bodies returns copies of bodies that carry the spec as their first field
// (fakeupstream.BenchField): the relay forwards only the headers a provider
// knows, but it forwards the body as the client sent it.
func (s streamSpec) bodies(bodies [][]byte) [][]byte {
	out := make([][]byte, len(bodies))
	for i, b := range bodies {
		out[i] = s.body(b)
	}
	return out
}

func (s streamSpec) body(b []byte) []byte {
	if s.textDeltas > 0 {
		return bytes.Replace(b, []byte(steerMark), []byte(fakeupstream.TextSteer(s.textDeltas, s.gap, s.hold)+" "), 1)
	}
	return fakeupstream.WithBenchField(b, s.events, s.gap, s.hold)
}

// runStreams keeps conc streams open: each worker starts its next stream when
// the previous one ended, until dur after the ramp-up; streams under way then
// finish. Workers start spread over one stream's length, as independent
// clients would, so the streams' events and starts do not arrive in
// lockstep bursts.
func runStreams(ctx context.Context, t *target, bodies [][]byte, spec streamSpec, conc int, dur time.Duration) streamRun {
	hdr := spec.header()
	bodies = spec.bodies(bodies)
	ramp := time.Duration(spec.want()-1) * spec.gap
	ctx, cancel := context.WithTimeout(ctx, ramp+dur+60*time.Second)
	defer cancel()
	totals := t.startTotals()
	start := time.Now()
	deadline := start.Add(ramp + dur)
	runs := make([]streamRun, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &runs[w]
			sr := newStreamReader(spec)
			if ramp > 0 {
				time.Sleep(ramp * time.Duration(w) / time.Duration(conc))
			}
			for i := w; ctx.Err() == nil && time.Now().Before(deadline); i += conc {
				sr.one(ctx, t, hdr, bodies[i%len(bodies)], r, nil)
			}
		}()
	}
	wg.Wait()
	out := streamRun{runTotals: totals()}
	for _, r := range runs {
		out.merge(r)
	}
	return out
}

// streamReader reads streams and measures their events; one per worker.
type streamReader struct {
	spec streamSpec
	buf  []byte
	pend []byte
}

func newStreamReader(spec streamSpec) *streamReader {
	return &streamReader{spec: spec, buf: make([]byte, 32<<10), pend: make([]byte, 0, 64<<10)}
}

// one runs a single stream into r. ready, when set, is called once the
// third event arrived (the point where a held stream goes idle).
func (s *streamReader) one(ctx context.Context, t *target, hdr http.Header, body []byte, r *streamRun, ready func()) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.spec.url(t), bytes.NewReader(body))
	req.Header = hdr
	t0 := time.Now().UnixNano()
	resp, err := t.client.Do(req)
	if err != nil {
		r.failed(err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		r.failed(fmt.Sprintf("status %d: %s", resp.StatusCode, b))
		return
	}
	var (
		count, seen          int
		prevStamp, prevDelay int64
		lastWasStop, raw     bool
		halfGap              = int64(s.spec.gap / 2)
		textMode             = s.spec.textDeltas > 0
	)
	s.pend = s.pend[:0]
	for {
		n, rerr := resp.Body.Read(s.buf)
		if n > 0 {
			now := time.Now().UnixNano()
			s.pend = append(s.pend, s.buf[:n]...)
			off := 0
			inChunk := 0
			for {
				i := bytes.Index(s.pend[off:], []byte("\n\n"))
				if i < 0 {
					break
				}
				ev := s.pend[off : off+i]
				off += i + 2
				if textMode {
					if seen++; seen == 1 {
						r.ttfe = append(r.ttfe, now-t0)
					}
					lastWasStop = isStreamEnd(ev)
					raw = raw || s.spec.converted && bytes.Contains(ev, []byte(fakeupstream.StampKey))
				}
				stamp, ok := s.stampOf(ev)
				if !ok {
					continue // not one of the upstream's events (e.g. a relay error event)
				}
				count++
				inChunk++
				delay := now - stamp
				if count == 1 {
					if !textMode {
						r.ttfe = append(r.ttfe, now-t0)
					}
				} else {
					r.maxGap = max(r.maxGap, time.Duration(delay-prevDelay))
					if inChunk > 1 && halfGap > 0 && stamp-prevStamp > halfGap {
						r.coalesced++
					}
				}
				r.delay = append(r.delay, delay)
				prevStamp, prevDelay = stamp, delay
				if !textMode {
					lastWasStop = bytes.Contains(ev, []byte("message_stop"))
				}
				if count == 3 && ready != nil {
					ready()
				}
			}
			s.pend = s.pend[:copy(s.pend, s.pend[off:])]
		}
		if rerr != nil {
			if rerr != io.EOF {
				r.failed("stream: " + rerr.Error())
				r.events += int64(count)
				return
			}
			break
		}
	}
	r.events += int64(count)
	if raw {
		r.failed("the stream was not converted: the upstream's own events reached the client")
		return
	}
	if count != s.spec.want() || !lastWasStop {
		r.failed(fmt.Sprintf("stream ended after %d of %d events", count, s.spec.want()))
		return
	}
	r.streams++
}

// stampOf is the upstream's send stamp of ev: from its JSON (StampKey), or
// for a textDeltas spec from the text of a text delta, the only events
// whose stamp survives a conversion.
func (s *streamReader) stampOf(ev []byte) (int64, bool) {
	if s.spec.textDeltas == 0 {
		return fakeupstream.ParseStamp(ev)
	}
	if !bytes.HasPrefix(ev, []byte("event: content_block_delta\n")) && !bytes.HasPrefix(ev, []byte("event: response.output_text.delta\n")) {
		return 0, false
	}
	return fakeupstream.ParseTextStamp(ev)
}

// isStreamEnd reports whether ev is the last event of a whole Messages or
// Responses stream.
func isStreamEnd(ev []byte) bool {
	return bytes.HasPrefix(ev, []byte("event: message_stop\n")) || bytes.HasPrefix(ev, []byte("event: response.completed\n"))
}

func (r *streamRun) failed(msg string) {
	r.bad++
	r.noteErr(msg)
}

// idleStreams holds streams open (silent after their third event).
type idleStreams struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  atomic.Int64
	failed atomic.Int64
	errMu  sync.Mutex
	err    string
}

// openIdle opens n held streams to t, at most batch at a time being set up,
// and returns once all are idle (or failed, or limit passed).
func (h *idleStreams) open(ctx context.Context, t *target, body []byte, n, batch int, limit time.Duration) {
	spec := streamSpec{events: 50, hold: 10 * time.Minute}
	hdr := spec.header()
	body = spec.body(body)
	sem := make(chan struct{}, batch)
	deadline := time.Now().Add(limit)
	want := h.ready.Load() + h.failed.Load() + int64(n)
	for range n {
		sem <- struct{}{}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			released := false
			release := func() {
				if !released {
					released = true
					<-sem
				}
			}
			defer release()
			var r streamRun
			sr := &streamReader{spec: spec, buf: make([]byte, 4<<10), pend: make([]byte, 0, 4<<10)}
			sr.one(ctx, t, hdr, body, &r, func() { h.ready.Add(1); release() })
			if r.firstErr != "" && ctx.Err() == nil {
				h.failed.Add(1)
				h.errMu.Lock()
				if h.err == "" {
					h.err = r.firstErr
				}
				h.errMu.Unlock()
			}
		}()
	}
	for h.ready.Load()+h.failed.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *idleStreams) close() {
	h.cancel()
	h.wg.Wait()
}

func sortSample(s sample) sample { slices.Sort(s); return s }
