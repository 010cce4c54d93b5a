package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/pricing"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// Named keys with the Anthropic SDK: the model allow-list (403 naming the
// model), a disabled and an expired key (403), and a daily budget that stops
// exactly after the request that crosses it (429 naming the budget and its
// reset). Nothing reaches the upstream for a refused request. The budget is
// set so that the fake upstream's usage (12 in, 7 out, 3 cache write, 5
// cache read), priced with the embedded table, crosses it on the 2nd request.
func TestNamedKeysEndToEnd(t *testing.T) {
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant-account-1"}}
	up := upstream(t, fake)
	per, known := pricing.Embedded().Cost("claude-sonnet-4-5", provider.Usage{InputTokens: 12, OutputTokens: 7, CacheCreationTokens: 3, CacheReadTokens: 5})
	if !known || per != 154 { // 12*3 + 7*15 + 3*3.75 + 5*0.3 = 153.75 micro-dollars
		t.Fatalf("price table: %d %v", per, known)
	}
	// Budget: more than one request, at most two.
	cfg := claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100) + `
[[keys]]
name = "alice"
key = "alice-key-0123456789"
models = ["claude-sonnet-*"]
daily_usd = 0.0002

[[keys]]
name = "off"
key = "off-key-0123456789"
enabled = false

[[keys]]
name = "old"
key = "old-key-0123456789"
expires_at = "2020-01-01"
`
	r := startRelay(t, cfg)
	client := func(key string) *anthropic.Client {
		c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
		return &c
	}
	ctx := context.Background()
	status := func(err error) (int, string) {
		var ae *anthropic.Error
		if !errors.As(err, &ae) {
			t.Fatalf("not an API error: %v", err)
		}
		return ae.StatusCode, ae.RawJSON()
	}

	_, err := client("alice-key-0123456789").Messages.New(ctx, newParams("claude-opus-4-1"))
	if code, body := status(err); code != 403 || !strings.Contains(body, `model \"claude-opus-4-1\" is not allowed`) || !strings.Contains(body, "permission_error") {
		t.Fatalf("model outside the allow-list: %d %s", code, body)
	}
	for _, k := range []string{"off-key-0123456789", "old-key-0123456789"} {
		_, err := client(k).Messages.New(ctx, newParams("claude-sonnet-4-5"))
		if code, body := status(err); code != 403 || !strings.Contains(body, "permission_error") {
			t.Fatalf("%s: %d %s", k, code, body)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("refused requests reached the upstream: %d", n)
	}
	for i := 0; i < 2; i++ {
		if _, err := client("alice-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); err != nil {
			t.Fatalf("request %d under the budget: %v", i, err)
		}
	}
	_, err = client("alice-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
	code, body := status(err)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "daily budget of $0.0002") || !strings.Contains(body, "resets at") || !strings.Contains(body, "rate_limit_error") {
		t.Fatalf("after crossing the budget: %d %s", code, body)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("upstream got %d requests, want 2", n)
	}
}

// rpm: over the limit the relay answers 429 with a retry-after that the
// Anthropic SDK honours: with one retry allowed, the call succeeds.
func TestRPMRetryAfterHonouredBySDK(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	r := startRelay(t, claudeAPIAccount("acct-1", up.URL, "k", 100)+`
[[keys]]
name = "bob"
key = "bob-key-0123456789"
rpm = 60
`)
	ctx := context.Background()
	strict := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey("bob-key-0123456789"), option.WithMaxRetries(0))
	var refused *anthropic.Error
	for i := 0; i < 61 && refused == nil; i++ {
		_, err := strict.Messages.New(ctx, newParams("claude-sonnet-4-5"))
		if err != nil && !errors.As(err, &refused) {
			t.Fatal(err)
		}
	}
	if refused == nil || refused.StatusCode != 429 || refused.Response.Header.Get("Retry-After") != "1" {
		t.Fatalf("61 requests within a minute at rpm 60 were not refused with retry-after 1: %v", refused)
	}
	patient := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey("bob-key-0123456789"), option.WithMaxRetries(1))
	if _, err := patient.Messages.New(ctx, newParams("claude-sonnet-4-5")); err != nil {
		t.Fatalf("the SDK's retry after retry-after failed: %v", err)
	}
}
