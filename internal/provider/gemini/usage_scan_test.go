package gemini

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"
)

// usageGJSON is ParseUsage's reading of one object with gjson alone (what
// it was before usageScan).
func usageGJSON(body []byte) (u, bool) {
	b := bytes.TrimSpace(body)
	if rest, ok := bytes.CutPrefix(b, []byte("data:")); ok {
		b = bytes.TrimSpace(rest)
	}
	got, ok := usageOf(gjson.Parse(string(b)))
	return u{got.InputTokens, got.OutputTokens, got.CacheReadTokens}, ok
}

type u struct{ in, out, cache int64 }

var usageScanSeeds = []string{
	`{"candidates":[{"content":{"parts":[{"text":"a \"quoted\" }] text"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":80,"totalTokenCount":1380,"cachedContentTokenCount":1000,"thoughtsTokenCount":100,"toolUsePromptTokenCount":3,"promptTokensDetails":[{"modality":"TEXT","tokenCount":1200}]},"modelVersion":"gemini-2.5-pro","responseId":"r"}`,
	`{"response":{"candidates":[],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5}},"traceId":"t"}`,
	`{"response":{"response":{"usageMetadata":{"promptTokenCount":10}}}}`,
	`{"usageMetadata":5,"response":{"usageMetadata":{"promptTokenCount":4}}}`,
	`{"usageMetadata":{"promptTokenCount":1},"usageMetadata":{"promptTokenCount":2}}`,
	`{"usageMetadata":{"promptTokenCount":1,"promptTokenCount":2,"candidatesTokenCount":"7","thoughtsTokenCount":1.9,"cachedContentTokenCount":true}}`,
	`{"usageMetadata":{"promptTokenCount":-5,"candidatesTokenCount":1e3,"thoughtsTokenCount":null,"cachedContentTokenCount":99999999999999999999}}`,
	`{"usag\u0065Metadata":{"promptTokenCount":3}}`, `{"usageMetadata":{"prompt\u0054okenCount":3}}`,
	" data: {\"usageMetadata\":{\"promptTokenCount\":7}} ", `{"candidates":[]}`, `{}`,
}

// ParseUsage's one-pass reading of an object gives what gjson gives.
func TestParseUsageScanMatchesGJSON(t *testing.T) {
	for _, s := range usageScanSeeds {
		got, ok := ParseUsage([]byte(s))
		want, wok := usageGJSON([]byte(s))
		if ok != wok || (u{got.InputTokens, got.OutputTokens, got.CacheReadTokens}) != want {
			t.Errorf("%s: ParseUsage %+v %v, gjson %+v %v", s, got, ok, want, wok)
		}
	}
	// The bulk of a chunk is skipped: a usage after a long candidate is read.
	if _, _, read := usageScan([]byte(usageScanSeeds[0]), false); !read {
		t.Error("usageScan left a plain chunk to gjson")
	}
}

func FuzzParseUsageScan(f *testing.F) {
	for _, s := range usageScanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := bytes.TrimSpace(body)
		if rest, ok := bytes.CutPrefix(b, []byte("data:")); ok {
			b = bytes.TrimSpace(rest)
		}
		if len(b) == 0 || b[0] != '{' || !gjson.ValidBytes(b) {
			return // arrays go through gjson; invalid JSON reads as gjson reads it
		}
		got, ok := ParseUsage(body)
		want, wok := usageGJSON(body)
		if ok != wok || (u{got.InputTokens, got.OutputTokens, got.CacheReadTokens}) != want {
			t.Fatalf("ParseUsage %+v %v, gjson %+v %v", got, ok, want, wok)
		}
	})
}
