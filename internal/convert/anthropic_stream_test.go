package convert

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// upEvent is one upstream SSE event: its name and data.
type upEvent struct{ name, data string }

// messagesStream is an upstream Messages stream with every block kind the
// reader reads or drops: thinking with its signature, redacted thinking, a
// server tool and its result (dropped), text, a tool call in fragments,
// pings, an unknown event, cumulative usage and a stop sequence.
var messagesStream = []upEvent{
	{"message_start", `{"type":"message_start","message":{"id":"msg_abc","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"output_tokens":1}}}`},
	{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants"}}`},
	{"ping", `{"type": "ping"}`},
	{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" weather."}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":0}`},
	{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":1}`},
	{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":2}`},
	{"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":3}`},
	{"content_block_start", `{"type":"content_block_start","index":4,"content_block":{"type":"text","text":""}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":4,"delta":{"type":"text_delta","text":"Let me "}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":4,"delta":{"type":"citations_delta","citation":{"type":"web_search_result_location"}}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":4,"delta":{"type":"text_delta","text":"check \"both\"."}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":4}`},
	{"content_block_start", `{"type":"content_block_start","index":5,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":""}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}`},
	{"content_block_delta", `{"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}`},
	{"content_block_stop", `{"type":"content_block_stop","index":5}`},
	{"future_event", `{"type":"future_event","x":1}`},
	{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"output_tokens":50}}`},
	{"message_stop", `{"type":"message_stop"}`},
}

var messagesStreamEvents = []Event{
	{Kind: EventStart, ID: "msg_abc", Model: "claude-sonnet-4-5", Usage: provider.Usage{InputTokens: 100, CacheCreationTokens: 5, CacheReadTokens: 20, OutputTokens: 1}},
	{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
	{Kind: EventDelta, Index: 0, Delta: "The user wants"},
	{Kind: EventDelta, Index: 0, Delta: " weather."},
	{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginAnthropic, Value: "EqQBCgIYAhIM"}},
	{Kind: EventPartStop, Index: 0},
	{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "EmwKAhgBEgy3va"}}},
	{Kind: EventPartStop, Index: 1},
	{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartText}},
	{Kind: EventDelta, Index: 2, Delta: "Let me "},
	{Kind: EventDelta, Index: 2, Delta: "check \"both\"."},
	{Kind: EventPartStop, Index: 2},
	{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: "toolu_01", Name: "get_weather"}},
	{Kind: EventDelta, Index: 3, Delta: `{"city": "Pa`},
	{Kind: EventDelta, Index: 3, Delta: `ris"}`},
	{Kind: EventPartStop, Index: 3},
	{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 100, CacheCreationTokens: 5, CacheReadTokens: 20, OutputTokens: 50}},
}

func readAll(r StreamReader, events []upEvent) []Event {
	var evs []Event
	for _, e := range events {
		evs = r.Read(evs, []byte(e.name), []byte(e.data))
	}
	return evs
}

func TestMessagesStreamReader(t *testing.T) {
	got := readAll(NewMessagesStreamReader(), messagesStream)
	if !reflect.DeepEqual(got, messagesStreamEvents) {
		t.Errorf("events\n got: %+v\nwant: %+v", got, messagesStreamEvents)
	}
}

func TestMessagesStreamReaderCases(t *testing.T) {
	const start = `{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":3,"output_tokens":1}}}`
	u3 := provider.Usage{InputTokens: 3, OutputTokens: 1}
	tests := []struct {
		name   string
		events []upEvent
		want   []Event
	}{
		{
			name:   "error event ends the stream",
			events: []upEvent{{"message_start", start}, {"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}, {"message_stop", `{}`}},
			want:   []Event{{Kind: EventStart, ID: "msg_1", Model: "claude-x", Usage: u3}, {Kind: EventError, ErrType: "overloaded_error", Delta: "Overloaded"}},
		},
		{
			name: "names taken from data; whole input and thinking in the start event; stop sequence",
			events: []upEvent{{"", start},
				{"", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"hm","signature":"SIG"}}`},
				{"", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"a":1}}}`},
				{"", `{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":9}}`},
				{"", `{"type":"message_stop"}`}},
			want: []Event{{Kind: EventStart, ID: "msg_1", Model: "claude-x", Usage: u3},
				{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
				{Kind: EventDelta, Index: 0, Delta: "hm"},
				{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginAnthropic, Value: "SIG"}},
				{Kind: EventPartStop, Index: 0},
				{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "t", Name: "f"}},
				{Kind: EventDelta, Index: 1, Delta: `{"a":1}`},
				{Kind: EventPartStop, Index: 1},
				{Kind: EventFinish, Stop: StopSequence, StopSequence: "END", Usage: provider.Usage{InputTokens: 3, OutputTokens: 9}}},
		},
		{
			name: "no message_start; malformed and stray events ignored",
			events: []upEvent{{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"x"}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_del`},
				{"content_block_delta", `{"type":"content_block_delta","index":7,"delta":{"type":"text_delta","text":"lost"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":7}`},
				{"content_block_delta", ``},
				{"message_stop", `{}`}},
			want: []Event{{Kind: EventStart},
				{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}}, {Kind: EventDelta, Index: 0, Delta: "x"}, {Kind: EventPartStop, Index: 0},
				{Kind: EventFinish, Stop: StopEnd}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(NewMessagesStreamReader(), tt.events)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events\n got: %+v\nwant: %+v", got, tt.want)
			}
		})
	}
}

// sseBytes frames events as an upstream sends them.
func sseBytes(events []upEvent, eol string) []byte {
	var b []byte
	for _, e := range events {
		if e.name != "" {
			b = append(b, "event: "+e.name+eol...)
		}
		b = append(b, "data: "+e.data+eol+eol...)
	}
	return b
}

func TestMessagesStreamReaderCutAtEveryByte(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n"} {
		raw := sseBytes(messagesStream, eol)
		read := func(cuts ...int) []Event { return feedSSE(NewMessagesStreamReader(), raw, cuts...) }
		if whole := read(); !reflect.DeepEqual(whole, messagesStreamEvents) {
			t.Fatalf("whole stream (eol %q): %+v", eol, whole)
		}
		checkEveryCut(t, raw, read, messagesStreamEvents)
	}
}

// clientStream is what a Messages client reads: SSE event names and data.
type clientEvent struct{ name, data string }

func parseClientStream(t testing.TB, out []byte) []clientEvent {
	t.Helper()
	var (
		p   sse.Parser
		evs []clientEvent
	)
	p.Feed(out, func(ev *sse.Event) bool {
		evs = append(evs, clientEvent{string(ev.Name), string(ev.Data)})
		return true
	})
	if p.Pending() != 0 {
		t.Fatalf("unterminated event at the end: %q", p.PendingBytes())
	}
	for _, e := range evs {
		if !json.Valid([]byte(e.data)) || e.name == "" || !strings.Contains(e.data, `"type":"`+e.name+`"`) {
			t.Fatalf("malformed client event %q: %s", e.name, e.data)
		}
	}
	return evs
}

// accumulate runs a client stream through anthropic-sdk-go's accumulator,
// which checks block order and indexes as the SDK's users rely on.
func accumulate(t testing.TB, out []byte) anthropic.Message {
	t.Helper()
	var msg anthropic.Message
	for _, e := range parseClientStream(t, out) {
		if e.name == "error" {
			continue
		}
		var ev anthropic.MessageStreamEventUnion
		if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
			t.Fatalf("SDK cannot read %s: %v", e.data, err)
		}
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("SDK accumulator refuses %s: %v", e.data, err)
		}
	}
	return msg
}

func TestMessagesStreamWriter(t *testing.T) {
	openaiSig := Signature{Origin: OriginOpenAI, ID: "rs_1", Value: "gAAAAB"}
	usage := provider.Usage{InputTokens: 10, CacheReadTokens: 90, OutputTokens: 7}
	evs := []Event{
		{Kind: EventStart, ID: "resp_1", Model: "gpt-5", Usage: provider.Usage{InputTokens: 10, CacheReadTokens: 90}},
		{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
		{Kind: EventDelta, Index: 0, Delta: "**Plan**"},
		{Kind: EventDelta, Index: 0, Delta: " look"},
		{Kind: EventSignature, Index: 0, Sig: openaiSig},
		{Kind: EventPartStop, Index: 0},
		{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
		{Kind: EventDelta, Index: 1, Delta: "Sure "},
		{Kind: EventDelta, Index: 1, Delta: "<b>"},
		{Kind: EventPartStop, Index: 1},
		{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartToolCall, CallID: "call_9", Name: "get_weather"}},
		{Kind: EventDelta, Index: 2, Delta: `{"city":`},
		{Kind: EventDelta, Index: 2, Delta: `"Paris"}`},
		{Kind: EventPartStop, Index: 2},
		{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: "call_10", Name: "apply_patch", Custom: true}},
		{Kind: EventDelta, Index: 3, Delta: "*** Begin \"Patch\"\n"},
		{Kind: EventDelta, Index: 3, Delta: "+é\\x"},
		{Kind: EventPartStop, Index: 3},
		{Kind: EventFinish, Stop: StopTool, Usage: usage},
	}
	out := writeAll(NewMessagesStreamWriter("claude-sonnet-4-5"), evs)
	wrapped := WrapSignature(openaiSig, "**Plan** look")
	want := []clientEvent{
		{"message_start", `{"type":"message_start","message":{"id":"msg_resp_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":90,"output_tokens":0}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"**Plan**"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" look"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"` + wrapped + `"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Sure "}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"<b>"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_9","name":"get_weather","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":2}`},
		{"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"call_10","name":"apply_patch","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"input\":\""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"*** Begin \\\"Patch\\\"\\n"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"+é\\\\x"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"\"}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":3}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":90,"output_tokens":7}}`},
		{"message_stop", `{"type":"message_stop"}`},
	}
	got := parseClientStream(t, out)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client stream\n got: %q\nwant: %q", got, want)
	}

	// The stream accumulates into the same message WriteMessages writes for
	// the same answer.
	msg := accumulate(t, out)
	whole := WriteMessages(&Response{ID: "resp_1", Parts: []Part{
		{Kind: PartThinking, Text: "**Plan** look", Sig: openaiSig},
		text("Sure <b>"),
		{Kind: PartToolCall, CallID: "call_9", Name: "get_weather", Args: `{"city":"Paris"}`},
		{Kind: PartToolCall, CallID: "call_10", Name: "apply_patch", Custom: true, Args: "*** Begin \"Patch\"\n+é\\x"},
	}, Stop: StopTool, Usage: usage}, "claude-sonnet-4-5")
	jsonEqual(t, []byte(msg.RawJSON()), string(whole))
}

func TestMessagesStreamWriterCases(t *testing.T) {
	t.Run("error event, nothing after it", func(t *testing.T) {
		w := NewMessagesStreamWriter("m")
		out := writeAll(w, []Event{{Kind: EventStart, ID: "msg_1"}, {Kind: EventPartStart, Part: Part{Kind: PartText}},
			{Kind: EventError, ErrType: "overloaded_error", Delta: "Overloaded"}, {Kind: EventFinish}})
		got := parseClientStream(t, out)
		last := got[len(got)-1]
		if len(got) != 3 || last.name != "error" || last.data != `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` {
			t.Errorf("stream: %q", got)
		}
		if out := writeAll(NewMessagesStreamWriter("m"), []Event{{Kind: EventError}}); !strings.Contains(string(out), `{"type":"api_error","message":"upstream stream error"}`) {
			t.Errorf("error without type: %s", out)
		}
	})
	t.Run("a retried attempt continues one message", func(t *testing.T) {
		w := NewMessagesStreamWriter("m")
		first := []Event{{Kind: EventStart, ID: "msg_a"}, {Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}}, {Kind: EventDelta, Index: 0, Delta: "par"}}
		second := []Event{{Kind: EventStart, ID: "msg_b"}, {Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}}, {Kind: EventDelta, Index: 0, Delta: "tial"},
			{Kind: EventPartStop, Index: 0}, {Kind: EventFinish, Stop: StopEnd}}
		out := writeAll(w, append(first, second...))
		msg := accumulate(t, out)
		if msg.ID != "msg_a" || len(msg.Content) != 2 || msg.Content[0].Text != "par" || msg.Content[1].Text != "tial" {
			t.Errorf("message: %s", msg.RawJSON())
		}
	})
	t.Run("parts before the start, anthropic thinking, redacted, images skipped", func(t *testing.T) {
		out := writeAll(NewMessagesStreamWriter("m"), []Event{
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartImage}},
			{Kind: EventDelta, Index: 0, Delta: "ignored"},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartThinking}},
			{Kind: EventDelta, Index: 1, Delta: "t"},
			{Kind: EventSignature, Index: 1, Sig: Signature{Origin: OriginAnthropic, Value: "SIG"}},
			{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "RED"}}},
			{Kind: EventDelta, Index: 2, Delta: "never"},
			{Kind: EventFinish, Stop: StopSequence, StopSequence: "END"},
		})
		msg := accumulate(t, out)
		jsonEqual(t, []byte(msg.RawJSON()), `{"id":"`+msg.ID+`","type":"message","role":"assistant","model":"m","content":[
			{"type":"thinking","thinking":"t","signature":"SIG"},{"type":"redacted_thinking","data":"RED"}],
			"stop_reason":"stop_sequence","stop_sequence":"END","usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`)
		if !strings.HasPrefix(msg.ID, "msg_") {
			t.Errorf("id %q", msg.ID)
		}
	})
}

// TestMessagesStreamPipe runs an upstream Messages stream through the
// reader and the writer: the client gets what the upstream said, minus the
// server-tool blocks, as one message equal to the whole-answer path's.
func TestMessagesStreamPipe(t *testing.T) {
	out := writeAll(NewMessagesStreamWriter("claude-sonnet-4-5"), readAll(NewMessagesStreamReader(), messagesStream))
	msg := accumulate(t, out)
	resp, err := ParseMessages([]byte(`{"id":"msg_abc","content":[
		{"type":"thinking","thinking":"The user wants weather.","signature":"EqQBCgIYAhIM"},
		{"type":"redacted_thinking","data":"EmwKAhgBEgy3va"},
		{"type":"text","text":"Let me check \"both\"."},
		{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city": "Paris"}}],
		"stop_reason":"tool_use","usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"output_tokens":50}}`))
	if err != nil {
		t.Fatal(err)
	}
	var streamed, whole map[string]any
	if err := json.Unmarshal([]byte(msg.RawJSON()), &streamed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(WriteMessages(resp, "claude-sonnet-4-5"), &whole); err != nil {
		t.Fatal(err)
	}
	// The streamed tool input keeps the upstream's spacing.
	streamed["content"].([]any)[3].(map[string]any)["input"] = whole["content"].([]any)[3].(map[string]any)["input"]
	if !reflect.DeepEqual(streamed, whole) {
		t.Errorf("streamed %v\n   whole %v", streamed, whole)
	}
}

func TestUncustomStream(t *testing.T) {
	events := []upEvent{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"apply_patch","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"input\": \"*** Be"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"gin\\n\"}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t2","name":"shell","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"ls\"}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		{"message_stop", `{"type":"message_stop"}`},
	}
	got := readAll(UncustomStream(NewMessagesStreamReader(), []Tool{{Name: "apply_patch", Custom: true}, {Name: "shell"}}), events)
	want := []Event{
		{Kind: EventStart, ID: "msg_1", Usage: provider.Usage{InputTokens: 1}},
		{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartToolCall, CallID: "t1", Name: "apply_patch", Custom: true}},
		{Kind: EventDelta, Index: 0, Delta: "*** Begin\n"},
		{Kind: EventPartStop, Index: 0},
		{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "t2", Name: "shell"}},
		{Kind: EventDelta, Index: 1, Delta: `{"cmd":"ls"}`},
		{Kind: EventPartStop, Index: 1},
		{Kind: EventFinish, Stop: StopEnd, Usage: provider.Usage{InputTokens: 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events\n got: %+v\nwant: %+v", got, want)
	}
}

func BenchmarkMessagesStreamPipe(b *testing.B) {
	raw := sseBytes(messagesStream, "\n")
	var (
		p   sse.Parser
		evs []Event
		out []byte
	)
	b.ReportAllocs()
	for b.Loop() {
		r, w := NewMessagesStreamReader(), NewMessagesStreamWriter("m")
		out = out[:0]
		p.Reset()
		p.Feed(raw, func(ev *sse.Event) bool {
			evs = r.Read(evs[:0], ev.Name, ev.Data)
			for i := range evs {
				out = w.Write(out, &evs[i])
			}
			return true
		})
	}
	_ = fmt.Sprint(len(out))
}
