package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

const (
	adminKey = "dashboard-admin-key-0123456789"
	relayKey = "dashboard-relay-key-0123456789"
	ciKey    = "ccr-dashboard-ci-bot-key-0123456789"
	// model is priced in the embedded table, so every request has a cost.
	model = "claude-sonnet-4-5"
	// chromiumPath is where Debian's chromium package puts the browser
	// (scripts/test.sh installs it).
	chromiumPath = "/usr/bin/chromium"
	// ScreenshotEnv names a directory to write the screenshots to (e.g.
	// docs/img); without it they go to the test's temporary directory.
	screenshotEnv = "CCRELAY_SCREENSHOTS"
	// minLatency is the least time the "main" account takes to answer.
	minLatency = 30 * time.Millisecond
)

// fmtMs is the page's fmtMs: "–" for none, milliseconds below 10 s.
func fmtMs(ms int64) string {
	if ms == 0 {
		return "–"
	}
	if ms < 10000 {
		return strconv.FormatInt(ms, 10) + " ms"
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
}

// startRelay runs the real relay from a config file (the admin API edits
// it to create and disable keys) with two Claude accounts: "main" answers
// with a Claude Code-sized turn's usage, "flaky" (higher priority) is
// overloaded, so it cools down on first use. The named key "ci-bot" has a
// daily budget.
func startRelay(t *testing.T) (string, *app.App) {
	t.Helper()
	good := httptest.NewServer(&fakeupstream.Anthropic{Keys: []string{"sk-ant-main-account"}, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		// Every answer takes at least minLatency, so the usage page's
		// latency percentiles have something to show.
		time.Sleep(minLatency)
		return &fakeupstream.Reply{Body: `{"id":"msg_dash01","type":"message","role":"assistant","model":"` + model + `","content":[{"type":"text","text":"Done."}],` +
			`"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1800,"cache_creation_input_tokens":2400,"cache_read_input_tokens":42000,"output_tokens":650}}`}
	}})
	t.Cleanup(good.Close)
	bad := httptest.NewServer(&fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 529, Body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}
	}})
	t.Cleanup(bad.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	text := fmt.Sprintf(`api_keys = [%q]
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

[[keys]]
name = "ci-bot"
key = %q
models = ["claude-sonnet-*"]
rpm = 30
daily_usd = 0.25
monthly_usd = 5.0
`, relayKey, adminKey, filepath.Join(dir, "relay.db"), good.URL, bad.URL, ciKey)
	url, a := startRelayFromText(t, path, text)
	return url, a
}

// startRelayFromText writes text as the config file at path and starts a
// real relay on it (on a free loopback port), stopped when the test ends.
func startRelayFromText(t *testing.T, path, text string) (string, *app.App) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
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

// adminGetRaw reads an admin API answer as text.
func adminGetRaw(t *testing.T, base, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+admin.Prefix+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
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

// fmtUSD is the page's fmtUSD: cents, four decimals under a cent, none
// from $100, with thousands separators.
func fmtUSD(micros int64) string {
	d := float64(micros) / 1e6
	if d > 0 && d < 0.01 {
		return fmt.Sprintf("$%.4f", d)
	}
	digits := 2
	if d >= 100 {
		digits = 0
	}
	s := strconv.FormatFloat(d, 'f', digits, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	if frac != "" {
		return "$" + fmtInt(n) + "." + frac
	}
	return "$" + fmtInt(n)
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
	// A passing toast would cover the page; a scrollbar would make the full
	// page capture cut its right edge off.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const t = document.querySelector("#toast"); if (t) t.hidden = true; document.documentElement.style.scrollbarWidth = "none"; return true; })()`)); err != nil {
		t.Fatalf("prepare the screenshot: %v", err)
	}
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

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // later steps build on this one
		}
	}

	// Known traffic: four conversations' first turns through the official
	// SDK, the last with the named key ci-bot.
	const turns = 4
	for i := range turns {
		key := relayKey
		if i == turns-1 {
			key = ciKey
		}
		client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(base), option.WithAPIKey(key), option.WithMaxRetries(0))
		_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
			MaxTokens: 256, Model: model,
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
		// A relay key is told apart (403), and is not counted as a guess.
		if err != nil || !strings.Contains(errText, "That is a relay key") {
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
		for _, secret := range []string{adminKey, relayKey, ciKey, "sk-ant-main-account", "sk-ant-flaky-account"} {
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
		if tot.CostUSD == nil || tot.CostMicros == 0 {
			t.Fatalf("the admin API knows no cost for today: %+v", tot)
		}
		tokens := tot.InputTokens + tot.OutputTokens + tot.CacheCreationTokens + tot.CacheReadTokens
		for sel, want := range map[string]string{
			"#ov-tokens .v": fmtInt(tokens), "#ov-requests-today .v": fmtInt(tot.Requests), "#ov-cost .v": fmtUSD(tot.CostMicros),
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
		byName := map[string]admin.Key{}
		for _, k := range keys.Keys {
			byName[k.Name] = k
		}
		if err := open(ctx, base, "keys"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"api_keys[0]", "ci-bot"} {
			k := byName[name]
			row := `tr[data-name="` + name + `"]`
			if got, err := text(ctx, row+" .key-requests"); err != nil || got != fmtInt(k.Today.Requests) {
				t.Errorf("%s requests %q (%v), the admin API says %d", name, got, err, k.Today.Requests)
			}
			if k.CostTodayMicros == nil {
				t.Fatalf("the admin API knows no cost for %s", name)
			}
			if got, err := text(ctx, row+" .key-cost"); err != nil || got != fmtUSD(*k.CostTodayMicros) {
				t.Errorf("%s cost %q (%v), the admin API says %s", name, got, err, fmtUSD(*k.CostTodayMicros))
			}
		}
		ci := byName["ci-bot"]
		if len(ci.Budgets) != 2 || ci.Budgets[0].Used <= 0 {
			t.Fatalf("ci-bot's budgets from the admin API: %+v", ci.Budgets)
		}
		want := fmtUSD(int64(ci.Budgets[0].Used*1e6+0.5)) + " of " + fmtUSD(int64(ci.Budgets[0].Limit*1e6))
		if got, err := text(ctx, `tr[data-name="ci-bot"] .budget-daily-usd .bar-head`); err != nil || !strings.Contains(got, want) {
			t.Errorf("ci-bot's daily budget bar says %q (%v), want %q", got, err, want)
		}
	})

	var newKey string
	step("create a key from the page, by keyboard", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Focus(chromedp.CSS(`#key-create summary`)),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(chromedp.ID("k-name")),
			chromedp.SendKeys(chromedp.ID("k-models"), "claude-sonnet-*, claude-haiku-*"),
			chromedp.SendKeys(chromedp.ID("k-rpm"), "60"),
			chromedp.SendKeys(chromedp.ID("k-concurrency"), "2"),
			chromedp.SendKeys(chromedp.ID("k-daily-usd"), "20"),
			chromedp.SendKeys(chromedp.ID("k-monthly-usd"), "300"),
			chromedp.SendKeys(chromedp.ID("k-daily-tokens"), "2000000"),
			chromedp.SendKeys(chromedp.ID("k-name"), "alice"))
		if err != nil {
			t.Fatalf("fill the form: %v", err)
		}
		shoot(t, ctx, shots, "dashboard-keys-form.png")
		err = chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("k-name"), kb.Enter), // Enter submits the form
			chromedp.WaitVisible(chromedp.ID("new-key")))
		if err != nil {
			t.Fatalf("create from the page: %v", err)
		}
		if newKey, err = chromedp.Run(ctx, chromedp.Value(chromedp.ID("new-key-value"))); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(newKey, "ccr-") {
			t.Fatalf("the page shows %q as the new key", newKey)
		}
		note, _ := text(ctx, "#new-key .once")
		if !strings.Contains(note, "This is shown once") {
			t.Fatalf("the new key's note says %q", note)
		}
		// The relay lists it, and never shows its value again.
		body := adminGetRaw(t, base, "keys")
		if strings.Contains(body, newKey) {
			t.Fatal("the admin API shows the new key's value")
		}
		var keys admin.KeysResponse
		if err := json.Unmarshal([]byte(body), &keys); err != nil {
			t.Fatal(err)
		}
		var alice *admin.Key
		for i := range keys.Keys {
			if keys.Keys[i].Name == "alice" {
				alice = &keys.Keys[i]
			}
		}
		if alice == nil || !alice.Enabled || alice.RPM != 60 || alice.Concurrency != 2 || len(alice.Models) != 2 || alice.Last4 != newKey[len(newKey)-4:] || len(alice.Budgets) != 3 {
			t.Fatalf("the admin API lists alice as %+v", alice)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-name="alice"] .badge.ready`))); err != nil {
			t.Fatalf("alice is not listed on the page: %v", err)
		}
		shoot(t, ctx, shots, "dashboard-keys-created.png")
		// Copy: the clipboard may be refused headless; either way the page says what happened.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("new-key-copy")), chromedp.WaitVisible(chromedp.CSS(`#new-key-status`))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#new-key-status").textContent.toLowerCase().includes("cop")`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
			st, _ := text(ctx, "#new-key-status")
			t.Fatalf("copy: %v; the page says %q", err, st)
		}
		// Done hides it, and the page holds it no more.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("new-key-done")), chromedp.WaitNotVisible(chromedp.ID("new-key"))); err != nil {
			t.Fatal(err)
		}
		src, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML + document.querySelector("#new-key-value").value`))
		if err != nil || strings.Contains(src, newKey) {
			t.Fatalf("the page still holds the key after Done (%v)", err)
		}
	})

	step("a create the relay refuses shows why, in the form", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`#key-create summary`)),
			chromedp.WaitVisible(chromedp.ID("k-name")),
			chromedp.SendKeys(chromedp.ID("k-name"), "alice"),
			chromedp.Click(chromedp.ID("key-submit")),
			chromedp.WaitVisible(chromedp.ID("key-form-error")))
		msg, _ := text(ctx, "#key-form-error")
		if err != nil || !strings.Contains(msg, "already exists") {
			t.Fatalf("duplicate name: %q %v", msg, err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#key-create summary`))); err != nil {
			t.Fatal(err)
		}
	})

	step("disable a key from the page", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`button[data-action="disable"][data-name="alice"]`)),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-name="alice"] .badge.disabled`)),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="enable"][data-name="alice"]`)))
		if err != nil {
			t.Fatalf("disable from the page: %v", err)
		}
		var keys admin.KeysResponse
		adminGet(t, base, "keys", &keys)
		for _, k := range keys.Keys {
			if k.Name == "alice" && k.Enabled {
				t.Fatal("the admin API still lists alice enabled")
			}
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
			if g.CostUSD == nil {
				t.Fatalf("the admin API knows no cost for %s", g.Name)
			}
			if got, err := text(ctx, row+" .cost"); err != nil || got != fmtUSD(g.CostMicros) {
				t.Errorf("%s cost %q (%v), want %s", g.Name, got, err, fmtUSD(g.CostMicros))
			}
		}
		if got, err := text(ctx, "#usage-table tfoot .cost"); err != nil || got != fmtUSD(rep.Total.CostMicros) {
			t.Errorf("usage total cost %q (%v), want %s", got, err, fmtUSD(rep.Total.CostMicros))
		}
		// Latency percentiles: every request took at least minLatency.
		for _, g := range append(rep.Groups, rep.Total) {
			row := `#usage-table tbody tr[data-name="` + g.Name + `"]`
			if g.Name == "" {
				row = "#usage-table tfoot tr"
			}
			if g.LatencyP50Ms < minLatency.Milliseconds() || g.LatencyP95Ms < g.LatencyP50Ms || g.LatencySample == 0 {
				t.Errorf("%q: the admin API's latency p50 %d ms, p95 %d ms over %d requests", g.Name, g.LatencyP50Ms, g.LatencyP95Ms, g.LatencySample)
			}
			if got, err := text(ctx, row+" .p50"); err != nil || got != fmtMs(g.LatencyP50Ms) {
				t.Errorf("%q p50 %q (%v), want %s", g.Name, got, err, fmtMs(g.LatencyP50Ms))
			}
			if got, err := text(ctx, row+" .p95"); err != nil || got != fmtMs(g.LatencyP95Ms) {
				t.Errorf("%q p95 %q (%v), want %s", g.Name, got, err, fmtMs(g.LatencyP95Ms))
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
		// Each session shows its relay key, model and last turn: the last
		// conversation came with ci-bot, the others with api_keys[0].
		byKey := map[string]int{}
		for _, s := range ss.Sessions {
			byKey[s.RelayKey]++
		}
		if byKey["ci-bot"] != 1 || byKey["api_keys[0]"] != turns-1 {
			t.Errorf("the admin API's sessions by relay key: %v", byKey)
		}
		for _, s := range ss.Sessions {
			wantKey := s.RelayKey
			if s.Model != model || s.LastTurn == nil {
				t.Errorf("the admin API's session %s: key %q model %q last turn %v", s.Key, s.RelayKey, s.Model, s.LastTurn)
			}
			row := `#sessions-table tbody tr[data-key="` + s.Key + `"]`
			if got, err := text(ctx, row+" .relay-key"); err != nil || got != wantKey {
				t.Errorf("session %s relay key %q (%v), want %s", s.Key, got, err, wantKey)
			}
			if got, err := text(ctx, row+" .model"); err != nil || got != model {
				t.Errorf("session %s model %q (%v), want %s", s.Key, got, err, model)
			}
			if got, err := text(ctx, row+" .last-turn"); err != nil || !strings.Contains(got, " ago · ") {
				t.Errorf("session %s last turn %q (%v), want \"… ago · hh:mm\"", s.Key, got, err)
			}
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
		// The page's width without a vertical scrollbar's: nothing may stick out past it.
		js := `(() => { const W = document.documentElement.clientWidth; let w = ""; for (const e of document.querySelectorAll("*")) { const r = e.getBoundingClientRect(); if (r.right > W + 1 && r.width > 0) w += e.tagName + "." + e.className + " " + Math.round(r.right) + "; "; } return (document.documentElement.scrollWidth > W ? "wide " : "ok ") + document.documentElement.scrollWidth + "/" + W + " " + w; })()`
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil || !strings.HasPrefix(wide, "ok ") {
			t.Errorf("the page is wider than a phone: %s %v", wide, err)
		}
		shoot(t, ctx, shots, "dashboard-accounts-phone.png")
		if err := open(ctx, base, "keys"); err != nil {
			t.Fatal(err)
		}
		if wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](js)); err != nil || !strings.HasPrefix(wide, "ok ") {
			t.Errorf("the keys page is wider than a phone: %s %v", wide, err)
		}
		shoot(t, ctx, shots, "dashboard-keys-phone.png")
	})

	step("dark", func(t *testing.T) {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatal(err)
		}
		if err := open(ctx, base, "keys"); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#key-create summary`)), chromedp.WaitVisible(chromedp.ID("k-name"))); err != nil {
			t.Fatal(err)
		}
		shoot(t, ctx, shots, "dashboard-keys-dark.png")
	})
}
