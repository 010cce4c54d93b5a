package convert

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tidwall/gjson"
)

// The scrubbers never panic, keep valid JSON valid, leave no wrapped state
// behind in the places they clean, and a second pass changes nothing.
func FuzzScrubMessages(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(`{"thinking":{"type":"enabled"},"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":%q},{"type":"tool_use","id":"a","input":{}}]}]}`, openaiWrapped)))
	f.Add([]byte(fmt.Sprintf(`{"messages":[{"role":"assistant","content":[{"type":"redacted_thinking","data":%q}]}]}`, openaiWrapped)))
	f.Add([]byte(`{"messages":"ccr1.x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScrub(t, body, ScrubMessages)
	})
}

// FuzzScrubResponses: see FuzzScrubMessages.
func FuzzScrubResponses(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(`{"input":[{"type":"reasoning","encrypted_content":%q},{"type":"compaction","encrypted_content":%q}]}`, openaiWrapped, openaiWrapped)))
	f.Add([]byte(`{"input":[{"type":"compaction","encrypted_content":"ccr1.a.b.c.d"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScrub(t, body, ScrubResponses)
	})
}

// checkScrub scrubs body (an error is fine) and fails t when valid JSON
// comes out invalid or a second pass changes the result.
func checkScrub(t *testing.T, body []byte, scrub func([]byte) ([]byte, error)) {
	t.Helper()
	out, err := scrub(body)
	if err != nil {
		return
	}
	if gjson.ValidBytes(body) && !gjson.ValidBytes(out) {
		t.Fatalf("valid %s became invalid %s", body, out)
	}
	again, err := scrub(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("second pass changed %s into %s (%v)", out, again, err)
	}
}
