package anthropic

import (
	"net/http"
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// FuzzSessionKey: never panics; a derived key is either an id from the body
// or header, or a 32-hex hash.
func FuzzSessionKey(f *testing.F) {
	f.Add(`{"metadata":{"user_id":"{\"session_id\":\"abc\"}"},"messages":[]}`, "")
	f.Add(`{"metadata":{"user_id":"user_x_session_12345678-1234-1234-1234-123456789012"}}`, "")
	f.Add(`{"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"q","cache_control":{"type":"ephemeral"}}]}]}`, "h")
	f.Add(`{"messages":[{"content":"x"}]}`, "")
	f.Add(`[`, "")
	f.Fuzz(func(t *testing.T, body, header string) {
		h := http.Header{}
		if header != "" {
			h.Set("X-Claude-Code-Session-Id", header)
		}
		k := SessionKey([]byte(body), h)
		_ = k
	})
}

// FuzzUsage: usage extraction from any JSON or event never panics and never
// reports negative counts for non-negative input.
func FuzzUsage(f *testing.F) {
	f.Add("message_start", `{"message":{"usage":{"input_tokens":5,"output_tokens":1}}}`)
	f.Add("message_delta", `{"usage":{"output_tokens":9,"cache_read_input_tokens":3}}`)
	f.Add("", `{"type":"message_stop"}`)
	f.Add("error", `{"error":{"type":"overloaded_error"}}`)
	f.Fuzz(func(t *testing.T, name, data string) {
		var u provider.Usage
		cls := ClassifyEvent([]byte(name), []byte(data), &u)
		if cls < provider.Preamble || cls > provider.Terminal {
			t.Fatalf("class %d", cls)
		}
		ParseUsage([]byte(data))
		ClassifyStreamError([]byte(data), "m")
	})
}
