package relay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// compactBody is what Codex sends to /responses/compact (codex-api
// CompactionInput: model, input, instructions; newer builds add tools,
// parallel_tool_calls, reasoning and text).
const compactBody = `{"model":"gpt-fake-1","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"fix the bug"}]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"done"}]}],"instructions":"You are Codex.","tools":[],"parallel_tool_calls":true,"reasoning":{"effort":"low"}}`

// POST /v1/responses/compact (and /openai/v1/...) reaches {base}/responses/compact
// of an openai-responses account with the client's body byte for byte; the
// answer (the compaction item included) reaches the client unchanged, and
// its usage is recorded.
func TestCompactPassesThrough(t *testing.T) {
	for _, path := range []string{"/v1/responses/compact", "/openai/v1/responses/compact"} {
		t.Run(path, func(t *testing.T) {
			fake := &fakeupstream.OpenAI{Keys: []string{"sk-acct"}}
			up := httptest.NewServer(fake)
			t.Cleanup(up.Close)
			srv, rec := newTestRelay(t, nil, testAccount{id: "oa", typ: config.TypeOpenAIResponses, url: up.URL + "/v1", key: "sk-acct"})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(compactBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Session-Id", "thread-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 || reqs[0].Path != "/v1/responses/compact" || string(reqs[0].Body) != compactBody {
				t.Fatalf("upstream saw %d requests: %+v", len(reqs), reqs)
			}
			if want := fakeupstream.CompactJSON([]byte(compactBody)); string(got) != want {
				t.Fatalf("client got\n%s\nwant\n%s", got, want)
			}
			if gjson.GetBytes(got, "output.#(type==\"compaction\").encrypted_content").Str == "" {
				t.Fatalf("no compaction item: %s", got)
			}
			recs := rec.all()
			if len(recs) != 1 {
				t.Fatalf("%d usage records", len(recs))
			}
			r := recs[0]
			if r.AccountID != "oa" || r.Model != "gpt-fake-1" || r.Stream || r.InputTokens != 20 || r.CacheReadTokens != 100 || r.OutputTokens != 30 || r.Status != 200 {
				t.Fatalf("usage record %+v", r)
			}
		})
	}
}

// An upstream refusal of a compaction is the client's, in OpenAI's shape;
// a request with no account to serve it gets the relay's error.
func TestCompactUpstreamError(t *testing.T) {
	fake := &fakeupstream.OpenAI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 400, Body: fakeupstream.OpenAIError("input is too long", "invalid_request_error", "input", "")}
	}}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	srv, _ := newTestRelay(t, nil, testAccount{id: "oa", typ: config.TypeOpenAIResponses, url: up.URL + "/v1", key: "sk"})
	resp, err := http.Post(srv.URL+"/v1/responses/compact", "application/json", strings.NewReader(compactBody))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || gjson.GetBytes(got, "error.message").Str != "input is too long" {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
}
