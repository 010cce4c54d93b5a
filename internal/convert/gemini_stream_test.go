package convert

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// geminiReadStream feeds stream to a fresh Gemini reader in chunks cut at
// the given offsets, through internal/sse's parser.
func geminiReadStream(stream []byte, cuts ...int) []Event {
	return feedSSE(NewGeminiStreamReader(), stream, cuts...)
}

var geminiWantToolEvents = []Event{
	{Kind: EventStart, ID: "fXY1aZ-xLqG2", Model: "gemini-3-pro-preview", Usage: provider.Usage{InputTokens: 200, CacheReadTokens: 1000}},
	{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
	{Kind: EventDelta, Index: 0, Delta: "**Checking the tree**\n\n"},
	{Kind: EventDelta, Index: 0, Delta: "I should look at the directory first."},
	{Kind: EventPartStop, Index: 0},
	{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
	{Kind: EventDelta, Index: 1, Delta: "Let me"},
	{Kind: EventDelta, Index: 1, Delta: " look."},
	{Kind: EventPartStop, Index: 1},
	{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartThinking}},
	{Kind: EventSignature, Index: 2, Sig: Signature{Origin: OriginGemini, Value: "EqQBCqEBAdHtim9sigA"}},
	{Kind: EventPartStop, Index: 2},
	{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: "call_list_directory_fXY1aZ-xLqG2_0", Name: "list_directory"}},
	{Kind: EventDelta, Index: 3, Delta: `{"dir_path": "."}`},
	{Kind: EventPartStop, Index: 3},
	{Kind: EventPartStart, Index: 4, Part: Part{Kind: PartToolCall, CallID: "call_read_file_fXY1aZ-xLqG2_1", Name: "read_file"}},
	{Kind: EventDelta, Index: 4, Delta: `{"file_path": "go.mod"}`},
	{Kind: EventPartStop, Index: 4},
	{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{InputTokens: 200, CacheReadTokens: 1000, OutputTokens: 115}, ReasoningTokens: 75},
}

func TestGeminiStreamReader(t *testing.T) {
	got := geminiReadStream(geminiFixture(t, "stream_tool.sse"))
	if !reflect.DeepEqual(got, geminiWantToolEvents) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, geminiWantToolEvents)
	}
	// The whole answer of the same content gives the same parts.
	resp := collectEvents(got)
	whole, err := ParseGemini(geminiFixture(t, "response_tool.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp, whole) {
		t.Errorf("stream\n%+v\nwhole\n%+v", resp, whole)
	}
}

// TestGeminiStreamReaderCutAtEveryByte feeds the stream split at every
// byte offset (and in single bytes): the events are the same.
func TestGeminiStreamReaderCutAtEveryByte(t *testing.T) {
	stream := geminiFixture(t, "stream_tool.sse")
	checkEveryCut(t, stream, func(cuts ...int) []Event { return geminiReadStream(stream, cuts...) }, geminiWantToolEvents)
}

func geminiSSE(chunks ...string) []byte {
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString("data: " + c + "\n\n")
	}
	return []byte(b.String())
}

func TestGeminiStreamReaderCases(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		want   []Event
	}{
		{"signature on a thought piece, Code Assist envelope, max tokens", geminiSSE(
			`{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"pl","thought":true}]}}],"responseId":"r1","modelVersion":"gemini-2.5-pro"},"traceId":"t"}`,
			`{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"an","thought":true,"thoughtSignature":"TS"}]}}]},"traceId":"t"}`,
			`{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2}},"traceId":"t"}`,
		), []Event{
			{Kind: EventStart, ID: "r1", Model: "gemini-2.5-pro"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
			{Kind: EventDelta, Index: 0, Delta: "pl"},
			{Kind: EventDelta, Index: 0, Delta: "an"},
			{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginGemini, Value: "TS", ID: geminiSigOnThought}},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 1, Delta: "ok"},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventFinish, Stop: StopMax, Usage: provider.Usage{InputTokens: 9, OutputTokens: 2}},
		}},
		{"a signature after thought text signs it; a final signature-only part", geminiSSE(
			`{"candidates":[{"content":{"parts":[{"text":"think","thought":true}]}}],"responseId":"r2"}`,
			`{"candidates":[{"content":{"parts":[{"text":"Hi","thoughtSignature":"S1"}]}}]}`,
			`{"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"S2"}]},"finishReason":"STOP"}]}`,
		), []Event{
			{Kind: EventStart, ID: "r2"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
			{Kind: EventDelta, Index: 0, Delta: "think"},
			{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginGemini, Value: "S1"}},
			{Kind: EventPartStop, Index: 0},
			{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 1, Delta: "Hi"},
			{Kind: EventPartStop, Index: 1},
			{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartThinking}},
			{Kind: EventSignature, Index: 2, Sig: Signature{Origin: OriginGemini, Value: "S2"}},
			{Kind: EventPartStop, Index: 2},
			{Kind: EventFinish, Stop: StopEnd},
		}},
		{"an error chunk ends the stream", geminiSSE(
			`{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"responseId":"r3"}`,
			`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`,
			`{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}]}`,
		), []Event{
			{Kind: EventStart, ID: "r3"},
			{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
			{Kind: EventDelta, Index: 0, Delta: "a"},
			{Kind: EventError, ErrType: "overloaded_error", Delta: "The model is overloaded."},
		}},
		{"a blocked prompt, junk and non-objects ignored", geminiSSE(
			`not json`, `[1,2]`,
			`{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":4},"responseId":"r4"}`,
		), []Event{
			{Kind: EventStart, ID: "r4", Usage: provider.Usage{InputTokens: 4}},
			{Kind: EventFinish, Stop: StopRefusal, Usage: provider.Usage{InputTokens: 4}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := geminiReadStream(tc.stream); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// geminiChunks splits a written Gemini stream into its data payloads.
func geminiChunks(t *testing.T, out []byte) []gjson.Result {
	t.Helper()
	var chunks []gjson.Result
	var p sse.Parser
	p.Feed(out, func(ev *sse.Event) bool {
		if len(ev.Name) != 0 {
			t.Errorf("event name %q", ev.Name)
		}
		chunks = append(chunks, gjson.ParseBytes(append([]byte(nil), ev.Data...)))
		return true
	})
	if p.Pending() != 0 {
		t.Errorf("unterminated event: %q", p.PendingBytes())
	}
	return chunks
}

func TestGeminiStreamWriter(t *testing.T) {
	anth := Signature{Origin: OriginAnthropic, Value: "EqSig"}
	evs := []Event{
		{Kind: EventStart, ID: "msg_7", Model: "claude-sonnet-5", Usage: provider.Usage{InputTokens: 10, CacheReadTokens: 90}},
		{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
		{Kind: EventDelta, Index: 0, Delta: "let me "},
		{Kind: EventDelta, Index: 0, Delta: "see"},
		{Kind: EventSignature, Index: 0, Sig: anth},
		{Kind: EventPartStop, Index: 0},
		{Kind: EventPartStart, Index: 1, Part: Part{Kind: PartToolCall, CallID: "toolu_1", Name: "glob"}},
		{Kind: EventDelta, Index: 1, Delta: `{"pattern":`},
		{Kind: EventDelta, Index: 1, Delta: `"*.go"}`},
		{Kind: EventPartStop, Index: 1},
		{Kind: EventFinish, Stop: StopTool, Usage: provider.Usage{OutputTokens: 20}},
	}
	out := writeAll(NewGeminiStreamWriter("gemini-2.5-flash"), evs)
	chunks := geminiChunks(t, out)
	want := []string{
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"let me ","thought":true}]},"index":0}],"modelVersion":"gemini-2.5-flash","responseId":"msg_7"}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"see","thought":true}]},"index":0}],"modelVersion":"gemini-2.5-flash","responseId":"msg_7"}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"id":"toolu_1","name":"glob","args":{"pattern":"*.go"}},"thoughtSignature":"` +
			WrapSignature(anth, "let me see") + `"}]},"index":0}],"modelVersion":"gemini-2.5-flash","responseId":"msg_7"}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP","index":0}],` +
			`"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"totalTokenCount":120,"cachedContentTokenCount":90},"modelVersion":"gemini-2.5-flash","responseId":"msg_7"}`,
	}
	if len(chunks) != len(want) {
		t.Fatalf("%d chunks:\n%s", len(chunks), out)
	}
	for i := range want {
		if !jsonEq(t, chunks[i].Raw, want[i]) {
			t.Errorf("chunk %d\n%s\nwant\n%s", i, chunks[i].Raw, want[i])
		}
	}
	// Gemini CLI sends the call back with its signature: the Anthropic
	// thinking comes back exactly.
	r, err := DecodeGemini([]byte(`{"contents":[{"role":"model","parts":[` + chunks[2].Get("candidates.0.content.parts.0").Raw + `]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Messages[0].Parts[0]; p.Kind != PartThinking || p.Text != "let me see" || p.Sig != anth {
		t.Errorf("decoded %+v", p)
	}
}

func TestGeminiStreamWriterCases(t *testing.T) {
	write := func(evs ...Event) []gjson.Result {
		return geminiChunks(t, writeAll(NewGeminiStreamWriter("m"), evs))
	}
	// A pending signature with nothing after it rides on the last chunk.
	c := write(Event{Kind: EventStart, ID: "r"},
		Event{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
		Event{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginGemini, Value: "G"}},
		Event{Kind: EventPartStop, Index: 0},
		Event{Kind: EventFinish, Stop: StopMax})
	if len(c) != 1 || c[0].Get("candidates.0.content.parts.0.thoughtSignature").Str != "G" || c[0].Get("candidates.0.finishReason").Str != "MAX_TOKENS" {
		t.Errorf("pending signature: %v", c)
	}
	// Text deltas, then an error in Google's shape; nothing after it.
	c = write(Event{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
		Event{Kind: EventDelta, Index: 0, Delta: "a\n"},
		Event{Kind: EventError, ErrType: "rate_limit_error", Delta: "slow down"},
		Event{Kind: EventFinish})
	if len(c) != 2 || c[0].Get("candidates.0.content.parts.0.text").Str != "a\n" || c[0].Get("responseId").Str == "" ||
		c[1].Get("error.code").Int() != 429 || c[1].Get("error.status").Str != "RESOURCE_EXHAUSTED" || c[1].Get("error.message").Str != "slow down" {
		t.Errorf("error stream: %v", c)
	}
}

// TestGeminiStreamPipe: a Gemini upstream stream read and written for a
// Gemini client reads back to the same events (ids, signatures, usage).
func TestGeminiStreamPipe(t *testing.T) {
	w := NewGeminiStreamWriter("gemini-3-pro-preview")
	var out []byte
	for _, ev := range geminiWantToolEvents {
		out = w.Write(out, &ev)
	}
	got := geminiReadStream(w.Finish(out))
	want := collectEvents(geminiWantToolEvents)
	for i := range want.Parts {
		if p := &want.Parts[i]; p.Kind == PartToolCall {
			p.Args = strings.ReplaceAll(p.Args, ": ", ":") // the writer's args are compact JSON
		}
	}
	if resp := collectEvents(got); !reflect.DeepEqual(resp.Parts, want.Parts) || resp.Usage != want.Usage || resp.Stop != want.Stop {
		t.Errorf("got\n%+v\nwant\n%+v", resp, want)
	}
}

// TestGeminiArrayStreamWriter: the JSON-array form holds the SSE form's
// chunks, and ParseGemini reads it back to the same answer.
func TestGeminiArrayStreamWriter(t *testing.T) {
	sw, aw := NewGeminiStreamWriter("m"), NewGeminiArrayStreamWriter("m")
	var sseOut, arr []byte
	for _, ev := range geminiWantToolEvents {
		sseOut = sw.Write(sseOut, &ev)
		arr = aw.Write(arr, &ev)
	}
	arr = aw.Finish(arr)
	chunks := gjson.ParseBytes(arr).Array()
	want := geminiChunks(t, sseOut)
	if !gjson.ValidBytes(arr) || len(chunks) != len(want) {
		t.Fatalf("array %s", arr)
	}
	for i := range want {
		if chunks[i].Raw != want[i].Raw {
			t.Errorf("chunk %d %s, want %s", i, chunks[i].Raw, want[i].Raw)
		}
	}
	resp, err := ParseGemini(arr)
	if err != nil || len(resp.Parts) != 5 || resp.Parts[2].Sig.Value != "EqQBCqEBAdHtim9sigA" || resp.Stop != StopTool {
		t.Fatalf("%v %+v", err, resp)
	}
	empty := NewGeminiArrayStreamWriter("m")
	if got := string(empty.Finish(nil)); got != "[]" {
		t.Errorf("empty %q", got)
	}
	errw := NewGeminiArrayStreamWriter("m")
	out := errw.Finish(errw.Write(nil, &Event{Kind: EventError, ErrType: "overloaded_error", Delta: "busy"}))
	if gjson.GetBytes(out, "0.error.status").Str != "UNAVAILABLE" {
		t.Errorf("error array %s", out)
	}
}

// Claude answers signed thinking, then redacted_thinking, then text and a
// call. Gemini CLI drops thought parts from its history, so both blocks'
// state must ride on the part after them: chained in one thoughtSignature
// by both writers, and both restored, in order, by DecodeGemini. Found by
// TestGeminiCLIThroughClaudeAccount (the signed thinking was lost: the
// redacted block's state overwrote it, so thinking went off on turn 2).
func TestGeminiConsecutiveThinkingSurvivesGeminiCLIHistory(t *testing.T) {
	signed := Part{Kind: PartThinking, Text: "I will read it.", Sig: Signature{Origin: OriginAnthropic, Value: "EqSig"}}
	red := Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "EmwRED"}}
	call := Part{Kind: PartToolCall, CallID: "toolu_1", Name: "read_file", Args: `{"file_path":"a"}`}
	var streamed []byte
	w := NewGeminiStreamWriter("m")
	for _, ev := range []Event{
		{Kind: EventStart, ID: "msg_1"},
		{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartThinking}},
		{Kind: EventDelta, Index: 0, Delta: signed.Text},
		{Kind: EventSignature, Index: 0, Sig: signed.Sig},
		{Kind: EventPartStop, Index: 0},
		{Kind: EventPartStart, Index: 1, Part: red},
		{Kind: EventPartStop, Index: 1},
		{Kind: EventPartStart, Index: 2, Part: Part{Kind: PartText}},
		{Kind: EventDelta, Index: 2, Delta: "Reading"},
		{Kind: EventDelta, Index: 2, Delta: " it."},
		{Kind: EventPartStop, Index: 2},
		{Kind: EventPartStart, Index: 3, Part: Part{Kind: PartToolCall, CallID: call.CallID, Name: call.Name}},
		{Kind: EventDelta, Index: 3, Delta: call.Args},
		{Kind: EventPartStop, Index: 3},
		{Kind: EventFinish, Stop: StopTool},
	} {
		streamed = w.Write(streamed, &ev)
	}
	var streamParts []string
	for _, c := range geminiChunks(t, streamed) {
		for _, p := range c.Get("candidates.0.content.parts").Array() {
			streamParts = append(streamParts, p.Raw)
		}
	}
	whole := gjson.GetBytes(WriteGemini(&Response{Parts: []Part{signed, red, {Kind: PartText, Text: "Reading it."}, call}}, "m"), "candidates.0.content.parts")
	var wholeParts []string
	for _, p := range whole.Array() {
		wholeParts = append(wholeParts, p.Raw)
	}
	for name, parts := range map[string][]string{"stream": streamParts, "whole": wholeParts} {
		// Gemini CLI's history: thought parts dropped, consecutive text
		// parts merged into the first (which keeps its signature), a
		// bare empty text part ignored.
		var kept []string
		for _, raw := range parts {
			p := gjson.Parse(raw)
			if p.Get("thought").Bool() || raw == `{"text":""}` {
				continue // a chunk of only an empty text is not valid content
			}
			if n := len(kept); n > 0 && p.Get("text").Exists() && gjson.Get(kept[n-1], "text").Str != "" {
				prev, _ := withText(kept[n-1], gjson.Get(kept[n-1], "text").Str+p.Get("text").Str)
				kept[n-1] = prev
				continue
			}
			kept = append(kept, raw)
		}
		r, err := DecodeGemini([]byte(`{"contents":[{"role":"user","parts":[{"text":"q"}]},{"role":"model","parts":[` + strings.Join(kept, ",") + `]}]}`))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := r.Messages[1].Parts
		if len(got) != 4 || !reflect.DeepEqual(got[0], signed) || !reflect.DeepEqual(got[1], red) || got[2].Text != "Reading it." || got[3].CallID != call.CallID {
			t.Errorf("%s: Gemini CLI's history %s decodes to %+v", name, kept, got)
		}
	}
}

// withText is raw, a JSON part object, with its text replaced.
func withText(raw, text string) (string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return "", err
	}
	m["text"] = text
	b, err := json.Marshal(m)
	return string(b), err
}
