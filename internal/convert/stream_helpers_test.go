package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/ccrelay/ccrelay/internal/sse"
)

// feedSSE runs stream through internal/sse's parser, cut at the given
// offsets, into r.
func feedSSE(r StreamReader, stream []byte, cuts ...int) []Event {
	var p sse.Parser
	var evs []Event
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		p.Feed(stream[prev:c], func(ev *sse.Event) bool {
			evs = r.Read(evs, ev.Name, ev.Data)
			return true
		})
		prev = c
	}
	return evs
}

// writeAll writes evs to w and finishes the stream.
func writeAll(w StreamWriter, evs []Event) []byte {
	var out []byte
	for i := range evs {
		out = w.Write(out, &evs[i])
	}
	return w.Finish(out)
}

// checkEveryCut reads stream cut at every byte offset, then one byte at a
// time, and fails t unless each read gives want. read feeds a fresh
// reader the stream cut at the offsets it is given.
func checkEveryCut(t *testing.T, stream []byte, read func(cuts ...int) []Event, want []Event) {
	t.Helper()
	for i := 1; i < len(stream); i++ {
		if got := read(i); !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d: got\n%+v\nwant\n%+v", i, got, want)
		}
	}
	every := make([]int, 0, len(stream))
	for i := 1; i < len(stream); i++ {
		every = append(every, i)
	}
	if got := read(every...); !reflect.DeepEqual(got, want) {
		t.Fatalf("byte by byte: got\n%+v\nwant\n%+v", got, want)
	}
}

// fuzzCuts is the one cut a stream fuzz target feeds its reader at: none
// when cut falls outside the stream.
func fuzzCuts(stream []byte, cut uint16) []int {
	if c := int(cut); c > 0 && c < len(stream) {
		return []int{c}
	}
	return nil
}

// checkRequestError fails t unless err is a *RequestError with a message.
func checkRequestError(t *testing.T, err error) {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("error %v (%T), want a *RequestError with a message", err, err)
	}
}

// checkParsedWrites parses body (an error is fine) and fails t unless
// every writer writes what parsed as valid JSON.
func checkParsedWrites(t *testing.T, body []byte, parse func([]byte) (*Response, error), writers ...func(*Response, string) []byte) {
	t.Helper()
	resp, err := parse(body)
	if err != nil {
		return
	}
	for i, write := range writers {
		if out := write(resp, "m"); !json.Valid(out) {
			t.Fatalf("writer %d's answer is not valid JSON: %s", i, out)
		}
	}
}

// messagesEventNames abbreviates Messages event names in fuzz inputs, so
// the fuzzer's minimization stays fast.
var messagesEventNames = [...]string{
	's': "message_start",
	'b': "content_block_start",
	'd': "content_block_delta",
	'e': "content_block_stop",
	'm': "message_delta",
	'x': "message_stop",
	'p': "ping",
	'r': "error",
}

// eachFuzzEvent splits a fuzz input into events on blank lines and calls
// fn with each: the first line is its name (one letter of
// messagesEventNames, or spelled out), the rest its data.
func eachFuzzEvent(input []byte, fn func(name, data []byte)) {
	for _, ev := range bytes.Split(input, []byte("\n\n")) {
		name, data, _ := bytes.Cut(ev, []byte("\n"))
		if len(name) == 1 && int(name[0]) < len(messagesEventNames) && messagesEventNames[name[0]] != "" {
			name = []byte(messagesEventNames[name[0]])
		}
		fn(name, data)
	}
}
