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

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/testutil"
)

// teamModel is a [models] alias of model: asked as teamModel, served as model.
const teamModel = "team-default"

// The usage page groups by the model served as well as the model asked: two
// requests asked as an alias and one as its target are two rows by model
// and one by served model, with the cost of all three (the served model's
// price) on it.
func TestUsageByServedModelInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	up := httptest.NewServer(&fakeupstream.Anthropic{Keys: []string{"sk-ant-main-account"}, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Body: `{"id":"msg_served","type":"message","role":"assistant","model":"` + model + `","content":[{"type":"text","text":"Done."}],` +
			`"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1800,"output_tokens":650}}`}
	}})
	t.Cleanup(up.Close)
	dir := t.TempDir()
	base, _ := startRelayFromText(t, filepath.Join(dir, "config.toml"), fmt.Sprintf(`api_keys = [%q]
admin_keys = [%q]
[server]
host = "127.0.0.1"
database_path = %q
[[accounts]]
type = "claude-api"
id = "main"
api_key = "sk-ant-main-account"
api_url = %q
[models]
%q = %q
`, relayKey, adminKey, filepath.Join(dir, "relay.db"), up.URL, teamModel, model))
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(base), option.WithAPIKey(relayKey), option.WithMaxRetries(0))
	for _, m := range []string{teamModel, teamModel, model} {
		if _, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{MaxTokens: 256, Model: anthropic.Model(m),
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))}}); err != nil {
			t.Fatal(err)
		}
	}
	var served admin.UsageReport
	testutil.Eventually(t, 30*time.Second, "the three requests recorded", func() bool {
		adminGet(t, base, "usage?since=24h&by=served_model", &served)
		return served.Total.Requests == 3
	})
	if len(served.Groups) != 1 || served.Groups[0].Name != model || served.Groups[0].CostUSD == nil {
		t.Fatalf("the admin API by served model: %+v", served.Groups)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), adminKey), chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="overview"]`))); err != nil {
		t.Fatal(err)
	}
	if err := open(ctx, base, "usage"); err != nil {
		t.Fatal(err)
	}
	row := func(name string) string { return `#usage-table tbody tr[data-name="` + name + `"]` }
	// By model (the page's default): the alias and its target apart.
	for name, want := range map[string]string{teamModel: "2", model: "1"} {
		if got, err := text(ctx, row(name)+" .requests"); err != nil || got != want {
			t.Errorf("by model, %s: %q requests (%v), want %s", name, got, err, want)
		}
	}
	// The page offers the served model; choosing it regroups.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector('#usage-controls select[name="by"]');
		s.value = "served_model"; s.dispatchEvent(new Event("change", { bubbles: true })); return s.value === "served_model"; })()`)); err != nil {
		t.Fatalf("choose served model: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitNotPresent(chromedp.CSS(row(teamModel)))); err != nil {
		t.Fatalf("the page never regrouped by served model: %v", err)
	}
	if got, err := text(ctx, row(model)+" .requests"); err != nil || got != "3" {
		t.Errorf("by served model, %s: %q requests (%v), want 3", model, got, err)
	}
	if got, err := text(ctx, row(model)+" .cost"); err != nil || got != fmtUSD(served.Groups[0].CostMicros) {
		t.Errorf("by served model, cost %q (%v), want %s", got, err, fmtUSD(served.Groups[0].CostMicros))
	}
	if got, err := text(ctx, "#usage-by-head"); err != nil || !strings.EqualFold(got, "served model") {
		t.Errorf("column head %q (%v), want Served model", got, err)
	}

	// The Requests page shows the model served where it differs.
	if err := open(ctx, base, "requests"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(`#requests-table tbody tr[data-id] .served`))); err != nil {
		t.Fatalf("no request shows its model served: %v", err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#requests-table tbody tr[data-id] .served")].filter((e) => e.textContent === "→ `+model+`").length`))
	if err != nil || n != 2 {
		t.Errorf("%d rows show the model served (%v), want the 2 asked as %s", n, err, teamModel)
	}
	if err := chromedp.Do(wctx, chromedp.Click(chromedp.CSS(`#requests-table tbody tr[data-id] .served`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail dl.facts`))); err != nil {
		t.Fatal(err)
	}
	if detail, _ := text(ctx, "#req-detail dl.facts"); !strings.Contains(detail, "Model\n"+teamModel+"\nModel served\n"+model+" on claude") {
		t.Errorf("detail:\n%s", detail)
	}
}
