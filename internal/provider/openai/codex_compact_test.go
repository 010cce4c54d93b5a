package openai

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Codex's compaction goes to the ChatGPT backend as it left the client: one
// JSON request (no stream or store forced on it, no event-stream Accept) and
// one JSON answer, not read as a stream to aggregate. Only POST .../responses
// is rewritten.
func TestCodexTransportPassesCompactThrough(t *testing.T) {
	const body = `{"model":"gpt-5-codex","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],"instructions":"summarise"}`
	const answer = `{"id":"resp_1","object":"response.compaction","output":[{"type":"compaction","encrypted_content":"gAAA"}],"usage":{"input_tokens":10,"output_tokens":2}}`
	var sent []byte
	var accept string
	tr := &CodexTransport{Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent, _ = io.ReadAll(r.Body)
		accept = r.Header.Get("Accept")
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(answer)), Request: r}, nil
	})}
	req, _ := http.NewRequest(http.MethodPost, CodexBaseURL+"/responses/compact", strings.NewReader(body))
	req.Header.Set("Accept", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(sent) != body {
		t.Errorf("backend got %s, want the client's body unchanged", sent)
	}
	if accept != "application/json" {
		t.Errorf("Accept %q reached the backend, want the client's", accept)
	}
	if resp.StatusCode != 200 || string(got) != answer {
		t.Errorf("answer %d %s, want the backend's unchanged", resp.StatusCode, got)
	}
}
