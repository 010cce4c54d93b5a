package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"google.golang.org/genai"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// Protected mode (no relay key) serves the programs on this machine and
// nothing a web page in the operator's browser can send (issue 31 item 6):
// the official Anthropic, OpenAI and Google SDKs, at 127.0.0.1 and at
// localhost, are served; a request addressed to another host name (DNS
// rebinding), one carrying Origin, and one whose body is not sent as JSON
// (text/plain, a form: what a page posts without a CORS preflight) are
// refused in the route's shape, and none reaches an upstream.
func TestProtectedModeServesOnlyLocalPrograms(t *testing.T) {
	fake := &fakeupstream.Anthropic{Text: "fine"}
	var hits atomic.Int64
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { hits.Add(1); fake.ServeHTTP(w, req) }))
	gem := upstream(t, &fakeupstream.GeminiAPI{Keys: []string{geminiKey}})
	r := startRelay(t, claudeAPIAccount("a", up.URL, "sk-ant-protected", 100)+geminiAPIAccount("g", gem.URL, geminiKey, 100)+chatModels)

	for _, base := range []string{r.URL, strings.Replace(r.URL, "127.0.0.1", "localhost", 1)} {
		c := r.anthropicClient(option.WithBaseURL(base))
		msg, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5"))
		if err != nil || len(msg.Content) == 0 || msg.Content[0].Text != "fine" {
			t.Fatalf("Anthropic SDK at %s: %v", base, err)
		}
	}
	oc := r.openaiClient("/openai/v1")
	if cc, err := oc.Chat.Completions.New(context.Background(), chatParams("gpt-4o")); err != nil || len(cc.Choices) == 0 {
		t.Fatalf("OpenAI SDK: %v", err)
	}
	g := r.genaiClient(t, "v1beta", "any-key-protected-mode-ignores")
	if resp, err := g.Models.GenerateContent(context.Background(), geminiModel, genai.Text("say hi"), nil); err != nil || resp.Text() != fakeGeminiText {
		t.Fatalf("genai SDK: %v", err)
	}
	served := hits.Load()

	body := `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, path, host, ctype, origin string
		want                            int
		shape                           string
	}{
		{"rebound host name", "/v1/messages", "attacker.example:3000", "application/json", "", 403, `"type":"permission_error"`},
		{"a page's cross-origin post", "/v1/messages", "", "application/json", "https://attacker.example", 403, `"type":"permission_error"`},
		{"text/plain (no preflight)", "/v1/messages", "", "text/plain;charset=UTF-8", "", 400, `"type":"invalid_request_error"`},
		{"a form (openai)", "/openai/v1/chat/completions", "", "application/x-www-form-urlencoded", "", 400, `"type":"invalid_request_error"`},
		{"rebound host name (google)", "/gemini/v1beta/models/" + geminiModel + ":generateContent", "rebind.attacker.example", "application/json", "", 403, `"status":"PERMISSION_DENIED"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", r.URL+tt.path, strings.NewReader(body))
			req.Header.Set("Content-Type", tt.ctype)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !json.Valid(b) || !strings.Contains(string(b), tt.shape) || !strings.Contains(string(b), "protected mode") {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, b, tt.want, tt.shape)
			}
		})
	}
	if n := hits.Load(); n != served {
		t.Fatalf("a refused request reached the upstream: %d requests, %d before", n, served)
	}
}
