package convert

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// geminiReadSlow is Read without the fast path: every chunk through chunk.
func geminiReadSlow(s *geminiStreamReader, evs []Event, data []byte) []Event {
	if s.ended || !gjson.ValidBytes(data) {
		return evs
	}
	d := gjson.ParseBytes(data)
	if !d.IsObject() {
		return evs
	}
	return s.chunk(evs, d)
}

// geminiReadBoth reads chunks with Read and with geminiReadSlow, each with
// a fresh reader, and reports which chunks Read took on the fast path.
func geminiReadBoth(chunks []string) (fast, slow []Event, scanned []bool) {
	fr, sr := newGeminiReader(), newGeminiReader()
	for _, c := range chunks {
		probe := *fr
		_, ok := probe.scanChunk(nil, []byte(c))
		scanned = append(scanned, ok && !fr.ended && gjson.Valid(c))
		fast = fr.Read(fast, nil, []byte(c))
		slow = geminiReadSlow(sr, slow, []byte(c))
	}
	return fast, slow, scanned
}

const geminiScanUsage = `"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":9,"totalTokenCount":1230,"cachedContentTokenCount":1000,"thoughtsTokenCount":21,"toolUsePromptTokenCount":4}`

// geminiScanChunk is a chunk of one candidate with the parts and the
// candidate's members after content.
func geminiScanChunk(parts, candRest string) string {
	return `{"candidates":[{"content":{"parts":[` + parts + `],"role":"model"}` + candRest + `,"index":0}],` + geminiScanUsage + `,"modelVersion":"gemini-2.5-pro","responseId":"r1"}`
}

// The fast path reads exactly what chunk reads: for the chunks it takes
// (text and thought text) and, by leaving them to chunk, for those it does
// not; and it takes the bulk of a stream.
func TestGeminiScanChunkMatchesChunk(t *testing.T) {
	text := func(s string) string { return `{"text":` + s + `}` }
	thought := func(s string) string { return `{"text":` + s + `,"thought":true}` }
	tests := []struct {
		name    string
		chunks  []string
		scanned []bool
	}{
		{"text deltas and a last empty text with finishReason", []string{
			geminiScanChunk(text(`"Hello"`), ""), geminiScanChunk(text(`" world"`), ""), geminiScanChunk(text(`""`), `,"finishReason":"STOP"`),
		}, []bool{true, true, true}},
		{"thought then text, escaped text, two parts in one chunk", []string{
			geminiScanChunk(thought(`"**Plan**\n\n"`), ""), geminiScanChunk(thought(`"more"`)+","+text(`"a\"b \u00e9"`), ""),
			geminiScanChunk(text(`"x"`)+","+thought(`""`)+","+text(`"y"`), `,"finishReason":"MAX_TOKENS"`),
		}, []bool{true, true, true}},
		{"thought false is text; an empty thought opens a part", []string{
			geminiScanChunk(`{"text":"t","thought":false}`, ""), geminiScanChunk(thought(`""`), ""), geminiScanChunk(text(`"z"`), `,"finishReason":"SAFETY"`),
		}, []bool{true, true, true}},
		{"no parts, no content, no usage", []string{
			`{"candidates":[{"content":{"role":"model"},"index":0}],"responseId":"r2"}`, `{"candidates":[{"index":0}]}`,
			`{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}]}`,
		}, []bool{true, true, true}},
		{"a signature, a call, another part: left to chunk", []string{
			geminiScanChunk(thought(`"think"`), ""), geminiScanChunk(`{"text":"a","thoughtSignature":"sig1"}`, ""),
			geminiScanChunk(`{"functionCall":{"name":"ls","args":{"d":"."}}}`, ""), geminiScanChunk(`{"inlineData":{"mimeType":"image/png","data":"AA=="}}`, ""),
			geminiScanChunk(text(`"b"`), `,"finishReason":"STOP"`),
		}, []bool{true, false, false, false, true}},
		{"an error chunk, a Code Assist envelope", []string{
			`{"response":{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"responseId":"r3"},"traceId":"t"}`,
			`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota"}}`,
		}, []bool{false, false}},
		{"escaped keys, duplicate members, odd types", []string{
			`{"candidates":[{"content":{"parts":[{"te\u0078t":"a"}]}}]}`,
			`{"candidates":[{"content":{"parts":[{"text":"first","text":"second"}]}}],"candidates":[{"content":{"parts":[{"text":"other"}]}}]}`,
			`{"candidates":[{"content":{"parts":[{"text":null}]}}]}`, `{"candidates":[{"content":{"parts":[{"text":"n","thought":1}]}}]}`,
			`{"candidates":[1,{"content":{}}]}`, `{"candidates":[{"content":{"parts":{"text":"o"}}}]}`, `{"candidates":[]}`,
			`{"usageMetadata":{"promptTokenCount":"7"},"candidates":[{"index":0}]}`, `{"candidates":[{"finishReason":12}]}`,
		}, []bool{false, true, false, false, false, false, false, true, false}},
		{"white space in arrays and objects, an escaped key after a plain one", []string{
			"{ \"candidates\" : [ { \"content\" : { \"parts\" : [ {\"text\":\"a\"} ,\n\t{ \"text\" : \"b\" , \"thought\" : false }\r\n] } } ] }",
			`{"candidates":[{"content":{"parts":[{"text":"c"},{"text":"d","th\u006fught":true}]}}]}`,
			`{"candidates":[{"content":{"parts":[]},"finishReason":"STOP"}]}`,
		}, []bool{true, false, true}},
		{"usage in a chunk of its own, then a blocked prompt", []string{
			`{"usageMetadata":{"promptTokenCount":3},"responseId":"r4"}`, `{"promptFeedback":{"blockReason":"SAFETY"}}`,
		}, []bool{false, false}},
		{"not an object, invalid JSON", []string{`[1]`, `{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"x":tru}`, geminiScanChunk(text(`"ok"`), "")},
			[]bool{false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fast, slow, scanned := geminiReadBoth(tt.chunks)
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path\n%+v\nchunk\n%+v", fast, slow)
			}
			if !reflect.DeepEqual(scanned, tt.scanned) {
				t.Errorf("read on the fast path: %v, want %v", scanned, tt.scanned)
			}
		})
	}
}

// The fast path copies what it keeps: the events do not change when the
// chunk's bytes are reused.
func TestGeminiScanChunkCopiesWhatItKeeps(t *testing.T) {
	r := newGeminiReader()
	data := []byte(geminiScanChunk(`{"text":"plain text"}`, `,"finishReason":"STOP"`))
	evs, ok := r.scanChunk(nil, data)
	want := []Event{
		{Kind: EventStart, ID: "r1", Model: "gemini-2.5-pro", Usage: geminiScanWantUsage(false)},
		{Kind: EventPartStart, Index: 0, Part: Part{Kind: PartText}},
		{Kind: EventDelta, Index: 0, Delta: "plain text"},
		{Kind: EventPartStop, Index: 0},
		{Kind: EventFinish, Stop: StopEnd, Usage: geminiScanWantUsage(true), ReasoningTokens: 21},
	}
	for i := range data {
		data[i] = 'x'
	}
	if !ok || !reflect.DeepEqual(evs, want) || r.reasoning != 21 {
		t.Fatalf("ok %v, reasoning %d, events\n%+v", ok, r.reasoning, evs)
	}
}

func geminiScanWantUsage(whole bool) (u provider.Usage) {
	u.InputTokens, u.CacheReadTokens = 204, 1000
	if whole {
		u.OutputTokens = 30
	}
	return u
}

// FuzzGeminiScanChunk: for any chunk, after a first chunk that opened a
// part, Read (fast path where it applies) gives the events chunk gives.
func FuzzGeminiScanChunk(f *testing.F) {
	f.Add(geminiScanChunk(`{"text":"a"}`, ""), geminiScanChunk(`{"text":"b\n","thought":true},{"text":""}`, `,"finishReason":"STOP"`))
	f.Add(`{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}`, `{"candidates":[{"content":{"parts":[{"text":"x","thoughtSignature":"s"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2}}`)
	f.Add(`{"candidates":[{"content":{"parts":[{"text":"a","thought":true}]}}]}`, `{"candidates":[{"content":{"parts":[{"te\u0078t":"y"},{"text":"z"}]}}],"responseId":"q"}`)
	f.Fuzz(func(t *testing.T, first, second string) {
		if strings.Contains(first+second, "functionCall") || strings.Contains(first+second, "function_call") {
			// A call without id and a stream without responseId get a random id.
			return
		}
		fast, slow, _ := geminiReadBoth([]string{first, second})
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path\n%+v\nchunk\n%+v", fast, slow)
		}
	})
}

// Read takes the fast path: a text chunk costs one allocation, the text it
// keeps, escaped or not (through chunk an escaped text costs a copy of the
// whole chunk besides).
func TestGeminiReadTextChunkAllocatesItsText(t *testing.T) {
	for _, part := range []string{`{"text":"plain text"}`, `{"text":"say \"hi\"\n"}`} {
		data := []byte(geminiScanChunk(part, ""))
		r := newGeminiReader()
		evs := r.Read(make([]Event, 0, 8), nil, data)
		if len(evs) != 3 {
			t.Fatalf("%s: %+v", part, evs)
		}
		if n := testing.AllocsPerRun(50, func() { evs = r.Read(evs[:0], nil, data) }); n != 1 || len(evs) != 1 || evs[0].Kind != EventDelta {
			t.Errorf("%s: %v allocations, events %+v", part, n, evs)
		}
	}
}
