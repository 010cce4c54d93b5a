package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/chromedp/chromedp"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

const (
	adminKey = "dashboard-admin-key-0123456789"
	relayKey = "dashboard-relay-key-0123456789"
	// chromiumPath is where Debian's chromium package puts the browser
	// (scripts/test.sh installs it).
	chromiumPath = "/usr/bin/chromium"
	// ScreenshotEnv names a directory to write the screenshots to (e.g.
	// docs/img); without it they go to the test's temporary directory.
	screenshotEnv = "CCRELAY_SCREENSHOTS"
)

// startRelay runs the real relay with two Claude accounts: "main" answers,
// "flaky" (higher priority) is overloaded, so it cools down on first use.
func startRelay(t *testing.T) (string, *app.App) {
	t.Helper()
	good := httptest.NewServer(&fakeupstream.Anthropic{Keys: []string{"sk-ant-main-account"}})
	t.Cleanup(good.Close)
	bad := httptest.NewServer(&fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 529, Body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}
	}})
	t.Cleanup(bad.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`api_keys = [%q]
admin_keys = [%q]
[server]
host = "127.0.0.1"
database_path = %q
[[accounts]]
type = "claude-api"
id = "main"
name = "Team Claude API"
api_key = "sk-ant-main-account"
api_url = %q
[[accounts]]
type = "claude-api"
id = "flaky"
name = "Overflow account"
api_key = "sk-ant-flaky-account"
api_url = %q
priority = 200
`, relayKey, adminKey, filepath.Join(t.TempDir(), "relay.db"), good.URL, bad.URL)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return "http://" + addr.String(), a
}

// adminGet reads the admin API as the page does, with the admin key.
func adminGet(t *testing.T, base, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+admin.Prefix+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Skip("chromium is not installed at " + chromiumPath + "; the dashboard's browser tests skip (scripts/test.sh installs it: apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// A bound on the whole test, so a broken page fails instead of hanging.
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv(screenshotEnv); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// open shows a page of the dashboard and waits for its first load.
func open(ctx context.Context, base, page string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(base+"/dashboard#"+page),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="`+page+`"]`)))
}

func text(ctx context.Context, sel string) (string, error) {
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	return strings.TrimSpace(s), err
}

func TestDashboardInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	base, _ := startRelay(t)
	shots := screenshotDir(t)

	// Known traffic: three conversations' first turns through the official SDK.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // later steps build on this one
		}
	}

	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(base), option.WithAPIKey(relayKey), option.WithMaxRetries(0))
	const turns = 3
	for i := range turns {
		_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
			MaxTokens: 256, Model: "claude-sonnet-5",
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
		}, option.WithHeader("X-Claude-Code-Session-Id", fmt.Sprintf("7c0d1a52-0000-4000-8000-00000000000%d", i)))
		if err != nil {
			t.Fatal(err)
		}
	}

	step("wrong admin key is refused", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/dashboard"),
			chromedp.WaitVisible(chromedp.ID("key")),
			chromedp.SendKeys(chromedp.ID("key"), relayKey),
			chromedp.Submit(chromedp.ID("key")),
			chromedp.WaitVisible(chromedp.ID("signin-error")))
		errText, _ := text(ctx, "#signin-error")
		if err != nil || !strings.Contains(errText, "not an admin key") {
			t.Fatalf("sign-in with a relay key: %q %v", errText, err)
		}
		shoot(t, ctx, shots, "dashboard-signin.png")
	})

	step("sign in", func(t *testing.T) {
		err := chromedp.Do(ctx,
			// The refused sign-in showed a fresh, empty form.
			chromedp.SendKeys(chromedp.ID("key"), adminKey),
			chromedp.Submit(chromedp.ID("key")),
			chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="overview"]`)))
		if err != nil {
			t.Fatal(err)
		}
		src, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{adminKey, relayKey, "sk-ant-main-account", "sk-ant-flaky-account"} {
			if strings.Contains(src, secret) {
				t.Fatalf("a secret is in the page source")
			}
		}
	})

	midnight := func() string {
		y, m, d := time.Now().Date()
		return url.QueryEscape(time.Date(y, m, d, 0, 0, 0, 0, time.Local).Format(time.RFC3339))
	}()

	step("overview", func(t *testing.T) {
		var rep admin.UsageReport
		adminGet(t, base, "usage?since="+midnight, &rep)
		tot := rep.Total
		if tot.Requests != turns {
			t.Fatalf("the relay recorded %d requests, want %d", tot.Requests, turns)
		}
		if err := open(ctx, base, "overview"); err != nil {
			t.Fatal(err)
		}
		tokens := tot.InputTokens + tot.OutputTokens + tot.CacheCreationTokens + tot.CacheReadTokens
		for sel, want := range map[string]string{
			"#ov-tokens .v": fmtInt(tokens), "#ov-requests-today .v": fmtInt(tot.Requests),
		} {
			if got, err := text(ctx, sel); err != nil || got != want {
				t.Errorf("%s shows %q (%v), the admin API says %s", sel, got, err, want)
			}
		}
		var h admin.Health
		adminGet(t, base, "health", &h)
		pool, err := text(ctx, ".pool-cooling .bar-head")
		if want := fmt.Sprintf("%d of 2", h.Accounts[admin.StateCoolingDown]); err != nil || !strings.Contains(pool, want) {
			t.Errorf("pool shows %q (%v), want %q", pool, err, want)
		}
		shoot(t, ctx, shots, "dashboard-overview.png")
	})

	step("accounts, and reset from the page", func(t *testing.T) {
		var accts admin.AccountsResponse
		adminGet(t, base, "accounts", &accts)
		byID := map[string]admin.Account{}
		for _, a := range accts.Accounts {
			byID[a.ID] = a
		}
		if byID["flaky"].State != admin.StateCoolingDown {
			t.Fatalf("flaky is %s, want cooling_down after its 529", byID["flaky"].State)
		}
		if err := open(ctx, base, "accounts"); err != nil {
			t.Fatal(err)
		}
		if got, err := text(ctx, `tr[data-id="main"] .today-requests`); err != nil || got != fmtInt(byID["main"].Today.Requests)+" req" {
			t.Errorf("main shows %q (%v), the admin API says %d requests", got, err, byID["main"].Today.Requests)
		}
		if got, _ := text(ctx, `tr[data-id="flaky"] .badge`); got != "cooling down" {
			t.Errorf("flaky's badge says %q", got)
		}
		shoot(t, ctx, shots, "dashboard-accounts.png")
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`button[data-action="reset"][data-id="flaky"]`)),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-id="flaky"] .badge.ready`)))
		if err != nil {
			t.Fatalf("reset from the page: %v", err)
		}
		adminGet(t, base, "accounts", &accts)
		for _, a := range accts.Accounts {
			if a.ID == "flaky" && (a.State != admin.StateReady || len(a.Cooldowns) != 0) {
				t.Fatalf("after reset the admin API says %+v", a)
			}
		}
	})

	step("a request without the CSRF token is refused", func(t *testing.T) {
		js := `fetch("/admin/v1/accounts/main/disable", {method: "POST", credentials: "same-origin"}).then(r => r.status)`
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusForbidden {
			t.Fatalf("POST without CSRF token: %d, want 403", status)
		}
		var accts admin.AccountsResponse
		adminGet(t, base, "accounts", &accts)
		for _, a := range accts.Accounts {
			if a.Disabled {
				t.Fatalf("%s was disabled by a request without the token", a.ID)
			}
		}
	})

	step("keys", func(t *testing.T) {
		var keys admin.KeysResponse
		adminGet(t, base, "keys", &keys)
		if err := open(ctx, base, "keys"); err != nil {
			t.Fatal(err)
		}
		if got, err := text(ctx, `tr[data-name="api_keys[0]"] .key-requests`); err != nil || got != fmtInt(keys.Keys[0].Today.Requests) {
			t.Errorf("key requests %q (%v), the admin API says %d", got, err, keys.Keys[0].Today.Requests)
		}
		shoot(t, ctx, shots, "dashboard-keys.png")
	})

	step("usage", func(t *testing.T) {
		var rep admin.UsageReport
		adminGet(t, base, "usage?since=24h&by=model", &rep)
		if err := open(ctx, base, "usage"); err != nil {
			t.Fatal(err)
		}
		for _, g := range rep.Groups {
			row := `#usage-table tbody tr[data-name="` + g.Name + `"]`
			if got, err := text(ctx, row+" .requests"); err != nil || got != fmtInt(g.Requests) {
				t.Errorf("%s requests %q (%v), want %d", g.Name, got, err, g.Requests)
			}
			if got, err := text(ctx, row+" .input"); err != nil || got != fmtInt(g.InputTokens) {
				t.Errorf("%s input %q (%v), want %d", g.Name, got, err, g.InputTokens)
			}
		}
		shoot(t, ctx, shots, "dashboard-usage.png")
	})

	step("sessions", func(t *testing.T) {
		var ss admin.SessionsResponse
		adminGet(t, base, "sessions", &ss)
		if len(ss.Sessions) != turns {
			t.Fatalf("the admin API lists %d sessions, want %d", len(ss.Sessions), turns)
		}
		if err := open(ctx, base, "sessions"); err != nil {
			t.Fatal(err)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sessions-table tbody tr[data-key]").length`))
		if err != nil || n != len(ss.Sessions) {
			t.Fatalf("page lists %d sessions (%v), want %d", n, err, len(ss.Sessions))
		}
		shoot(t, ctx, shots, "dashboard-sessions.png")
	})

	step("phone width", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
			t.Fatal(err)
		}
		if err := open(ctx, base, "accounts"); err != nil {
			t.Fatal(err)
		}
		js := `(() => { let w = ""; for (const e of document.querySelectorAll("*")) { const r = e.getBoundingClientRect(); if (r.right > innerWidth + 1 && r.width > 0) w += e.tagName + "." + e.className + " " + Math.round(r.right) + "; "; } return document.documentElement.scrollWidth + " " + w; })()`
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil || !strings.HasPrefix(wide, "390 ") {
			t.Errorf("the page is wider than a phone: %s %v", wide, err)
		}
		shoot(t, ctx, shots, "dashboard-accounts-phone.png")
	})
}
