package fakeupstream

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// A relay that converts a request to another provider's API re-encodes the
// body and the answer: the BenchField and every event's bench_ts are
// dropped, as unknown fields are. What survives is text. So a client that
// goes through a conversion puts its steering in the request's text
// (TextSteer), and Fast then stamps each text delta's text as well
// (TextStampKey): the converted stream's text deltas still carry the time
// the upstream sent them (ParseTextStamp).

// TextStampKey precedes the 19-digit send stamp inside the text of every
// text delta of a stream steered by TextSteer: the delta's text is
// TextStampKey followed by the Unix nanoseconds.
const TextStampKey = " token@"

// TextSteerKey opens the steering TextSteer writes.
const TextSteerKey = "[bench deltas="

// maxSteer bounds the length of a TextSteer string.
const maxSteer = 96

// TextSteer is the steering a client puts anywhere in its request's text
// when the relay may convert the request: a stream of deltas text deltas
// (plus the API's own opening and closing events), gap apart, held silent
// after the third event for hold. Fast finds it in the first bytes it has
// not already read past; it needs no JSON escaping.
func TextSteer(deltas int, gap, hold time.Duration) string {
	return fmt.Sprintf("%s%d gap_us=%d hold_s=%d]", TextSteerKey, deltas, gap.Microseconds(), int(hold.Seconds()))
}

// parseTextSteer reads a TextSteer string at the start of b.
func parseTextSteer(b []byte) (deltas, gapUs, holdS int, ok bool) {
	rest := b
	for _, f := range []struct {
		name string
		v    *int
	}{{TextSteerKey, &deltas}, {" gap_us=", &gapUs}, {" hold_s=", &holdS}} {
		if !bytes.HasPrefix(rest, []byte(f.name)) {
			return 0, 0, 0, false
		}
		rest = rest[len(f.name):]
		digits := 0
		for len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' && digits < 9 {
			*f.v = *f.v*10 + int(rest[0]-'0')
			rest = rest[1:]
			digits++
		}
		if digits == 0 {
			return 0, 0, 0, false
		}
	}
	if len(rest) == 0 || rest[0] != ']' || deltas == 0 {
		return 0, 0, 0, false
	}
	return deltas, gapUs, holdS, true
}

var scanPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// scanTextSteer reads the rest of a request body whose first bytes were
// head, looking for a TextSteer string; found is false when there was none.
// Like the io.Copy it replaces, it reads in fixed chunks: a large body costs
// no more memory.
func scanTextSteer(body io.Reader, head []byte) (deltas, gapUs, holdS int, found bool) {
	bp := scanPool.Get().(*[]byte)
	defer scanPool.Put(bp)
	buf := *bp
	n := copy(buf, head)
	for {
		m, err := body.Read(buf[n:])
		n += m
		if i := bytes.Index(buf[:n], []byte(TextSteerKey)); i >= 0 && (n-i >= maxSteer || err != nil) {
			if deltas, gapUs, holdS, found = parseTextSteer(buf[i:n]); found {
				_, _ = io.Copy(io.Discard, body)
				return deltas, gapUs, holdS, true
			}
			// Not a steering string: look past it.
			n = copy(buf, buf[i+1:n])
			continue
		}
		if err != nil {
			return 0, 0, 0, false
		}
		// Keep the tail that may hold the start of a steering string.
		keep := min(n, maxSteer)
		n = copy(buf, buf[n-keep:n])
	}
}

// ParseTextStamp finds the send stamp in the text of a text delta (the
// first TextStampKey in ev and the 19 digits after it); ok is false when
// there is none. Only a delta's own text holds one stamp: events that
// repeat the whole text (output_text.done, response.completed) hold them
// all, so callers read it from text delta events alone.
func ParseTextStamp(ev []byte) (unixNano int64, ok bool) {
	i := bytes.Index(ev, []byte(TextStampKey))
	if i < 0 {
		return 0, false
	}
	return parseDigits(ev[i+len(TextStampKey):])
}

// parseDigits reads the stampDigits digits at the start of b.
func parseDigits(b []byte) (int64, bool) {
	if len(b) < stampDigits {
		return 0, false
	}
	var n int64
	for _, c := range b[:stampDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// newFastResponses precomputes Fast's Responses answers (the shapes of
// ResponseStream and ResponseJSON). The closing events repeat the whole
// text, as the API's do, so they are built once per number of deltas.
// Sequence numbers are the templates' own: a delta's does not count up.
func newFastResponses(model string) fastAPI {
	api := fastAPI{
		json: []byte(ResponseJSON(model, fastAnswer)),
		header: [][2]string{
			{"X-Request-Id", "req_benchfakeupstream0000000000001"},
			{"Openai-Organization", "org-bench"},
			{"Openai-Processing-Ms", "120"},
			{"Openai-Version", "2020-10-01"},
			{"X-Ratelimit-Limit-Requests", "10000"},
			{"X-Ratelimit-Remaining-Requests", "9999"},
			{"X-Ratelimit-Limit-Tokens", "30000000"},
			{"X-Ratelimit-Remaining-Tokens", "29999000"},
		},
	}
	evs := ResponseStream(model, "x", 1, 0)
	for _, e := range evs[:4] { // created, in_progress, output_item.added, content_part.added
		api.head = append(api.head, newTmpl(e))
	}
	delta := func(text string) tmpl {
		return newTmpl(Event{Name: "response.output_text.delta",
			Data: `{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_fake01","output_index":0,"content_index":0,"delta":"` + text + `","logprobs":[]}`})
	}
	api.delta, api.textDelta = delta(deltaText), delta(TextStampKey+zeroStamp)
	type key struct {
		deltas     int
		textStamps bool
	}
	var tails sync.Map // key -> []tmpl
	api.tail = func(deltas int, textStamps bool) []tmpl {
		k := key{deltas, textStamps}
		if t, ok := tails.Load(k); ok {
			return t.([]tmpl)
		}
		text := deltaText
		if textStamps {
			text = TextStampKey + zeroStamp
		}
		evs := ResponseStream(model, strings.Repeat(text, max(deltas, 1)), 1, 0)
		var t []tmpl
		for _, e := range evs[len(evs)-4:] { // output_text.done, content_part.done, output_item.done, completed
			tt := newTmpl(e)
			tt.text = -1 // the whole text: its zeroed stamps stay as they are
			t = append(t, tt)
		}
		tails.Store(k, t)
		return t
	}
	return api
}
