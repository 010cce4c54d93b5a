package fakeupstream

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
	"google.golang.org/genai"

	"github.com/ccrelay/ccrelay/internal/sse"
)

const fastGeminiPath = "/v1beta/models/gemini-2.5-pro:"

// postFastGemini posts body to the Gemini path with method and query,
// with an API key, and returns the status and the whole answer.
func postFastGemini(t *testing.T, srv *httptest.Server, methodQuery, key string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+fastGeminiPath+methodQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-Goog-Api-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, got
}

// TestFastGeminiTextSteer: a converted request's TextSteer gets a Gemini
// SSE stream of that many text chunks and a last one with finishReason and
// the whole usage; every chunk, read through internal/sse, is a whole
// GenerateContentResponse without an event name, and each text carries the
// chunk's send stamp, in order.
func TestFastGeminiTextSteer(t *testing.T) {
	srv := httptest.NewServer(NewFast("gemini-2.5-pro"))
	defer srv.Close()
	body := `{"contents":[{"role":"user","parts":[{"text":"` + strings.Repeat("pad ", 20000) + TextSteer(12, 500*time.Microsecond, 0) + ` review this"}]}]}`
	before := time.Now().UnixNano()
	status, got := postFastGemini(t, srv, "streamGenerateContent?alt=sse", "AIza-bench", []byte(body))
	after := time.Now().UnixNano()
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, got)
	}
	var chunks []string
	var p sse.Parser
	p.Feed(got, func(ev *sse.Event) bool {
		if len(ev.Name) != 0 {
			t.Errorf("a Gemini chunk with an event name %q", ev.Name)
		}
		chunks = append(chunks, string(ev.Data))
		return true
	})
	if p.Pending() != 0 || len(chunks) != 13 {
		t.Fatalf("%d chunks, %d bytes left over:\n%s", len(chunks), p.Pending(), got)
	}
	prev := before
	for i, c := range chunks {
		d := gjson.Parse(c)
		if !gjson.Valid(c) || d.Get("responseId").Str != geminiResponseID || d.Get("modelVersion").Str != "gemini-2.5-pro" ||
			d.Get("candidates.#").Int() != 1 || d.Get("candidates.0.content.role").Str != "model" || d.Get("candidates.0.content.parts.#").Int() != 1 {
			t.Fatalf("chunk %d: %s", i, c)
		}
		text := d.Get("candidates.0.content.parts.0.text")
		usage := d.Get("usageMetadata")
		if usage.Get("promptTokenCount").Int() != GeminiPromptTokens || usage.Get("cachedContentTokenCount").Int() != GeminiCachedTokens {
			t.Errorf("chunk %d usage %s", i, usage.Raw)
		}
		js, jok := ParseStamp([]byte(c))
		if !jok || js < prev || js > after {
			t.Fatalf("chunk %d: JSON stamp %d %v outside [%d, %d]", i, js, jok, prev, after)
		}
		prev = js
		if i == 12 {
			if text.Str != "" || d.Get("candidates.0.finishReason").Str != "STOP" ||
				usage.Get("candidatesTokenCount").Int() != GeminiCandidatesTokens || usage.Get("thoughtsTokenCount").Int() != GeminiThoughtsTokens ||
				usage.Get("totalTokenCount").Int() != GeminiPromptTokens+GeminiCandidatesTokens+GeminiThoughtsTokens {
				t.Errorf("last chunk: %s", c)
			}
			continue
		}
		if d.Get("candidates.0.finishReason").Exists() || usage.Get("candidatesTokenCount").Exists() {
			t.Errorf("chunk %d ends the stream or counts output: %s", i, c)
		}
		ts, ok := ParseTextStamp([]byte(text.Str))
		if !ok || ts != js || text.Str != TextStampKey+gjson.Get(c, "bench_ts").Raw {
			t.Fatalf("chunk %d: text %q, text stamp %d %v, JSON stamp %d", i, text.Str, ts, ok, js)
		}
	}
}

// TestFastGeminiSDK: the GenAI SDK reads Fast's Gemini stream (nothing
// steers it: geminiDefaultEvents chunks) and its generateContent answer,
// with their usage.
func TestFastGeminiSDK(t *testing.T) {
	srv := httptest.NewServer(NewFast("gemini-2.5-pro"))
	defer srv.Close()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: "AIza-bench", Backend: genai.BackendGeminiAPI, HTTPClient: &http.Client{},
		HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL, APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp, err := c.Models.GenerateContent(ctx, "gemini-2.5-pro", genai.Text("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != fastAnswer || resp.UsageMetadata.CandidatesTokenCount != GeminiCandidatesTokens || resp.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Errorf("generateContent: text %q, usage %+v", resp.Text(), resp.UsageMetadata)
	}
	var text strings.Builder
	var last *genai.GenerateContentResponse
	n := 0
	for chunk, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-pro", genai.Text("hi"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		text.WriteString(chunk.Text())
		last = chunk
	}
	if n != geminiDefaultEvents || text.String() != strings.Repeat(deltaText, geminiDefaultEvents-1) {
		t.Errorf("%d chunks, text %q", n, text.String())
	}
	if last == nil || last.Candidates[0].FinishReason != genai.FinishReasonStop || last.UsageMetadata.CandidatesTokenCount != GeminiCandidatesTokens ||
		last.UsageMetadata.TotalTokenCount != GeminiPromptTokens+GeminiCandidatesTokens+GeminiThoughtsTokens {
		t.Errorf("last chunk %+v", last)
	}
}

// TestFastGeminiSteeredAndRefused: the BenchField sets a Gemini stream's
// length (events counts every chunk, the last included) with the plain
// delta text; generateContent answers JSON whatever the steering; a call
// without a key, or a stream without alt=sse, is refused as Google would.
func TestFastGeminiSteeredAndRefused(t *testing.T) {
	srv := httptest.NewServer(NewFast("gemini-2.5-pro"))
	defer srv.Close()
	steered := WithBenchField([]byte(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`), 30, 0, 0)
	status, got := postFastGemini(t, srv, "streamGenerateContent?alt=sse", "AIza-bench", steered)
	n, deltas := 0, 0
	var p sse.Parser
	p.Feed(got, func(ev *sse.Event) bool {
		n++
		if gjson.GetBytes(ev.Data, "candidates.0.content.parts.0.text").Str == deltaText {
			deltas++
		}
		return true
	})
	if status != http.StatusOK || n != 30 || deltas != 29 || bytes.Contains(got, []byte(TextStampKey)) {
		t.Errorf("status %d, %d chunks, %d deltas:\n%.300s", status, n, deltas, got)
	}
	status, got = postFastGemini(t, srv, "generateContent", "AIza-bench", steered)
	if status != http.StatusOK || gjson.GetBytes(got, "candidates.0.content.parts.0.text").Str != fastAnswer {
		t.Errorf("generateContent: %d %s", status, got)
	}
	status, got = postFastGemini(t, srv, "streamGenerateContent?alt=sse&key=AIza-bench", "", steered)
	if status != http.StatusOK || !bytes.Contains(got, []byte(`"finishReason":"STOP"`)) {
		t.Errorf("key in the query: %d %.200s", status, got)
	}
	for _, tt := range []struct {
		name, methodQuery, key string
		status                 int
		errStatus              string
	}{
		{"no key", "streamGenerateContent?alt=sse", "", http.StatusForbidden, "PERMISSION_DENIED"},
		{"a stream without alt=sse", "streamGenerateContent", "AIza-bench", http.StatusBadRequest, "INVALID_ARGUMENT"},
	} {
		status, got := postFastGemini(t, srv, tt.methodQuery, tt.key, steered)
		if status != tt.status || gjson.GetBytes(got, "error.status").Str != tt.errStatus {
			t.Errorf("%s: %d %s", tt.name, status, got)
		}
	}
}

func TestGeminiMethod(t *testing.T) {
	for path, want := range map[string]string{
		"/v1beta/models/gemini-2.5-pro:streamGenerateContent": "streamGenerateContent",
		"/v1/models/gemini-2.5-flash:generateContent":         "generateContent",
		"/v1beta/models/gemini-2.5-pro:countTokens":           "",
		"/v1/messages":          "",
		"/v1/responses":         "",
		"/v1/x:generateContent": "",
	} {
		if got := geminiMethod(path); got != want {
			t.Errorf("geminiMethod(%q) = %q, want %q", path, got, want)
		}
	}
}
