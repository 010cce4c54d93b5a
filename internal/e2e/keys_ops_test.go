package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/ccrelay/ccrelay/internal/alerts"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/pricing"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// A key's daily budget alerts once at 80% and once at 100% (json webhook):
// each request of the fake upstream costs 154 micro-dollars (12 in, 7 out,
// 3 cache write, 5 cache read with the embedded prices) against a budget of
// 350, so the 1st request is 44%, the 2nd 88% (alert 80%), the 3rd 132%
// (alert 100%), and the 4th is refused.
func TestKeyBudgetAlerts(t *testing.T) {
	posted := make(chan map[string]string, 10)
	hook := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		posted <- m
	}))
	per, _ := pricing.Embedded().Cost("claude-sonnet-4-5", provider.Usage{InputTokens: 12, OutputTokens: 7, CacheCreationTokens: 3, CacheReadTokens: 5})
	if per != 154 {
		t.Fatalf("a request costs %d; the test's budget assumes 154", per)
	}
	up := upstream(t, &fakeupstream.Anthropic{})
	r := startRelay(t, claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)+`
[[keys]]
name = "alice"
key = "alice-key-0123456789"
daily_usd = 0.00035

[[alerts]]
url = "`+hook.URL+`/hook"
format = "json"
events = ["key_budget"]
`)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := keyClient(r, "alice-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if _, err := keyClient(r, "alice-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); statusOf(t, err) != 429 {
		t.Fatalf("past the budget: %v", err)
	}
	// Delivery is ordered per webhook: a marker sent now arrives after any
	// alert the requests queued, so everything before it is all there is.
	r.App.Alerts().Notify(alerts.Event{Kind: config.EventKeyBudget, Subject: "marker", Message: "marker"})
	var got []map[string]string
	for timeout := time.After(30 * time.Second); ; {
		var m map[string]string
		select {
		case m = <-posted:
		case <-timeout:
			t.Fatalf("the marker alert never arrived; got %v", got)
		}
		if m["subject"] == "marker" {
			break
		}
		got = append(got, m)
	}
	if len(got) != 2 || got[0]["event"] != "key_budget" || got[0]["subject"] != "alice daily 80%" ||
		got[1]["event"] != "key_budget" || got[1]["subject"] != "alice daily 100%" {
		t.Fatalf("alerts: %v; want alice daily 80%%, then alice daily 100%%, once each", got)
	}
	if got[0]["message"] != "ccrelay: relay key alice has used 88% of its daily budget (past 80%)." {
		t.Fatalf("message %q", got[0]["message"])
	}
}

// A request queued for a key's concurrency slot shows in the queue depth
// gauge while it waits, and in the wait histogram once served.
func TestKeyQueueMetrics(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var calls atomic.Int32
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
		fake.ServeHTTP(w, req)
	}))
	r := startRelay(t, `admin_keys = ["`+adminKey+`"]`+"\n"+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)+`
[[keys]]
name = "c"
key = "conc-key-0123456789"
concurrency = 1
queue_seconds = 60

[[keys]]
name = "free"
key = "free-key-0123456789"
`)
	fams := scrape(t, r.URL, adminKey)
	if d := value(t, fams, "ccrelay_key_queue_depth", map[string]string{"key": "c"}); d != 0 {
		t.Fatalf("depth before any request: %v", d)
	}
	if f := fams["ccrelay_key_queue_depth"]; len(f.GetMetric()) != 1 {
		t.Fatalf("queue depth series: %v; want one, for the key with a concurrency limit", f.GetMetric())
	}
	ctx := context.Background()
	errs := make(chan error, 2)
	send := func() {
		_, err := keyClient(r, "conc-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
		errs <- err
	}
	go send()
	<-entered
	go send()
	waitFor(t, 10*time.Second, "the second request queued", func() bool {
		return value(t, scrape(t, r.URL, adminKey), "ccrelay_key_queue_depth", map[string]string{"key": "c"}) == 1
	})
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	fams = scrape(t, r.URL, adminKey)
	if d := value(t, fams, "ccrelay_key_queue_depth", map[string]string{"key": "c"}); d != 0 {
		t.Fatalf("depth after: %v", d)
	}
	if n := value(t, fams, "ccrelay_key_queue_wait_seconds", map[string]string{"key": "c"}); n != 1 {
		t.Fatalf("waits observed: %v; want 1 (only the queued request waited)", n)
	}
	h := fams["ccrelay_key_queue_wait_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() <= 0 {
		t.Fatalf("wait sum %v; want the time the request waited", h.GetSampleSum())
	}
}

// A request that writes both 5-minute and 1-hour cache entries and reads
// the cache is charged each part at its own price, streamed or not
// (anthropic-sdk-go against a fake that sends Anthropic's cache_creation
// split).
func TestCostOfOneHourCacheWrites(t *testing.T) {
	u := fakeupstream.Usage{Input: 100, Output: 50, CacheWrite5m: 2000, CacheWrite1h: 4000, CacheRead: 10000}
	up := upstream(t, &fakeupstream.Anthropic{Usage: &u})
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100))
	p, ok := pricing.Embedded().Lookup("claude-sonnet-4-5")
	if !ok || p.CacheWrite1h == p.CacheWrite5m {
		t.Fatalf("price table: %+v", p)
	}
	// 100*3 + 50*15 + 2000*3.75 + 4000*6 + 10000*0.3
	want := int64(float64(u.Input)*p.Input + float64(u.Output)*p.Output + float64(u.CacheWrite5m)*p.CacheWrite5m +
		float64(u.CacheWrite1h)*p.CacheWrite1h + float64(u.CacheRead)*p.CacheRead + 0.5)
	if want != 300+750+7500+24000+3000 {
		t.Fatalf("the table's prices changed: %d", want)
	}
	c := r.anthropicClient()
	msg, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Usage.CacheCreation.Ephemeral1hInputTokens != 4000 || msg.Usage.CacheCreationInputTokens != 6000 {
		t.Fatalf("the SDK read usage %+v", msg.Usage)
	}
	s := c.Messages.NewStreaming(context.Background(), newParams("claude-sonnet-4-5"))
	var acc anthropic.Message
	for s.Next() {
		_ = acc.Accumulate(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	rows := waitUsage(t, r, 2)
	for _, rec := range rows {
		if !rec.CostKnown || rec.CostMicros != want || rec.CacheCreationTokens != 6000 {
			t.Fatalf("recorded stream=%v cost %d (known %v), cache writes %d; want %d and 6000", rec.Stream, rec.CostMicros, rec.CostKnown, rec.CacheCreationTokens, want)
		}
	}
}

// waitUsage waits until n usage records are written and returns them.
func waitUsage(t *testing.T, r *relayUT, n int) []usage.Record {
	t.Helper()
	var rows []usage.Record
	waitFor(t, 10*time.Second, "usage records written", func() bool {
		var err error
		rows, err = r.App.DB.UsageRows(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(rows) >= n
	})
	return rows
}
