package anthropic

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkInspect is the one walk of a 100 KB Claude Code-like body that
// reads model, stream, max_tokens and the session id (and, since issue 31
// item 4, refuses a repeated key).
func BenchmarkInspect(b *testing.B) {
	msg := `{"role":"user","content":[{"type":"text","text":"` + strings.Repeat(`some \"quoted\" text `, 40) + `"}]},`
	body := []byte(`{"model":"claude-sonnet-4-5","messages":[` + strings.Repeat(msg, 120) + `{"role":"user","content":"hi"}],` +
		`"system":[{"type":"text","text":"you are"}],"tools":[],"metadata":{"user_id":"{\"session_id\":\"0b7f0a2e-1111-2222-3333-444455556666\"}"},"max_tokens":32000,"stream":true}`)
	h := http.Header{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if r := Inspect(body, h); r.Model == "" || !r.Stream {
			b.Fatal(r)
		}
	}
}
