package fakeupstream

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers that steer Fast when it is reached directly. A relay that
// forwards only the headers a provider knows drops them; a load generator
// that goes through one puts the same numbers in the body (BenchField).
const (
	// HeaderEvents asks for an SSE stream of that many events (at least 5);
	// absent or 0 means a JSON answer (but for Gemini, where the method
	// says which: streamGenerateContent streams geminiDefaultEvents).
	HeaderEvents = "X-Bench-Events"
	// HeaderGap is the spacing between stream events in microseconds (default 0).
	HeaderGap = "X-Bench-Gap-Us"
	// HeaderHold, in seconds, keeps a stream open and silent after its third
	// event (an idle stream) until the client leaves or the time is up.
	HeaderHold = "X-Bench-Hold-S"
)

// StampKey prefixes every event's data in a Fast stream: the event's JSON
// object starts with {"bench_ts":<19-digit Unix nanoseconds>, written just
// before the event left the fake. ParseStamp reads it back.
const StampKey = `{"bench_ts":`

const stampDigits = 19

// maxHold bounds an idle stream whatever a client asks.
const maxHold = 10 * time.Minute

// Fast is a lean fake Anthropic Messages API, OpenAI Responses API on
// paths ending in /responses, and public Gemini API on
// /{version}/models/{model}:generateContent and :streamGenerateContent
// (fast_gemini.go), for load tests: it reads and discards the
// request body without parsing it, answers from precomputed bytes and
// records nothing, so it costs the machine little next to the relay it
// measures. A JSON answer is a Messages (or Responses, or Gemini) response
// with usage. A Messages stream (see HeaderEvents) is message_start,
// content_block_start, text deltas, content_block_stop,
// message_delta, message_stop; a Responses stream is response.created,
// response.in_progress, output_item.added, content_part.added, text deltas,
// output_text.done, content_part.done, output_item.done and
// response.completed with usage; a Gemini stream is text chunks and a last
// chunk with finishReason and the whole usageMetadata. Each event is flushed on its own and
// stamped with its send time (StampKey); a stream steered from the request's
// text (TextSteer) also carries the stamp in each text delta
// (TextStampKey), where it survives a relay's conversion to another API.
type Fast struct {
	messages, responses, gemini fastAPI
}

// fastAPI is one API's precomputed answers.
type fastAPI struct {
	json   []byte
	header [][2]string
	// head, delta and textDelta are stream event templates, each beginning
	// with StampKey and a zeroed stamp; textDelta also carries one in its
	// text.
	head             []tmpl
	delta, textDelta tmpl
	// tail returns the events after deltas text deltas (textStamps: which
	// carried stamps in their text).
	tail func(deltas int, textStamps bool) []tmpl
}

// tmpl is a stream event with zeroed stamps: at is where the 19 digits of
// the JSON stamp start, text where those of the text stamp do (-1: none).
type tmpl struct {
	b        []byte
	at, text int
}

// Delta texts: every text delta is deltaText, or with text stamps
// TextStampKey and 19 digits.
const deltaText = " token"

// NewFast returns a Fast fake whose answers name model.
func NewFast(model string) *Fast {
	f := &Fast{messages: fastAPI{
		json: []byte(MessageJSON(model, fastAnswer)),
		// A few of the headers Anthropic sends, so header copying costs what it does in production.
		header: [][2]string{
			{"Request-Id", "req_011CWbenchFakeUpstream000001"},
			{"Anthropic-Organization-Id", "00000000-0000-4000-8000-000000000000"},
			{"Anthropic-Ratelimit-Requests-Limit", "4000"},
			{"Anthropic-Ratelimit-Requests-Remaining", "3999"},
			{"Anthropic-Ratelimit-Input-Tokens-Limit", "2000000"},
			{"Anthropic-Ratelimit-Output-Tokens-Limit", "400000"},
			{"Via", "1.1 google"},
		},
	}}
	var tail []tmpl
	for _, e := range MessageStream(model, "x", 1, 0) {
		switch e.Name {
		case "message_start", "content_block_start":
			f.messages.head = append(f.messages.head, newTmpl(e))
		case "content_block_delta":
			delta := func(text string) tmpl {
				return newTmpl(Event{Name: e.Name, Data: `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + text + `"}}`})
			}
			f.messages.delta, f.messages.textDelta = delta(deltaText), delta(TextStampKey+zeroStamp)
		case "content_block_stop", "message_delta", "message_stop":
			tail = append(tail, newTmpl(e))
		}
	}
	f.messages.tail = func(int, bool) []tmpl { return tail }
	f.responses = newFastResponses(model)
	f.gemini = newFastGemini(model)
	return f
}

// fastAnswer is the text of every JSON answer.
const fastAnswer = "Sure. Here is the change you asked for: the function now returns early when the list is empty, and the loop no longer copies each element. I ran the tests and they pass."

var zeroStamp = strings.Repeat("0", stampDigits)

// newTmpl renders e with a zeroed stamp right after the opening brace, and
// notes where its stamps are.
func newTmpl(e Event) tmpl {
	b := stampTemplate(e)
	t := tmpl{b: b, at: len("data: ") + len(StampKey), text: -1}
	if e.Name != "" {
		t.at += len("event: ") + len(e.Name) + len("\n")
	}
	if i := bytes.Index(b, []byte(TextStampKey+zeroStamp)); i >= 0 {
		t.text = i + len(TextStampKey)
	}
	return t
}

// stampTemplate renders e with a zeroed stamp right after the opening
// brace; an event without a name (Gemini's) is a data line alone.
func stampTemplate(e Event) []byte {
	data := e.Data
	if len(data) < 2 || data[0] != '{' {
		panic(fmt.Sprintf("fakeupstream: event data %q is not a JSON object", data))
	}
	var b []byte
	if e.Name != "" {
		b = append(b, "event: "...)
		b = append(b, e.Name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, StampKey...)
	b = append(b, zeroStamp...)
	b = append(b, ',')
	b = append(b, data[1:]...)
	return append(b, "\n\n"...)
}

// ParseStamp finds the send stamp in an event's bytes (its data line or the
// whole event); ok is false when there is none.
func ParseStamp(ev []byte) (unixNano int64, ok bool) {
	i := bytes.Index(ev, []byte(StampKey))
	if i < 0 {
		return 0, false
	}
	return parseDigits(ev[i+len(StampKey):])
}

// BenchField opens a request body that steers Fast the way the headers do:
// {"bench":{"events":N,"gap_us":G,"hold_s":H}, followed by the request's own
// fields. Fast reads it from the first bytes only; a provider would ignore
// the unknown field, and the relay forwards the body as it came.
const BenchField = `{"bench":{`

// WithBenchField returns body (a JSON object) with the steering field first.
func WithBenchField(body []byte, events int, gap, hold time.Duration) []byte {
	var b []byte
	b = append(b, BenchField...)
	b = fmt.Appendf(b, `"events":%d,"gap_us":%d,"hold_s":%d}`, events, gap.Microseconds(), int(hold.Seconds()))
	if len(body) > 2 && body[0] == '{' {
		b = append(b, ',')
		return append(b, body[1:]...)
	}
	return append(b, '}')
}

// benchSpec reads the BenchField at the start of head: ok false when absent.
func benchSpec(head []byte) (events, gapUs, holdS int, ok bool) {
	if len(head) < len(BenchField) || string(head[:len(BenchField)]) != BenchField {
		return 0, 0, 0, false
	}
	rest := head[len(BenchField):]
	for _, f := range []struct {
		name string
		v    *int
	}{{`"events":`, &events}, {`"gap_us":`, &gapUs}, {`"hold_s":`, &holdS}} {
		if len(rest) < len(f.name) || string(rest[:len(f.name)]) != f.name {
			return 0, 0, 0, false
		}
		rest = rest[len(f.name):]
		n := 0
		for len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
			n = n*10 + int(rest[0]-'0')
			rest = rest[1:]
		}
		*f.v = n
		if len(rest) > 0 && (rest[0] == ',' || rest[0] == '}') {
			rest = rest[1:]
		}
	}
	return events, gapUs, holdS, true
}

func (f *Fast) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the whole body first: the client may not read the answer before it
	// finished sending, and the relay measured must be charged for sending it.
	var head [96]byte
	hn, _ := io.ReadFull(r.Body, head[:])
	n, gapUs, holdS, ok := benchSpec(head[:hn])
	deltas, textStamps := 0, false
	if ok {
		_, _ = io.Copy(io.Discard, r.Body)
	} else if deltas, gapUs, holdS, textStamps = scanTextSteer(r.Body, head[:hn]); !textStamps {
		n, _ = strconv.Atoi(r.Header.Get(HeaderEvents))
		gapUs, _ = strconv.Atoi(r.Header.Get(HeaderGap))
		holdS, _ = strconv.Atoi(r.Header.Get(HeaderHold))
	}
	api := &f.messages
	if strings.HasSuffix(r.URL.Path, "/responses") {
		api = &f.responses
	} else if method := geminiMethod(r.URL.Path); method != "" {
		if status, body, refused := geminiRefusal(r, method); refused {
			writeGeminiRefusal(w, status, body)
			return
		}
		api = &f.gemini
		switch {
		case method == "generateContent":
			// A unary call: the JSON answer whatever the steering asks.
			n, textStamps = 0, false
		case n <= 0 && !textStamps:
			// The method, not the steering, says it streams.
			n = geminiDefaultEvents
		}
	}
	h := w.Header()
	for _, kv := range api.header {
		h[kv[0]] = []string{kv[1]}
	}
	if n <= 0 && !textStamps {
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(api.json))}
		_, _ = w.Write(api.json)
		return
	}
	if !textStamps {
		// n counts every event; the deltas are what the rest leaves.
		deltas = n - len(api.head) - len(api.tail(0, false))
	}
	f.stream(w, r, api, max(deltas, 1), textStamps, time.Duration(gapUs)*time.Microsecond, time.Duration(holdS)*time.Second)
}

// stream sends api's stream with deltas text deltas, the i-th event at
// start + i*gap, each in its own flushed write.
func (f *Fast) stream(w http.ResponseWriter, r *http.Request, api *fastAPI, deltas int, textStamps bool, gap, hold time.Duration) {
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream; charset=utf-8"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	ctx := r.Context()
	buf := make([]byte, 0, 512)
	start := time.Now()
	var timer *time.Timer
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return ctx.Err() == nil
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			timer.Stop()
			return false
		}
	}
	delta, tail := &api.delta, api.tail(deltas, textStamps)
	if textStamps {
		delta = &api.textDelta
	}
	n := len(api.head) + deltas + len(tail)
	for i := range n {
		var t *tmpl
		switch {
		case i < len(api.head):
			t = &api.head[i]
		case i < len(api.head)+deltas:
			t = delta
		default:
			t = &tail[i-len(api.head)-deltas]
		}
		if i > 0 && !wait(time.Until(start.Add(time.Duration(i)*gap))) {
			return
		}
		if hold > 0 && i == 3 {
			if !wait(min(hold, maxHold)) {
				return
			}
			start = time.Now().Add(-time.Duration(i) * gap)
		}
		buf = append(buf[:0], t.b...)
		now := time.Now().UnixNano()
		stamp(buf[t.at:t.at+stampDigits], now)
		if t.text >= 0 {
			stamp(buf[t.text:t.text+stampDigits], now)
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		fl.Flush()
	}
}

// stamp writes v as exactly len(dst) decimal digits.
func stamp(dst []byte, v int64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}
