package convert

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// responsesReadStream feeds stream to a fresh Responses reader in chunks cut at the
// given offsets, through internal/sse's parser.
func responsesReadStream(stream []byte, cuts ...int) []Event {
	return feedSSE(NewResponsesStreamReader(), stream, cuts...)
}

var responsesWantToolEvents = []Event{
	{Kind: EventStart, ID: "resp_68b2", Model: "gpt-5-codex"},
	{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
	{Kind: EventDelta, Index: 0, Delta: "**Pl"},
	{Kind: EventDelta, Index: 0, Delta: "an**"},
	{Kind: EventDelta, Index: 0, Delta: "\n\nRead, then patch."},
	{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginOpenAI, Value: "gAAAAABstream", ID: "rs_68b2"}},
	{Kind: EventPartStop, Index: 0},
	{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
	{Kind: EventDelta, Index: 1, Delta: "Reading "},
	{Kind: EventDelta, Index: 1, Delta: "a.go."},
	{Kind: EventPartStop, Index: 1},
	{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartToolCall, CallID: "call_S1", Name: "read"}},
	{Kind: EventDelta, Index: 2, Delta: `{"path":`},
	{Kind: EventDelta, Index: 2, Delta: `"a.go"}`},
	{Kind: EventPartStop, Index: 2},
	{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: "call_S2", Name: "apply_patch", Custom: true}},
	{Kind: EventDelta, Index: 3, Delta: "*** Begin Patch\n"},
	{Kind: EventDelta, Index: 3, Delta: "*** End Patch"},
	{Kind: EventPartStop, Index: 3},
	{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 388, CacheReadTokens: 512, OutputTokens: 120}, ReasoningTokens: 80},
}

func TestResponsesStreamReader(t *testing.T) {
	got := responsesReadStream(responsesFixture(t, "stream_tool.sse"))
	if !reflect.DeepEqual(got, responsesWantToolEvents) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, responsesWantToolEvents)
	}
}

// TestResponsesStreamReaderCutAtEveryByte feeds the stream split at every
// byte offset (and in single bytes): the events are the same.
func TestResponsesStreamReaderCutAtEveryByte(t *testing.T) {
	stream := responsesFixture(t, "stream_tool.sse")
	checkEveryCut(t, stream, func(cuts ...int) []Event { return responsesReadStream(stream, cuts...) }, responsesWantToolEvents)
}

// responsesSSE writes events as an upstream would (data-only when name is "").
func responsesSSE(events ...[2]string) []byte {
	var b strings.Builder
	for _, e := range events {
		if e[0] != "" {
			b.WriteString("event: " + e[0] + "\n")
		}
		b.WriteString("data: " + e[1] + "\n\n")
	}
	return []byte(b.String())
}

func TestResponsesStreamReaderCases(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		want   []Event
	}{
		{"items without deltas, no created, data-only events", responsesSSE(
			[2]string{"", `{"type":"response.output_item.added","output_index":0,"item":{"type":"reasoning","id":"rs_1","summary":[]}}`},
			[2]string{"", `{"type":"response.output_item.done","output_index":0,"item":{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAenc"}}`},
			[2]string{"", `{"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"}}`},
			[2]string{"", `{"type":"response.completed","response":{"id":"resp_9","status":"completed","output":[],"usage":{"input_tokens":10,"output_tokens":3}}}`},
		), []Event{
			{Kind: EventStart, ID: "", Model: ""},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
			{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginOpenAI, Value: "gAAAAenc", ID: "rs_1"}},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "c1", Name: "f"}},
			{Kind: EventDelta, Index: 1, Delta: `{"a":1}`},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 10, OutputTokens: 3}},
		}},
		{"interleaved items are emitted in order, whole", responsesSSE(
			[2]string{"response.created", `{"type":"response.created","response":{"id":"resp_i","model":"m"}}`},
			[2]string{"response.output_item.added", `{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","call_id":"a","name":"f","arguments":""}}`},
			[2]string{"response.output_item.added", `{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","call_id":"b","name":"g","arguments":""}}`},
			[2]string{"response.function_call_arguments.delta", `{"type":"response.function_call_arguments.delta","output_index":1,"delta":"{\"y\""}`},
			[2]string{"response.function_call_arguments.delta", `{"type":"response.function_call_arguments.delta","output_index":0,"delta":"{}"}`},
			[2]string{"response.output_item.done", `{"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","call_id":"b","name":"g","arguments":"{\"y\":2}"}}`},
			[2]string{"response.output_item.done", `{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","call_id":"a","name":"f","arguments":"{}"}}`},
			[2]string{"response.completed", `{"type":"response.completed","response":{"id":"resp_i","status":"completed","output":[]}}`},
		), []Event{
			{Kind: EventStart, ID: "resp_i", Model: "m"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartToolCall, CallID: "a", Name: "f"}},
			{Kind: EventDelta, Index: 0, Delta: "{}"},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "b", Name: "g"}},
			{Kind: EventDelta, Index: 1, Delta: `{"y":2}`},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventFinish, Stop: StopTool},
		}},
		{"incomplete with refusal text, output only in the final response, hosted items dropped", responsesSSE(
			[2]string{"response.created", `{"type":"response.created","response":{"id":"resp_c","model":"m"}}`},
			[2]string{"response.output_item.done", `{"type":"response.output_item.done","output_index":0,"item":{"type":"web_search_call","id":"ws_1","status":"completed"}}`},
			[2]string{"response.incomplete", `{"type":"response.incomplete","response":{"id":"resp_c","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"web_search_call"},{"type":"message","content":[{"type":"output_text","text":"cut sh"}]}],"usage":{"input_tokens":4,"input_tokens_details":{"cached_tokens":1},"output_tokens":9}}}`},
			[2]string{"response.output_text.delta", `{"type":"response.output_text.delta","output_index":0,"delta":"late"}`},
		), []Event{
			{Kind: EventStart, ID: "resp_c", Model: "m"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 0, Delta: "cut sh"},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventFinish, Stop: StopMax, Usage: provider.Usage{InputTokens: 3, CacheReadTokens: 1, OutputTokens: 9}},
		}},
		{"refusal deltas", responsesSSE(
			[2]string{"response.output_item.added", `{"type":"response.output_item.added","output_index":0,"item":{"type":"message","content":[]}}`},
			[2]string{"response.refusal.delta", `{"type":"response.refusal.delta","output_index":0,"delta":"No."}`},
			[2]string{"response.output_item.done", `{"type":"response.output_item.done","output_index":0,"item":{"type":"message","content":[{"type":"refusal","refusal":"No."}]}}`},
			[2]string{"response.completed", `{"type":"response.completed","response":{"status":"completed","output":[]}}`},
		), []Event{
			{Kind: EventStart},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 0, Delta: "No."},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventFinish, Stop: StopRefusal},
		}},
		{"failed mid-stream ends it", responsesSSE(
			[2]string{"response.created", `{"type":"response.created","response":{"id":"resp_f","model":"m"}}`},
			[2]string{"response.output_item.added", `{"type":"response.output_item.added","output_index":0,"item":{"type":"message","content":[]}}`},
			[2]string{"response.output_text.delta", `{"type":"response.output_text.delta","output_index":0,"delta":"Hel"}`},
			[2]string{"response.failed", `{"type":"response.failed","response":{"id":"resp_f","status":"failed","error":{"code":"server_error","message":"The model failed"}}}`},
			[2]string{"response.completed", `{"type":"response.completed","response":{"status":"completed"}}`},
		), []Event{
			{Kind: EventStart, ID: "resp_f", Model: "m"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 0, Delta: "Hel"},
			{Kind: EventError, ErrType: "server_error", Delta: "The model failed"},
		}},
		{"error event", responsesSSE(
			[2]string{"error", `{"type":"error","code":"rate_limit_exceeded","message":"Slow down","param":null}`},
		), []Event{
			{Kind: EventError, ErrType: "rate_limit_exceeded", Delta: "Slow down"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := responsesReadStream(tt.stream)
			// The reader invents an id when response.created did not come.
			for i := range got {
				if got[i].Kind == EventStart && strings.HasPrefix(got[i].ID, "resp_") && tt.want[i].ID == "" {
					got[i].ID = ""
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// responsesSSEEvent is one event a writer produced.
type responsesSSEEvent struct {
	Name string
	Data map[string]any
}

func parseResponsesSSE(t *testing.T, b []byte) []responsesSSEEvent {
	t.Helper()
	var out []responsesSSEEvent
	var p sse.Parser
	p.Feed(b, func(ev *sse.Event) bool {
		var d map[string]any
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatalf("event %s data is not JSON: %v: %s", ev.Name, err, ev.Data)
		}
		if d["type"] != string(ev.Name) {
			t.Fatalf("event %s has type %v", ev.Name, d["type"])
		}
		out = append(out, responsesSSEEvent{Name: string(ev.Name), Data: d})
		return true
	})
	if p.Pending() != 0 {
		t.Fatalf("unterminated event: %q", p.PendingBytes())
	}
	return out
}

// responsesClaudeToolStream is what an Anthropic reader hands over for a Claude answer
// with signed thinking, text and two tool calls.
var responsesClaudeToolStream = []Event{
	{Kind: EventStart, ID: "msg_01XYZ", Model: "claude-sonnet-4-5", Usage: provider.Usage{InputTokens: 12, CacheReadTokens: 300, CacheCreationTokens: 20}},
	{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
	{Kind: EventDelta, Index: 0, Delta: "Let me "},
	{Kind: EventDelta, Index: 0, Delta: "check."},
	{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginAnthropic, Value: "EqQBsig=="}},
	{Kind: EventPartStop, Index: 0},
	{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
	{Kind: EventDelta, Index: 1, Delta: "Running \"ls\"."},
	{Kind: EventPartStop, Index: 1},
	{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartToolCall, CallID: "toolu_01A", Name: "shell"}},
	{Kind: EventDelta, Index: 2, Delta: `{"command":`},
	{Kind: EventDelta, Index: 2, Delta: `["ls"]}`},
	{Kind: EventPartStop, Index: 2},
	{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: "toolu_01B", Name: "apply_patch", Custom: true}},
	{Kind: EventDelta, Index: 3, Delta: "*** Begin Patch\n"},
	{Kind: EventPartStop, Index: 3},
	{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{OutputTokens: 77}},
}

func TestResponsesStreamWriter(t *testing.T) {
	out := writeAll(NewResponsesStreamWriter("gpt-5-codex"), responsesClaudeToolStream)
	evs := parseResponsesSSE(t, out)
	var names []string
	for i, e := range evs {
		names = append(names, e.Name)
		if e.Data["sequence_number"] != float64(i) {
			t.Fatalf("event %d (%s) has sequence_number %v", i, e.Name, e.Data["sequence_number"])
		}
	}
	want := []string{
		"response.created", "response.in_progress",
		"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
		"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
		"response.output_item.added", "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done", "response.output_item.done",
		"response.completed",
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("events\n%v\nwant\n%v", names, want)
	}
	created := evs[0].Data["response"].(map[string]any)
	if created["id"] != "resp_01XYZ" || created["status"] != "in_progress" || created["model"] != "gpt-5-codex" {
		t.Fatalf("created: %v", created)
	}
	if inProgress := evs[1].Data["response"]; !reflect.DeepEqual(inProgress, created) {
		t.Fatalf("in_progress carries %v, created %v", inProgress, created)
	}
	rsDone := evs[8].Data["item"].(map[string]any)
	sig, text, ok := UnwrapSignature(rsDone["encrypted_content"].(string))
	if !ok || sig.Value != "EqQBsig==" || text != "Let me check." || rsDone["id"] != "rs_01XYZ_0" {
		t.Fatalf("reasoning done item: %v", rsDone)
	}
	if d := evs[12].Data; d["text"] != `Running "ls".` || d["item_id"] != "msg_01XYZ_1" || d["output_index"] != float64(1) {
		t.Fatalf("output_text.done: %v", d)
	}
	if d := evs[18].Data; d["arguments"] != `{"command":["ls"]}` || d["item_id"] != "fc_01XYZ_2" {
		t.Fatalf("function_call_arguments.done: %v", d)
	}
	if it := evs[19].Data["item"].(map[string]any); it["call_id"] != "toolu_01A" || it["name"] != "shell" || it["status"] != "completed" {
		t.Fatalf("function call done: %v", it)
	}
	if it := evs[23].Data["item"].(map[string]any); it["type"] != "custom_tool_call" || it["input"] != "*** Begin Patch\n" || it["call_id"] != "toolu_01B" {
		t.Fatalf("custom call done: %v", it)
	}
	resp := evs[24].Data["response"].(map[string]any)
	if resp["status"] != "completed" || len(resp["output"].([]any)) != 4 || resp["id"] != "resp_01XYZ" {
		t.Fatalf("completed: %v", resp)
	}
	u := resp["usage"].(map[string]any)
	if u["input_tokens"] != float64(332) || u["output_tokens"] != float64(77) || u["total_tokens"] != float64(409) ||
		u["input_tokens_details"].(map[string]any)["cached_tokens"] != float64(300) {
		t.Fatalf("usage: %v", u)
	}
}

// TestResponsesStreamRoundTrip reads what the writer wrote: the same parts
// come back, with the thinking state wrapped for the client.
func TestResponsesStreamRoundTrip(t *testing.T) {
	got := responsesReadStream(writeAll(NewResponsesStreamWriter("m"), responsesClaudeToolStream))
	var parts []Event
	for _, e := range got {
		if e.Kind == EventPartStart || e.Kind == EventPartStop {
			parts = append(parts, e)
		}
	}
	if len(parts) != 8 || got[len(got)-1].Kind != EventFinish || got[len(got)-1].Stop != StopTool {
		t.Fatalf("%+v", got)
	}
	for _, e := range got {
		if e.Kind == EventSignature {
			sig, text, ok := UnwrapSignature(e.Sig.Value)
			if e.Sig.Origin != OriginOpenAI || !ok || sig.Origin != OriginAnthropic || text != "Let me check." {
				t.Fatalf("signature: %+v", e.Sig)
			}
		}
	}
}

func TestResponsesStreamWriterEnds(t *testing.T) {
	t.Run("max tokens is status incomplete in response.completed", func(t *testing.T) {
		evs := parseResponsesSSE(t, writeAll(NewResponsesStreamWriter("m"), []Event{
			{Kind: EventStart, ID: "msg_1"},
			{Kind: EventPartStart, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Delta: "cut"},
			{Kind: EventFinish, Stop: StopMax},
		}))
		last := evs[len(evs)-1]
		resp := last.Data["response"].(map[string]any)
		if last.Name != "response.completed" || resp["status"] != "incomplete" || resp["incomplete_details"].(map[string]any)["reason"] != "max_output_tokens" {
			t.Fatalf("%v", last)
		}
		// The open text part was closed before the end.
		if evs[len(evs)-2].Name != "response.output_item.done" {
			t.Fatalf("%v", evs[len(evs)-2].Name)
		}
	})
	t.Run("error is response.failed", func(t *testing.T) {
		w := NewResponsesStreamWriter("m")
		evs := parseResponsesSSE(t, writeAll(w, []Event{
			{Kind: EventStart, ID: "msg_2"},
			{Kind: EventError, ErrType: "overloaded_error", Delta: "Overloaded"},
			{Kind: EventFinish, Stop: StopEnd},
		}))
		last := evs[len(evs)-1]
		resp := last.Data["response"].(map[string]any)
		e := resp["error"].(map[string]any)
		if last.Name != "response.failed" || resp["status"] != "failed" || e["code"] != "server_is_overloaded" || e["message"] != "Overloaded" {
			t.Fatalf("%v", last)
		}
	})
	t.Run("a namespaced call is split for Codex", func(t *testing.T) {
		evs := parseResponsesSSE(t, writeAll(NewResponsesStreamWriter("m"), []Event{
			{Kind: EventStart, ID: "msg_n"},
			{Kind: EventPartStart, Part: Part{Kind: PartToolCall, CallID: "c1", Name: "multi_agent_v1___close_agent"}},
			{Kind: EventDelta, Delta: `{"target":"a"}`},
			{Kind: EventFinish, Stop: StopTool},
		}))
		for _, i := range []int{2, 5} { // output_item.added and .done
			it := evs[i].Data["item"].(map[string]any)
			if it["namespace"] != "multi_agent_v1" || it["name"] != "close_agent" {
				t.Fatalf("%s: %v", evs[i].Name, it)
			}
		}
		if d := evs[4].Data; d["name"] != "close_agent" {
			t.Fatalf("%v", d)
		}
	})
	t.Run("a retried stream keeps one preamble", func(t *testing.T) {
		evs := parseResponsesSSE(t, writeAll(NewResponsesStreamWriter("m"), []Event{
			{Kind: EventStart, ID: "msg_a"},
			{Kind: EventStart, ID: "msg_b"},
			{Kind: EventFinish, Stop: StopEnd},
		}))
		if len(evs) != 3 || evs[2].Data["response"].(map[string]any)["id"] != "resp_a" {
			t.Fatalf("%v", evs)
		}
	})
}

func BenchmarkResponsesStreamReader(b *testing.B) {
	stream, err := os.ReadFile("testdata/responses/stream_tool.sse")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		_ = responsesReadStream(stream)
	}
}

func BenchmarkResponsesStreamWriter(b *testing.B) {
	evs := []Event{{Kind: EventStart, ID: "msg_01"}, {Kind: EventPartStart, Part: Part{Kind: PartText}}}
	for range 200 {
		evs = append(evs, Event{Kind: EventDelta, Delta: " token"})
	}
	evs = append(evs, Event{Kind: EventPartStop}, Event{Kind: EventFinish, Stop: StopEnd})
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		w := NewResponsesStreamWriter("m")
		out = out[:0]
		for i := range evs {
			out = w.Write(out, &evs[i])
		}
	}
}
