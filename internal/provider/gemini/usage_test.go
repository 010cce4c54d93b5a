package gemini

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

func TestParseUsage(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		want   provider.Usage
		wantOK bool
	}{
		{
			name:   "public full",
			body:   `{"candidates":[],"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":80,"totalTokenCount":1380,"cachedContentTokenCount":1000,"thoughtsTokenCount":100},"modelVersion":"gemini-2.5-pro"}`,
			want:   provider.Usage{InputTokens: 200, OutputTokens: 180, CacheReadTokens: 1000},
			wantOK: true,
		},
		{
			name:   "code assist wrapped",
			body:   `{"response":{"candidates":[],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":15}},"traceId":"t"}`,
			want:   provider.Usage{InputTokens: 10, OutputTokens: 5},
			wantOK: true,
		},
		{
			name:   "sse data prefix",
			body:   "data: {\"usageMetadata\":{\"promptTokenCount\":7,\"thoughtsTokenCount\":3}}\n\n",
			want:   provider.Usage{InputTokens: 7, OutputTokens: 3},
			wantOK: true,
		},
		{
			name:   "prompt only (first stream chunk)",
			body:   `{"candidates":[{"content":{"parts":[{"text":"h"}]}}],"usageMetadata":{"promptTokenCount":42,"totalTokenCount":42}}`,
			want:   provider.Usage{InputTokens: 42},
			wantOK: true,
		},
		{
			name:   "tool use prompt counts as input",
			body:   `{"usageMetadata":{"promptTokenCount":10,"toolUsePromptTokenCount":90,"candidatesTokenCount":1}}`,
			want:   provider.Usage{InputTokens: 100, OutputTokens: 1},
			wantOK: true,
		},
		{
			name:   "cached larger than prompt clamps",
			body:   `{"usageMetadata":{"promptTokenCount":5,"cachedContentTokenCount":9}}`,
			want:   provider.Usage{CacheReadTokens: 9},
			wantOK: true,
		},
		{
			name:   "negative ignored",
			body:   `{"usageMetadata":{"promptTokenCount":-5,"candidatesTokenCount":-1}}`,
			want:   provider.Usage{},
			wantOK: true,
		},
		{
			name:   "empty metadata present",
			body:   `{"usageMetadata":{}}`,
			want:   provider.Usage{},
			wantOK: true,
		},
		{
			name:   "json array stream keeps maxima",
			body:   `[{"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":1}},{"candidates":[]},{"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":30}}]`,
			want:   provider.Usage{InputTokens: 10, OutputTokens: 30},
			wantOK: true,
		},
		{name: "absent", body: `{"candidates":[]}`},
		{name: "count tokens", body: `{"totalTokens":12}`},
		{name: "metadata not object", body: `{"usageMetadata":5}`},
		{name: "nested elsewhere ignored", body: `{"candidates":[{"usageMetadata":{"promptTokenCount":1}}]}`},
		{name: "error", body: `{"error":{"code":500}}`},
		{name: "empty", body: ``},
		{name: "garbage", body: `}{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseUsage([]byte(tt.body))
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("ParseUsage = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseUsageAllocs(t *testing.T) {
	body := []byte(`{"response":{"candidates":[{"content":{"parts":[{"text":"` + strings.Repeat("x", 4096) + `"}]}}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"cachedContentTokenCount":2,"thoughtsTokenCount":1}},"traceId":"t"}`)
	if n := testing.AllocsPerRun(100, func() { ParseUsage(body) }); n > 1 {
		t.Errorf("ParseUsage allocates %v times, want at most 1", n)
	}
}

func hash32(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:32]
}

func TestSessionKey(t *testing.T) {
	long := strings.Repeat("s", 200)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"wrapped session id", `{"model":"m","request":{"contents":[],"session_id":"abc-123"}}`, "abc-123"},
		{"top-level session id", `{"contents":[{"parts":[{"text":"hi"}]}],"session_id":"s-9"}`, "s-9"},
		{"wrapped falls back to outer session id", `{"session_id":"outer","request":{"contents":[]}}`, "outer"},
		{"long session id hashed", `{"session_id":"` + long + `"}`, hash32(long)},
		{"first content wins over system instruction", `{"systemInstruction":{"parts":[{"text":"You are helpful."}]},"contents":[{"parts":[{"text":"hi"}]}]}`, hash32("hi")},
		{"system instruction parts joined", `{"systemInstruction":{"role":"user","parts":[{"text":"a"},{"inlineData":{}},{"text":"b"}]}}`, hash32("a\x00b")},
		{"snake case system instruction", `{"system_instruction":{"parts":[{"text":"sys"}]}}`, hash32("sys")},
		{"wrapped system instruction", `{"model":"m","project":"p","request":{"systemInstruction":{"parts":[{"text":"sys"}]}}}`, hash32("sys")},
		{"escaped text hashed unescaped", `{"systemInstruction":{"parts":[{"text":"a\nb\u00e9"}]}}`, hash32("a\nbé")},
		{"first content", `{"contents":[{"role":"user","parts":[{"text":"first"}]},{"role":"model","parts":[{"text":"second"}]}]}`, hash32("first")},
		{"empty system falls to content", `{"systemInstruction":{"parts":[]},"contents":[{"parts":[{"text":"q"}]}]}`, hash32("q")},
		{"first content without text", `{"contents":[{"parts":[{"inlineData":{"data":"AA=="}}]},{"parts":[{"text":"later"}]}]}`, ""},
		{"empty session id ignored", `{"session_id":"","contents":[{"parts":[{"text":"q"}]}]}`, hash32("q")},
		{"non-string session id ignored", `{"session_id":5}`, ""},
		{"nothing", `{"contents":[]}`, ""},
		{"empty", ``, ""},
		{"garbage", `[1,2`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionKey([]byte(tt.body)); got != tt.want {
				t.Errorf("SessionKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSessionKeyDoesNotAliasBody(t *testing.T) {
	body := []byte(`{"session_id":"abc"}`)
	k := SessionKey(body)
	copy(body, `{"session_id":"XYZ"}`)
	if k != "abc" {
		t.Fatalf("key changed with the body: %q", k)
	}
}

func TestSessionKeyStable(t *testing.T) {
	// The second turn of a conversation repeats its first content.
	a := SessionKey([]byte(`{"systemInstruction":{"parts":[{"text":"x"}]},"contents":[{"parts":[{"text":"1"}]}]}`))
	b := SessionKey([]byte(`{"contents":[{"parts":[{"text":"1"}]},{"parts":[{"text":"3"}]}],"systemInstruction":{"parts":[{"text":"x"}]}}`))
	if a == "" || a != b {
		t.Fatalf("keys differ for the same system instruction: %q %q", a, b)
	}
	if len(a) != 32 {
		t.Fatalf("len = %d, want 32", len(a))
	}
}
