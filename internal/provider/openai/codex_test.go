package openai

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

func TestCodexBody(t *testing.T) {
	in := `{"model":"gpt-5","input":"hi","stream":false,"store":true,"temperature":0.2,"top_p":1,"max_output_tokens":9,"metadata":{"a":"b"},"previous_response_id":"resp_1","service_tier":"auto","tools":[{"type":"function","name":"f"}]}`
	out, stream, err := CodexBody([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if stream {
		t.Fatal("client did not ask for a stream")
	}
	r := gjson.ParseBytes(out)
	if r.Get("store").Type != gjson.False || !r.Get("stream").Bool() || !r.Get("instructions").Exists() || r.Get("instructions").Str != "" {
		t.Fatalf("rules not applied: %s", out)
	}
	for _, k := range []string{"temperature", "top_p", "max_output_tokens", "metadata", "previous_response_id", "service_tier"} {
		if r.Get(k).Exists() {
			t.Errorf("%s kept: %s", k, out)
		}
	}
	if r.Get("model").Str != "gpt-5" || r.Get("tools.0.name").Str != "f" || r.Get("input").Str != "hi" {
		t.Fatalf("other fields changed: %s", out)
	}
	out, stream, _ = CodexBody([]byte(`{"stream":true,"instructions":"be brief"}`))
	if !stream || gjson.GetBytes(out, "instructions").Str != "be brief" {
		t.Fatalf("stream %v body %s", stream, out)
	}
	if out, _, _ := CodexBody([]byte(`[1]`)); string(out) != `[1]` {
		t.Fatalf("non-object changed: %s", out)
	}
}

func jwt(claims any) string {
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(b) + ".sig"
}

func TestChatGPTAccountID(t *testing.T) {
	tok := jwt(map[string]any{"email": "a@b.c", "https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acc-123", "chatgpt_plan_type": "pro"}})
	if got := ChatGPTAccountID(tok); got != "acc-123" {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"", "opaque-token", "a.b.c", jwt(map[string]any{"sub": "x"})} {
		if got := ChatGPTAccountID(bad); got != "" {
			t.Fatalf("%q: got %q", bad, got)
		}
	}
}

func TestCodexDetail(t *testing.T) {
	if got := CodexDetail([]byte(`{"detail":"Unsupported parameter: temperature"}`)); got != "Unsupported parameter: temperature" {
		t.Fatalf("got %q", got)
	}
	if got := CodexDetail([]byte(`{"detail":{"message":"x"}}`)); got != "x" {
		t.Fatalf("got %q", got)
	}
	if got := CodexDetail([]byte(`{"error":{"message":"x"}}`)); got != "" {
		t.Fatalf("got %q", got)
	}
}

func TestCodexAggregator(t *testing.T) {
	t.Run("output from items", func(t *testing.T) {
		var a CodexAggregator
		for _, ev := range []string{
			`{"type":"response.created","response":{"id":"resp_1"}}`,
			`{"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}}`,
			`{"type":"response.output_item.done","output_index":0,"item":{"type":"message","content":[{"type":"output_text","text":"hi"}]}}`,
			`{"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":2}}}`,
		} {
			a.Add([]byte(ev))
		}
		body, failed, ok := a.Result()
		if !ok || failed {
			t.Fatalf("ok %v failed %v", ok, failed)
		}
		r := gjson.ParseBytes(body)
		if r.Get("id").Str != "resp_1" || r.Get("output.#").Int() != 2 || r.Get("output.0.type").Str != "message" || r.Get("output.1.name").Str != "f" {
			t.Fatalf("body %s", body)
		}
		if u, _ := ParseUsage(body); u.InputTokens != 5 || u.OutputTokens != 2 {
			t.Fatalf("usage %+v", u)
		}
	})
	t.Run("failed", func(t *testing.T) {
		var a CodexAggregator
		a.Add([]byte(`{"type":"response.failed","response":{"error":{"code":"rate_limit_exceeded","message":"slow \u0001 down"}}}`))
		ev, failed, ok := a.Result()
		if !ok || !failed || CodexFailedStatus(ev) != 429 {
			t.Fatalf("ok %v failed %v status %d", ok, failed, CodexFailedStatus(ev))
		}
		if b := CodexErrorBody(ev); !gjson.ValidBytes(b) || gjson.GetBytes(b, "error.code").Str != "rate_limit_exceeded" {
			t.Fatalf("error body %s", b)
		}
	})
	t.Run("no terminal", func(t *testing.T) {
		var a CodexAggregator
		a.Add([]byte(`{"type":"response.output_text.delta","delta":"x"}`))
		if _, _, ok := a.Result(); ok {
			t.Fatal("a stream without a terminal event must not aggregate")
		}
	})
}

// idleCounter is a RoundTripper that counts CloseIdleConnections calls.
type idleCounter struct {
	http.RoundTripper
	closed int
}

func (c *idleCounter) CloseIdleConnections() { c.closed++ }

// An http.Client over CodexTransport closes the wrapped transport's idle
// connections (a reload dropping the account relies on it).
func TestCodexTransportCloseIdleConnections(t *testing.T) {
	base := &idleCounter{}
	c := &http.Client{Transport: &CodexTransport{Base: base}}
	c.CloseIdleConnections()
	if base.closed != 1 {
		t.Fatalf("CloseIdleConnections reached the base %d times, want 1", base.closed)
	}
}
