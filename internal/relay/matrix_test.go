package relay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/convert"
)

// A request the conversion refuses (a client's mistake) is a 400 in the
// client's shape that names the parameter, as the OpenAI SDK reports it.
// Found by the e2e TestMatrixClientMistakeOnConvertedRoute: error.param was
// null for thinking with temperature 0.5 sent to a Claude account.
func TestConversionRefusalNamesTheParam(t *testing.T) {
	srv, _ := newTestRelay(t, nil, testAccount{id: "c", typ: config.TypeClaudeAPI, url: "http://127.0.0.1:1", key: "k"})
	body := `{"model":"claude-sonnet-4-5","input":"hi","reasoning":{"effort":"medium"},"temperature":0.5}`
	resp, err := http.Post(srv.URL+"/v1/responses", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || gjson.GetBytes(got, "error.param").Str != "temperature" ||
		gjson.GetBytes(got, "error.type").Str != "invalid_request_error" || !strings.Contains(gjson.GetBytes(got, "error.message").Str, "thinking") {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
}

// A Messages body that holds OpenAI's reasoning state wrapped by the relay
// (a converted turn earlier in the conversation) reaches a Claude account
// without it; on a relay with only Claude accounts, which cannot have
// wrapped anything, the body passes byte for byte, unscanned.
func TestPassthroughScrubsWrappedThinking(t *testing.T) {
	sig := convert.WrapSignature(convert.Signature{Origin: convert.OriginOpenAI, Value: "gAAAABx"}, "plan")
	body := `{"model":"claude-sonnet-4-5","max_tokens":100,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[` +
		`{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"plan","signature":"` + sig + `"},` +
		`{"type":"tool_use","id":"call_1","name":"run","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"ok"}]}]}`
	plain := `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	var got [][]byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, b)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(b), "ccr1.") {
			// What Anthropic answers a signature it did not issue.
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0: Invalid `+"`signature`"+` in `+"`thinking`"+` block"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	t.Cleanup(up.Close)
	srv, _ := newTestRelay(t, nil, testAccount{id: "c", typ: config.TypeClaudeAPI, url: up.URL, key: "k"})
	for _, tt := range []struct {
		body  string
		sends int
	}{{plain, 1}, {body, 2}} {
		got = nil
		resp, err := http.Post(srv.URL+"/v1/messages", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(got) != tt.sends {
			t.Fatalf("status %d after %d upstream requests, want 200 after %d", resp.StatusCode, len(got), tt.sends)
		}
		if string(got[0]) != tt.body {
			t.Fatalf("the first request was not the client's body byte for byte: %s", got[0])
		}
	}
	// The second send: no wrapped state, no thinking (its final tool turn
	// lost its thinking block), the tool turn kept.
	if last := got[1]; strings.Contains(string(last), "ccr1.") || gjson.GetBytes(last, "thinking").Exists() || gjson.GetBytes(last, "messages.1.content.0.type").Str != "tool_use" {
		t.Fatalf("sent again as %s", last)
	}
}
