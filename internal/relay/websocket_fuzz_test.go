package relay

import (
	"log/slog"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzWebSocketMessage feeds any message to the WebSocket's reading of it
// (the continuation's history, the POST body built from it) and to the
// compaction readers of a body: none panics, and a body they build is a
// JSON object that streams, with the socket's own members gone.
func FuzzWebSocketMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"response.create","model":"m","input":[{"type":"message","role":"user","content":"hi"}]}`,
		`{"type":"response.create","model":"m","previous_response_id":"resp_1","input":"more","generate":false}`,
		`{"type":"response.create","input":[{"type":"compaction_trigger"}]}`,
		`{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"compaction_trigger"}]}`,
		`{"type":"response.create","input":{"a":1}}`, `[]`, `{`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = compactionTriggered(data)
		_ = keptUserMessages(data)
		if !gjson.ValidBytes(data) {
			return
		}
		msg := gjson.ParseBytes(data)
		if !msg.IsObject() {
			return
		}
		s := &wsSession{r: &Relay{log: slog.New(slog.DiscardHandler)}, lastID: "resp_1", lastInput: []byte(`[{"type":"message","role":"user","content":"a"}]`), lastOutput: [][]byte{[]byte(`{"type":"message","role":"assistant","content":[]}`)}}
		input, err := s.fullInput(msg)
		if err != nil {
			return
		}
		if !gjson.ValidBytes(input) || !gjson.ParseBytes(input).IsArray() {
			t.Fatalf("input %s is not a JSON array", input)
		}
		body, err := requestBody(data, input)
		if err != nil {
			return
		}
		b := gjson.ParseBytes(body)
		if !gjson.ValidBytes(body) || !b.IsObject() || !b.Get("stream").Bool() || b.Get("previous_response_id").Exists() || b.Get("generate").Exists() {
			t.Fatalf("body %s from %s", body, data)
		}
	})
}
