package provider

import (
	"encoding/json"
	"testing"
)

// Any string, invalid UTF-8 included, becomes valid JSON that decodes back
// to it (invalid bytes as U+FFFD).
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "ctl\x00\x1f\t\r\n", "ünï€😀", "bad\xffutf8", "<&>"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s: %v", s, got, err)
		}
		want := s
		if s == "bad\xffutf8" {
			want = "bad\ufffdutf8"
		}
		if back != want {
			t.Errorf("round trip of %q = %q", s, back)
		}
	}
}
