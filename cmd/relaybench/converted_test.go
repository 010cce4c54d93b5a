package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// convertingProxy is a stand-in for the relay's converting path, built
// from the same codecs: a Messages request on /v1/messages goes to the
// upstream's Responses API and its stream comes back as Messages (m2r), or
// for a gemini-* model to the upstream's Gemini API
// (streamGenerateContent?alt=sse with an API key, m2g); a Responses request
// on /v1/responses the other way round (r2m). cut drops the converted
// stream's last event.
func convertingProxy(t *testing.T, upstream string, cut bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var (
			req  *convert.Request
			err  error
			path string
			rd   convert.StreamReader
			wr   convert.StreamWriter
			up   []byte
		)
		if strings.HasSuffix(r.URL.Path, "/responses") {
			req, err = convert.DecodeResponses(body)
			if err == nil {
				up, err = convert.EncodeMessages(req)
			}
			path, rd, wr = "/v1/messages", convert.NewMessagesStreamReader(), convert.NewResponsesStreamWriter(req.Model)
		} else if req, err = convert.DecodeMessages(body); err == nil && strings.HasPrefix(req.Model, "gemini-") {
			up, err = convert.EncodeGemini(req)
			path, rd, wr = "/v1beta/models/"+req.Model+":streamGenerateContent?alt=sse", convert.NewGeminiStreamReader(), convert.NewMessagesStreamWriter(req.Model)
		} else if err == nil {
			up, err = convert.EncodeResponses(req)
			path, rd, wr = "/v1/responses", convert.NewResponsesStreamReader(), convert.NewMessagesStreamWriter(req.Model)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		upReq, _ := http.NewRequest(http.MethodPost, upstream+path, bytes.NewReader(up))
		upReq.Header.Set("Content-Type", "application/json")
		upReq.Header.Set("X-Goog-Api-Key", "AIza-bench")
		resp, err := http.DefaultClient.Do(upReq)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			http.Error(w, string(b), resp.StatusCode)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		var p sse.Parser
		var evs []convert.Event
		buf := make([]byte, 4096)
		for {
			n, rerr := resp.Body.Read(buf)
			var out []byte
			p.Feed(buf[:n], func(ev *sse.Event) bool {
				evs = rd.Read(evs[:0], ev.Name, ev.Data)
				for i := range evs {
					if cut && (evs[i].Kind == convert.EventFinish) {
						continue
					}
					out = wr.Write(out, &evs[i])
				}
				return true
			})
			if len(out) > 0 {
				_, _ = w.Write(out)
				w.(http.Flusher).Flush()
			}
			if rerr != nil {
				return
			}
		}
	}))
}

// Converted streams lose the upstream's JSON stamps but keep the ones in
// their text deltas: the reader times exactly the text deltas of both
// conversions, and a converted stream without its last event is bad.
func TestConvertedStreamsAreTimed(t *testing.T) {
	fast := httptest.NewServer(fakeupstream.NewFast("bench"))
	defer fast.Close()
	proxy := convertingProxy(t, fast.URL, false)
	defer proxy.Close()
	cutProxy := convertingProxy(t, fast.URL, true)
	defer cutProxy.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	for _, cv := range conversions {
		bodies := cv.bodies()[:4]
		spec := streamSpec{gap: 100 * time.Microsecond, textDeltas: 12, responses: cv.responses}
		conv := spec
		conv.converted = true
		t.Run(cv.name, func(t *testing.T) {
			for _, tt := range []struct {
				name string
				t    *target
				spec streamSpec
				bad  string
			}{
				{"direct", newTarget("direct", addr(fast), nil, nil), spec, ""},
				{"converted", newTarget("converted", addr(proxy), nil, nil), conv, ""},
				{"converted, cut before its end", newTarget("cut", addr(cutProxy), nil, nil), conv, "ended after 12 of 12"},
				// A relay that cannot convert, passing the request through.
				{"asked converted, got passed through", newTarget("direct", addr(fast), nil, nil), conv, "not converted"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					r := &streamRun{}
					sr := newStreamReader(tt.spec)
					for i := range 3 {
						sr.one(context.Background(), tt.t, tt.spec.header(), tt.spec.body(bodies[i]), r, nil)
					}
					if tt.bad != "" {
						if r.bad != 3 || r.streams != 0 || !strings.Contains(r.firstErr, tt.bad) {
							t.Fatalf("streams %d, bad %d (%s), want bad: %s", r.streams, r.bad, r.firstErr, tt.bad)
						}
						return
					}
					if r.streams != 3 || r.bad != 0 || r.events != 36 || len(r.delay) != 36 || len(r.ttfe) != 3 {
						t.Fatalf("streams %d, bad %d (%s), timed events %d, delays %d, ttfe %d", r.streams, r.bad, r.firstErr, r.events, len(r.delay), len(r.ttfe))
					}
					for _, d := range r.delay {
						if d <= 0 || d > int64(time.Minute) {
							t.Fatalf("delay %v: not a stamp of this run", time.Duration(d))
						}
					}
				})
			}
		})
	}

	// Without text stamps the same converted stream has no timed event.
	spec := streamSpec{events: 50}
	r := &streamRun{}
	newStreamReader(spec).one(context.Background(), newTarget("converted", addr(proxy), nil, nil), spec.header(), spec.body(conversions[0].bodies()[0]), r, nil)
	if r.streams != 0 || r.events != 0 {
		t.Fatalf("JSON stamps survived a conversion: %d streams, %d events", r.streams, r.events)
	}
}

// The bodies of a converted row ask for a model of the other pool, in the
// client's API, and carry their steering in the text where TextSteer puts
// it; the passthrough bodies are as they were.
func TestConvertedBodies(t *testing.T) {
	spec := streamSpec{gap: 20 * time.Millisecond, textDeltas: 45}
	for _, tt := range []struct {
		cv          conversion
		model, text string
	}{
		{conversions[0], "gpt-5", "messages.0.content.0.text"},
		{conversions[1], "claude-sonnet-4-5", "input.1.content.0.text"},
		{conversions[2], "gemini-2.5-pro", "messages.0.content.0.text"},
	} {
		bodies := tt.cv.bodies()
		b := spec.body(bodies[0])
		if len(bodies) != 256 || len(b) < 4000 || len(b) > 4300 {
			t.Errorf("%s: %d bodies of %d bytes", tt.cv.name, len(bodies), len(b))
		}
		if m := gjson.GetBytes(b, "model").Str; m != tt.model || !gjson.GetBytes(b, "stream").Bool() {
			t.Errorf("%s: model %q, stream %v", tt.cv.name, m, gjson.GetBytes(b, "stream").Bool())
		}
		if text := gjson.GetBytes(b, tt.text).Str; !strings.HasPrefix(text, fakeupstream.TextSteer(45, 20*time.Millisecond, 0)+" Please review") {
			t.Errorf("%s: first text %.80q", tt.cv.name, text)
		}
		if gjson.GetBytes(b, "bench").Exists() || bytes.Contains(b, []byte(steerMark)) {
			t.Errorf("%s: steering left in the body: %.120s", tt.cv.name, b)
		}
	}
	if bytes.Contains(smallBodies(1, true)[0], []byte(steerMark)) {
		t.Error("the passthrough bodies carry the steering mark")
	}
	if got := (streamSpec{responses: true}).url(newTarget("x", "127.0.0.1:1", nil, nil)); got != "http://127.0.0.1:1/v1/responses" {
		t.Errorf("Responses url %q", got)
	}
}

// The generated config gives the relay openai-responses accounts on the
// fake upstream's /v1, and gemini-api accounts on its root (the relay adds
// /v1beta/models/...), only when asked.
func TestRelayConfigOpenAIAccounts(t *testing.T) {
	cfg := relayConfig{logLevel: "warn", accounts: 2, openaiAccounts: 2, geminiAccounts: 3, upstream: "http://127.0.0.1:9"}.toml()
	if n := strings.Count(cfg, `type = "openai-responses"`); n != 2 || !strings.Contains(cfg, `api_url = "http://127.0.0.1:9/v1"`) {
		t.Errorf("%d openai accounts in\n%s", n, cfg)
	}
	if n := strings.Count(cfg, `type = "claude-api"`); n != 2 {
		t.Errorf("%d claude accounts", n)
	}
	if n := strings.Count(cfg, "type = \"gemini-api\"\nid = \"bench-gemini-003\"\napi_key = \"AIza-bench-003\"\napi_url = \"http://127.0.0.1:9\"\n"); n != 1 || strings.Count(cfg, `type = "gemini-api"`) != 3 {
		t.Errorf("gemini accounts in\n%s", cfg)
	}
	if cfg := (relayConfig{accounts: 2}).toml(); strings.Contains(cfg, "openai-responses") || strings.Contains(cfg, "gemini-api") {
		t.Error("openai or gemini accounts that were not asked for")
	}
}

// A converted row reports its ratio to the passthrough stream, checks the
// 1.5x bar on the median of its rounds, and a --before build that served
// none of its streams is named, not compared.
func TestReportConverted(t *testing.T) {
	row := func(rounds []float64) ConvertedRow {
		return ConvertedRow{Conversion: "m2r", Client: "Messages", Upstream: "Responses", TextDeltas: 45, Concurrency: 16,
			Relay: StreamStats{Streams: 100, CPUUsPerStream: 700}, Passthrough: StreamStats{Streams: 100, CPUUsPerStream: 500},
			CPURatio: 1.4, CPURatioRounds: rounds, CPUVsStreamsRow: 1.45, BeforeSkipped: "the --before build served none of these streams: status 400"}
	}
	for _, tt := range []struct {
		rounds []float64
		pass   bool
		value  string
	}{
		{[]float64{1.4, 1.45, 2.5}, true, "1.45x (median of 3 rounds, 1.40-2.50x; 700 vs 500 µs)"},
		{[]float64{1.6, 1.55, 1.2}, false, "1.55x (median of 3 rounds"},
		{[]float64{1.6}, true, "1.40x (700 vs 500 µs)"}, // fewer than 3 rounds: all rounds together
	} {
		r := &Report{Converted: []ConvertedRow{row(tt.rounds)}}
		r.checks()
		var bar *Check
		for i := range r.Checks {
			if strings.Contains(r.Checks[i].What, "vs passthrough stream") {
				bar = &r.Checks[i]
			}
			if strings.Contains(r.Checks[i].What, "--before") {
				t.Errorf("a --before check for a row the before build could not serve: %+v", r.Checks[i])
			}
		}
		if bar == nil || bar.Pass != tt.pass || !strings.HasPrefix(bar.Value, tt.value) {
			t.Errorf("rounds %v: check %+v, want pass %v, value %q", tt.rounds, bar, tt.pass, tt.value)
		}
		var buf bytes.Buffer
		r.writeMarkdown(&buf)
		for _, want := range []string{"| Messages → Responses | 0 ms | 16 |", "| 500 / 700 | 1.40x |", "| 1.45x | 0 |", "no --before comparison: the --before build served none"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, buf.String())
			}
		}
	}
}

// Each leg of a converted row asks what it should: the relay legs convert
// (and must arrive converted), the passthrough leg is the Messages client
// on the Claude pool with the same text, direct is the client's own API.
func TestConvertedLegs(t *testing.T) {
	direct, relay, before := newTarget("direct", "127.0.0.1:1", nil, nil), newTarget("ccrelay", "127.0.0.1:2", nil, nil), newTarget("before", "127.0.0.1:3", nil, nil)
	pass := messagesBodies(2, true, "claude-sonnet-5", steerMark)
	for _, cv := range conversions {
		bodies := cv.bodies()[:2]
		legs := convertedLegs(cv, 0, direct, relay, before, bodies, pass)
		byName := map[string]leg{}
		for _, l := range legs {
			byName[l.name] = l
		}
		for name, want := range map[string]struct {
			t                    *target
			responses, converted bool
			model                string
		}{
			"direct":      {direct, cv.responses, false, gjson.GetBytes(bodies[0], "model").Str},
			"ccrelay":     {relay, cv.responses, true, gjson.GetBytes(bodies[0], "model").Str},
			"before":      {before, cv.responses, true, gjson.GetBytes(bodies[0], "model").Str},
			"passthrough": {relay, false, false, "claude-sonnet-5"},
		} {
			l, ok := byName[name]
			if !ok || l.t != want.t || l.spec.responses != want.responses || l.spec.converted != want.converted ||
				l.spec.textDeltas != convertedDeltas || gjson.GetBytes(l.bodies[0], "model").Str != want.model {
				t.Errorf("%s %s: %+v (ok %v), model %q", cv.name, name, l.spec, ok, gjson.GetBytes(l.bodies[0], "model").Str)
			}
		}
	}
	if legs := convertedLegs(conversions[0], 0, direct, relay, nil, nil, pass); len(legs) != 3 {
		t.Errorf("%d legs without --before", len(legs))
	}
}
