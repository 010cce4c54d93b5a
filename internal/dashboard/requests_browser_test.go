package dashboard_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/chromedp/chromedp"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// startFailoverRelay runs a relay whose first account ("revoked") answers
// 401 and whose second ("main") serves, with the named key ci-bot.
func startFailoverRelay(t *testing.T) string {
	t.Helper()
	good := httptest.NewServer(&fakeupstream.Anthropic{Keys: []string{"sk-ant-main-account"}, Text: "Done."})
	t.Cleanup(good.Close)
	bad := httptest.NewServer(&fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`}
	}})
	t.Cleanup(bad.Close)
	dir := t.TempDir()
	text := fmt.Sprintf(`admin_keys = [%q]
[server]
host = "127.0.0.1"
database_path = %q
[[accounts]]
type = "claude-api"
id = "revoked"
api_key = "sk-ant-revoked-account"
api_url = %q
priority = 200
[[accounts]]
type = "claude-api"
id = "main"
api_key = "sk-ant-main-account"
api_url = %q
[[keys]]
name = "ci-bot"
key = %q
`, adminKey, filepath.Join(dir, "relay.db"), bad.URL, good.URL, ciKey)
	url, _ := startRelayFromText(t, filepath.Join(dir, "config.toml"), text)
	return url
}

// The Requests page: a capture started from the page for ci-bot shows a
// banner; a request that failed over (401 on revoked, 200 on main) is in
// the list with its trail, and its detail shows both attempts with the
// 401's verdict and the upstream's message, and the captured bodies
// without the key; the account's last error links to its requests.
func TestRequestsPageInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	base := startFailoverRelay(t)
	shots := screenshotDir(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), adminKey), chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="overview"]`))); err != nil {
		t.Fatal(err)
	}
	if err := open(ctx, base, "requests"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#capture-form input[name="key"]`), "ci-bot"),
		chromedp.Click(chromedp.CSS(`#capture-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#captures-list li[data-capture="1"] .badge`)),
		chromedp.WaitVisible(chromedp.ID("capture-banner"))); err != nil {
		t.Fatalf("start a capture from the page: %v", err)
	}
	if banner, _ := text(ctx, "#capture-banner"); !strings.Contains(banner, "Body capture is on (key ci-bot)") {
		t.Fatalf("banner: %q", banner)
	}
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(base), option.WithAPIKey(ciKey), option.WithMaxRetries(0))
	if _, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{MaxTokens: 256, Model: model,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("fix the flaky test"))}}); err != nil {
		t.Fatal(err)
	}
	// The page polls every 5 s; the row appears once the writer has it.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(`#requests-table tbody tr[data-id] .trail .hop.failed`))); err != nil {
		t.Fatalf("the failover never showed in the list: %v", err)
	}
	trail, _ := text(ctx, "#requests-table tbody tr[data-id] .trail")
	if !strings.Contains(trail, "revoked 401") || !strings.Contains(trail, "main") {
		t.Fatalf("trail: %q", trail)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#requests-table tbody tr[data-id] button[data-open]`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail li.attempt[data-account="main"]`))); err != nil {
		t.Fatal(err)
	}
	first, _ := text(ctx, `#req-detail li.attempt[data-account="revoked"]`)
	second, _ := text(ctx, `#req-detail li.attempt[data-account="main"]`)
	if !strings.Contains(first, "401") || !strings.Contains(first, "unavailable") || !strings.Contains(first, "upstream: invalid x-api-key") || !strings.Contains(second, "200") {
		t.Fatalf("attempts:\n%s\n%s", first, second)
	}
	detail, _ := text(ctx, "#req-detail")
	if !strings.Contains(detail, "Captured bodies") || !strings.Contains(detail, "fix the flaky test") || strings.Contains(detail, "[object") ||
		!strings.Contains(detail, "Route\n/v1/messages (anthropic)") {
		t.Fatalf("detail without the captured bodies:\n%s", detail)
	}
	src, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	for _, secret := range []string{adminKey, ciKey, "sk-ant-main-account", "sk-ant-revoked-account"} {
		if strings.Contains(src, secret) {
			t.Fatalf("secret %q on the page", secret)
		}
	}
	shoot(t, ctx, shots, "dashboard-requests.png")

	// The account's last error links to its requests, filtered.
	if err := open(ctx, base, "accounts"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[data-requests="revoked"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="requests"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#requests-table tbody tr[data-id]`))); err != nil {
		t.Fatal(err)
	}
	acct, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#req-controls input[name="account"]`)))
	if err != nil || acct != "revoked" {
		t.Fatalf("account filter from the link: %q %v", acct, err)
	}
}

// A routed request on the Requests page: claude-sonnet-4-5 routed
// `to = ["claude", "openai:gpt-5"]`, the Claude account rate-limited, so the
// call falls through to an OpenAI account as gpt-5. The list shows the
// model served under the model asked; the detail names the served model
// and its platform, the target of each attempt and why the Claude target
// was passed over.
func TestRoutedRequestInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	limited := httptest.NewServer(&fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 429, Header: map[string]string{"Retry-After": "600"},
			Body: `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`}
	}})
	t.Cleanup(limited.Close)
	gpt := httptest.NewServer(&fakeupstream.OpenAI{Keys: []string{"sk-openai-account"}, Text: "Done on GPT."})
	t.Cleanup(gpt.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`admin_keys = [%q]
[server]
host = "127.0.0.1"
database_path = %q
[[accounts]]
type = "claude-api"
id = "claude-max"
api_key = "sk-ant-claude-account"
api_url = %q
[[accounts]]
type = "openai-responses"
id = "chatgpt-team"
api_key = "sk-openai-account"
api_url = %q
[[keys]]
name = "ci-bot"
key = %q
[[routes]]
models = ["claude-sonnet-*"]
to = ["claude", "openai:gpt-5"]
`, adminKey, filepath.Join(dir, "relay.db"), limited.URL, gpt.URL, ciKey)
	base, _ := startRelayFromText(t, filepath.Join(dir, "config.toml"), cfg)
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(base), option.WithAPIKey(ciKey), option.WithMaxRetries(0))
	msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{MaxTokens: 256, Model: model,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("fix the flaky test"))}})
	if err != nil || msg.Content[0].Text != "Done on GPT." {
		t.Fatalf("routed request: %+v %v", msg, err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), adminKey), chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="overview"]`))); err != nil {
		t.Fatal(err)
	}
	if err := open(ctx, base, "requests"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(`#requests-table tbody tr[data-id] .served`))); err != nil {
		t.Fatalf("the served model never showed in the list: %v", err)
	}
	if served, _ := text(ctx, "#requests-table tbody tr[data-id] .served"); served != "→ gpt-5" {
		t.Fatalf("served: %q", served)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#requests-table tbody tr[data-id] button[data-open]`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail li.attempt[data-account="chatgpt-team"]`))); err != nil {
		t.Fatal(err)
	}
	detail, _ := text(ctx, "#req-detail")
	first, _ := text(ctx, `#req-detail li.attempt[data-account="claude-max"]`)
	second, _ := text(ctx, `#req-detail li.attempt[data-account="chatgpt-team"]`)
	if !strings.Contains(detail, "Model served\ngpt-5 on openai") || !strings.Contains(first, "429") || !strings.Contains(first, "target: claude") ||
		!strings.Contains(second, "200") || !strings.Contains(second, "target: openai:gpt-5") || !strings.Contains(second, "passed over: claude") ||
		strings.Contains(first+second, "ended at –") {
		t.Fatalf("detail:\n%s\nattempts:\n%s\n%s", detail, first, second)
	}
	shoot(t, ctx, screenshotDir(t), "dashboard-routed-request.png")
}
