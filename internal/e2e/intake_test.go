package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/pricing"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// A body with a top-level key the relay reads written twice is the client's
// 400 on every route, in the route's shape, and nothing goes upstream.
// Parsers disagree on which copy counts: the Responses route read the first
// "model" (gjson) while the upstream served the last, so a key allowed only
// gpt-5-mini got gpt-5-pro, booked as gpt-5-mini (issue 31, item 4).
func TestRepeatedKeysAreRefused(t *testing.T) {
	claude := &fakeupstream.Anthropic{}
	oa := &fakeupstream.OpenAI{}
	gem := &fakeupstream.GeminiAPI{}
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + claudeAPIAccount("c", upstream(t, claude).URL, "k", 100) +
		openaiAccount("o", upstream(t, oa).URL, "sk-o", 100) + geminiAPIAccount("g", upstream(t, gem).URL, geminiKey, 100) + `
[[keys]]
name = "mini"
key = "mini-key-0123456789"
models = ["gpt-5-mini", "claude-haiku-*"]
`
	r := startRelay(t, cfg)
	tests := []struct {
		name, path, key, body, want string
	}{
		{"responses, the audit's probe", "/v1/responses", "mini-key-0123456789", `{"model":"gpt-5-mini","model":"gpt-5-pro","input":"hi"}`, `"type":"invalid_request_error"`},
		{"responses stream", "/openai/v1/responses", relayKey, `{"model":"gpt-5","input":"hi","stream":false,"stream":true}`, `"type":"invalid_request_error"`},
		{"messages", "/v1/messages", "mini-key-0123456789", `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"model":"claude-opus-4-1"}`, `"type":"invalid_request_error"`},
		{"messages, escaped key", "/v1/messages", relayKey, `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"mod\u0065l":"claude-opus-4-1"}`, `"type":"invalid_request_error"`},
		{"count_tokens", "/v1/messages/count_tokens", relayKey, `{"model":"a","messages":[],"messages":[]}`, `"type":"invalid_request_error"`},
		{"chat", "/v1/chat/completions", relayKey, `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}],"stream":true,"stream":false}`, `"type":"invalid_request_error"`},
		{"gemini", "/gemini/v1beta/models/gemini-2.5-pro:generateContent", relayKey, `{"contents":[{"parts":[{"text":"a"}]}],"contents":[{"parts":[{"text":"b"}]}]}`, `"status":"INVALID_ARGUMENT"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", r.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tt.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tt.want) || !strings.Contains(string(b), "more than once") {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
		})
	}
	if n := claude.Count() + oa.Count() + gem.Count(); n != 0 {
		t.Fatalf("%d requests reached an upstream", n)
	}
	// A repeat of a key the relay does not read passes (the upstream judges it).
	req, _ := http.NewRequest("POST", r.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-5-mini","input":"hi","user":"a","user":"b"}`))
	req.Header.Set("Authorization", "Bearer mini-key-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || oa.Count() != 1 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// Parallel requests of a key with a dollar budget reserve their estimated
// cost at admission, so while they run the budget refuses the rest: they
// pass it by about one request's cost at most. Before, the budget was only
// checked against what finished requests had cost, and every request
// admitted while the others ran was served (issue 31, item 5). A model
// with no price is refused on such a key: its cost could not be charged.
func TestParallelRequestsStayWithinTheBudget(t *testing.T) {
	gate := make(chan struct{})
	fake := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		<-gate // every request admitted stays in flight until all are answered or here
		return nil
	}}
	// A request costs $0.000154 (12 in, 7 out, cache 3 + 5 on sonnet) and
	// reserves about $0.00026 (its body and max_tokens 10).
	per, _ := pricing.Embedded().Cost("claude-sonnet-4-5", provider.Usage{InputTokens: 12, OutputTokens: 7, CacheCreationTokens: 3, CacheReadTokens: 5})
	const budget = 500 // micro-dollars
	r := startRelay(t, claudeAPIAccount("a", upstream(t, fake).URL, "k", 100)+`
[[keys]]
name = "small"
key = "small-key-0123456789"
daily_usd = 0.0005
`)
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey("small-key-0123456789"), option.WithMaxRetries(0))
	params := newParams("claude-sonnet-4-5")
	params.MaxTokens = 10
	const n = 20
	var refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Messages.New(context.Background(), params)
			if err != nil {
				refused.Add(1)
			}
			errs <- err
		})
	}
	waitFor(t, 60*time.Second, "every request refused or at the upstream", func() bool { return int(refused.Load())+fake.Count() == n })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		var ae *anthropic.Error
		if err != nil && (!errors.As(err, &ae) || ae.StatusCode != 429 || !strings.Contains(ae.RawJSON(), "budget")) {
			t.Fatalf("refusal: %v", err)
		}
	}
	served := n - int(refused.Load())
	if served < 1 || int64(served)*per > budget+per {
		t.Fatalf("%d of %d parallel requests served at $%.6f each against a $%.4f budget", served, n, float64(per)/1e6, float64(budget)/1e6)
	}
	_, err := c.Messages.New(context.Background(), newParams("mystery-model-1"))
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 403 || !strings.Contains(ae.RawJSON(), "has no price") {
		t.Fatalf("unpriced model: %v", err)
	}
}
