package e2e

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/policy"
)

// clusterKeys are two named keys for the cluster tests: alice has a daily
// budget that the fake upstream's usage (154 micro-dollars a request with
// claude-sonnet-4-5, see TestNamedKeysEndToEnd) crosses on the 2nd request;
// bob may send 2 requests a minute.
const clusterKeys = `
[[keys]]
name = "alice"
key = "alice-key-0123456789"
daily_usd = 0.0002

[[keys]]
name = "bob"
key = "bob-key-0123456789"
rpm = 2
`

// clusterKeyRelays starts two relays on one Redis in front of one fake
// Anthropic account.
func clusterKeyRelays(t *testing.T) (rd *clustertest.Redis, fake *fakeupstream.Anthropic, a, b *relayUT) {
	t.Helper()
	rd = clustertest.Start(t)
	fake = &fakeupstream.Anthropic{Keys: []string{"sk-ant-account-1"}}
	up := upstream(t, fake)
	rs := startRelays(t, 2, clusterTable(rd, 15)+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)+clusterKeys)
	return rd, fake, rs[0], rs[1]
}

// sendAs sends one Messages request with the relay key; nil or the API error.
func sendAs(t *testing.T, r *relayUT, key string) *anthropic.Error {
	t.Helper()
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
	_, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5"))
	if err == nil {
		return nil
	}
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae
}

func spentToday(t *testing.T, r *relayUT, name string) int64 {
	return keyStatus(t, r, name).Spent[policy.Day]
}

func recentElsewhere(r *relayUT, name string) int {
	recent, _ := r.App.Policy.ClusterLoad(r.App.Policy.KeyByName(name))
	return recent
}

// mustRefuse checks a 429 in Anthropic's shape with a retry-after and the
// words of the rule.
func mustRefuse(t *testing.T, ae *anthropic.Error, words string) {
	t.Helper()
	if ae == nil {
		t.Fatalf("served; want a 429 (%s)", words)
	}
	body := ae.RawJSON()
	if ae.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "rate_limit_error") || !strings.Contains(body, words) {
		t.Fatalf("want 429 rate_limit_error with %q: %d %s", words, ae.StatusCode, body)
	}
	if s, err := strconv.Atoi(ae.Response.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Fatalf("retry-after %q", ae.Response.Header.Get("Retry-After"))
	}
}

// A daily budget holds across two relays on one Redis: what alice spends
// through A counts on B and the other way round, and the request after the
// crossing is refused on both; nothing more reaches the upstream.
func TestClusterKeyBudgetShared(t *testing.T) {
	rd, fake, a, b := clusterKeyRelays(t)
	if ae := sendAs(t, a, "alice-key-0123456789"); ae != nil {
		t.Fatalf("1st request through A: %v", ae)
	}
	waitFor(t, 10*time.Second, "B learns A's spending", func() bool { return spentToday(t, b, "alice") == 154 })
	if ae := sendAs(t, b, "alice-key-0123456789"); ae != nil {
		t.Fatalf("2nd request through B (154 of 200 spent): %v", ae)
	}
	waitFor(t, 10*time.Second, "A learns B's spending", func() bool { return spentToday(t, a, "alice") == 308 })
	mustRefuse(t, sendAs(t, a, "alice-key-0123456789"), "daily budget of $0.0002 ($0.000308 used)")
	mustRefuse(t, sendAs(t, b, "alice-key-0123456789"), "daily budget of $0.0002")
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("upstream got %d requests, want 2", n)
	}
	// Redis and the logs name the key by its ID only.
	dump := rd.Dump(t)
	if !strings.Contains(dump, "key:"+a.App.Policy.KeyByName("alice").ID+":daily:") {
		t.Fatalf("no daily counter named by the key's ID:\n%s", dump)
	}
	for _, where := range []string{dump, a.Logs.String(), b.Logs.String()} {
		if strings.Contains(where, "alice-key-0123456789") {
			t.Fatalf("the relay key leaked:\n%s", where)
		}
	}
}

// rpm holds across relays: two requests through A, and the third through B
// is refused with a retry-after.
func TestClusterKeyRPMShared(t *testing.T) {
	_, fake, a, b := clusterKeyRelays(t)
	for i := 0; i < 2; i++ {
		if ae := sendAs(t, a, "bob-key-0123456789"); ae != nil {
			t.Fatalf("request %d through A: %v", i+1, ae)
		}
	}
	waitFor(t, 10*time.Second, "B learns A's requests", func() bool { return recentElsewhere(b, "bob") == 2 })
	mustRefuse(t, sendAs(t, b, "bob-key-0123456789"), "over its limit of 2 requests per minute")
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("upstream got %d requests, want 2", n)
	}
}

// Redis stopped: each relay still enforces the limits on its own (the
// other's requests no longer count), /health and one log line say the key
// limits are local-only; spending through A during the outage reaches B once Redis is
// back (restarted empty), and B refuses the spent key.
func TestClusterKeyLimitsLocalWhenRedisDown(t *testing.T) {
	rd, _, a, b := clusterKeyRelays(t)
	for i := 0; i < 2; i++ {
		if ae := sendAs(t, a, "bob-key-0123456789"); ae != nil {
			t.Fatalf("bob through A: %v", ae)
		}
	}
	waitFor(t, 10*time.Second, "B learns A's requests", func() bool { return recentElsewhere(b, "bob") == 2 })

	rd.Stop()
	for _, r := range []*relayUT{a, b} {
		waitFor(t, 10*time.Second, "the outage in /health", func() bool {
			h := clusterHealth(t, r)
			return strings.HasPrefix(h, "degraded: ") && strings.Contains(h, "relay key limits are local-only")
		})
	}
	waitFor(t, 10*time.Second, "B forgets A's requests", func() bool { return recentElsewhere(b, "bob") == 0 })
	// Each relay alone: A's bucket is full; B's is its own.
	mustRefuse(t, sendAs(t, a, "bob-key-0123456789"), "over its limit of 2 requests per minute")
	for i := 0; i < 2; i++ {
		if ae := sendAs(t, b, "bob-key-0123456789"); ae != nil {
			t.Fatalf("bob through B during the outage, %d: %v", i+1, ae)
		}
	}
	mustRefuse(t, sendAs(t, b, "bob-key-0123456789"), "over its limit of 2 requests per minute")
	// A's budget, alone.
	for i := 0; i < 2; i++ {
		if ae := sendAs(t, a, "alice-key-0123456789"); ae != nil {
			t.Fatalf("alice through A during the outage, %d: %v", i+1, ae)
		}
	}
	mustRefuse(t, sendAs(t, a, "alice-key-0123456789"), "daily budget of $0.0002")
	if got := spentToday(t, b, "alice"); got != 0 {
		t.Fatalf("B learnt %d during the outage", got)
	}

	rd.Restart()
	for _, r := range []*relayUT{a, b} {
		waitFor(t, 10*time.Second, "the relay recovers", func() bool { return clusterHealth(t, r) == "ok" })
	}
	waitFor(t, 10*time.Second, "A's outage spending reaches B", func() bool { return spentToday(t, b, "alice") == 308 })
	mustRefuse(t, sendAs(t, b, "alice-key-0123456789"), "daily budget of $0.0002")
	// One line when Redis went, naming the key limits, and one when it came back.
	for i, r := range []*relayUT{a, b} {
		logs := r.Logs.String()
		down, back := strings.Count(logs, "relay key limits are local-only"), strings.Count(logs, "cluster redis reachable again")
		if down != 1 || back != 1 {
			t.Fatalf("relay %d logged the outage %d times and the return %d times, want 1 and 1:\n%s", i, down, back, logs)
		}
	}
}

// Concurrency holds across relays: while carol's only slot is taken by a
// request through A (held by the upstream), a request through B waits in
// B's queue and sends nothing upstream; once A's request ends, B's is served.
func TestClusterKeyConcurrencyShared(t *testing.T) {
	rd := clustertest.Start(t)
	hold := make(chan struct{})
	var release sync.Once
	open := func() { release.Do(func() { close(hold) }) }
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant-account-1"}, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		<-hold
		return nil
	}}
	up := upstream(t, fake)
	rs := startRelays(t, 2, clusterTable(rd, 15)+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)+`
[[keys]]
name = "carol"
key = "carol-key-0123456789"
concurrency = 1
`)
	t.Cleanup(open) // runs first: a failed test must not leave the upstream holding requests
	a, b := rs[0], rs[1]
	results := make(chan *anthropic.Error, 2)
	go func() { results <- sendAs(t, a, "carol-key-0123456789") }()
	waitFor(t, 10*time.Second, "A's request reaches the upstream", func() bool { return len(fake.Requests()) == 1 })
	waitFor(t, 10*time.Second, "B learns A's request in flight", func() bool {
		_, f := b.App.Policy.ClusterLoad(b.App.Policy.KeyByName("carol"))
		return f == 1
	})
	go func() { results <- sendAs(t, b, "carol-key-0123456789") }()
	waitFor(t, 10*time.Second, "B's request queues", func() bool { return keyStatus(t, b, "carol").Queued == 1 })
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("B's queued request reached the upstream (%d requests)", n)
	}
	open()
	for i := 0; i < 2; i++ {
		if ae := <-results; ae != nil {
			t.Fatalf("a request failed: %v", ae)
		}
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("upstream got %d requests, want 2", n)
	}
}
