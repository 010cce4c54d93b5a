package relay

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccrelay/ccrelay/internal/config"
)

func TestRedactorRemovesSecrets(t *testing.T) {
	ups := []*Upstream{
		{Config: config.AccountConfig{APIKey: "custom-gateway-key-123456"}},
		{Config: config.AccountConfig{RefreshToken: "rt-opaque-secret-value"}},
		nil,
	}
	rd := newRedactor(ups)
	tests := []struct{ in, want string }{
		{"key custom-gateway-key-123456 is bad", "key [redacted] is bad"},
		{"token rt-opaque-secret-value expired", "token [redacted] expired"},
		{"Consumer 'api_key:AIzaSyA-0123456789abcdefghijklmnopqrstu' suspended", "Consumer 'api_key:[redacted]' suspended"},
		{"bad sk-ant-api03-abcdefghijklmnop here", "bad [redacted] here"},
		{"bad sk-proj-abcdefghijklmnopqrstuvwxyz0123", "bad [redacted]"},
		{"Bearer ya29.a0AfB_byC-abcdefghijklmnopqrstuv", "Bearer [redacted]"},
		{"refresh 1//0gabcdefghijklmnopqrstuvwxyz", "refresh [redacted]"},
		// A Codex (ChatGPT sign-in) access token is a JSON Web Token.
		{"token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJl rejected", "token [redacted] rejected"},
		{"nothing secret: sk-short, model claude-sonnet-4-5", "nothing secret: sk-short, model claude-sonnet-4-5"},
	}
	for _, tt := range tests {
		if got := rd.text(tt.in); got != tt.want {
			t.Errorf("text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	clean := []byte(`{"error":{"message":"overloaded"}}`)
	if got := rd.body(clean); &got[0] != &clean[0] {
		t.Error("a body without secrets was copied")
	}
}

func TestHeaderListsAreCaseInsensitive(t *testing.T) {
	src := http.Header{}
	src["session_id"] = []string{"s"}
	src.Set("OpenAI-Organization", "org")
	src.Set("X-Codex-Beta-Features", "f")
	src.Set("Authorization", "Bearer relay-key")
	dst := http.Header{}
	copyRequestHeader(dst, src, openaiRequestHeaders)
	if dst["session_id"][0] != "s" || dst.Get("X-Codex-Beta-Features") != "f" {
		t.Fatalf("allowed headers dropped: %v", dst)
	}
	if dst.Get("Openai-Organization") != "" || dst.Get("Authorization") != "" {
		t.Fatalf("blocked headers passed: %v", dst)
	}
}

// recordingReader records the size of every read it is asked for.
type recordingReader struct {
	r       io.Reader
	biggest int
}

func (r *recordingReader) Read(p []byte) (int, error) {
	r.biggest = max(r.biggest, len(p))
	return r.r.Read(p)
}

// A body's buffer grows with the bytes that arrive, not with the length the
// header claims.
func TestBodyBufferFollowsBytesReceived(t *testing.T) {
	rr := &recordingReader{r: strings.NewReader(strings.Repeat("x", 100))}
	req := httptest.NewRequest("POST", "/v1/messages", rr)
	req.ContentLength = 30 << 20
	if _, _, err := readRequestBody(req, 32<<20); err == nil {
		t.Fatal("a short body was accepted")
	}
	if rr.biggest > firstBodyChunk {
		t.Fatalf("a read of %d bytes was prepared for a 100-byte body", rr.biggest)
	}
	// A real large body arrives whole through the growing buffer.
	want := bytes.Repeat([]byte("0123456789"), 30000)
	req = httptest.NewRequest("POST", "/v1/messages", bytes.NewReader(want))
	got, buf, err := readRequestBody(req, 32<<20)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("err %v, %d bytes", err, len(got))
	}
	putBodyBuf(buf)
}

// An upstream message kept in the request log is cut at a rune boundary, so
// the stored JSON holds no broken character.
func TestBoundCutsAtARuneBoundary(t *testing.T) {
	s := strings.Repeat("é", 600) // 1200 bytes, two per rune
	got := bound(s, 1023)
	if len(got) != 1022 || !utf8.ValidString(got) {
		t.Fatalf("bound gave %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if bound("short", 1024) != "short" {
		t.Fatal("a short message was changed")
	}
}
