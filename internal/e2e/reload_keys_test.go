package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/pricing"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// Keys, limits and prices change with the config file, without a restart:
// a key is added (and an api_keys entry), a key's model list changes, a key
// is disabled and a price changes, while a request admitted before the
// reload is in flight. That request completes; the key's concurrency slot
// it holds carries over, so a request of the same key queued after the
// reload is served when it ends; the key's spending carries over too.
func TestReloadKeysLimitsAndPrices(t *testing.T) {
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
	account := claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)
	before := `api_keys = ["` + relayKey + `"]
` + account + `
[[keys]]
name = "a"
key = "a-key-0123456789"
models = ["claude-sonnet-*"]
concurrency = 1
queue_seconds = 60

[[keys]]
name = "c"
key = "c-key-0123456789"
`
	after := `api_keys = ["` + relayKey + `", "second-api-key-0123456789"]
` + account + `
[[keys]]
name = "a"
key = "a-key-0123456789"
models = ["claude-haiku-*"]
concurrency = 1
queue_seconds = 60

[[keys]]
name = "c"
key = "c-key-0123456789"
enabled = false

[[keys]]
name = "b"
key = "b-key-0123456789"

[prices."claude-sonnet-4-5"]
output = 1000
`
	r := startFileRelay(t, before)
	ctx := context.Background()
	if _, err := keyClient(r.relayUT, "b-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); statusOf(t, err) != 401 {
		t.Fatalf("b before it exists: %v", err)
	}
	calls.Store(0) // the refused request never reached the upstream; count from here

	// Admitted before the reload, still in flight after it.
	inFlight := make(chan error, 1)
	go func() {
		_, err := keyClient(r.relayUT, "a-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
		inFlight <- err
	}()
	<-entered
	spentBefore := keyStatus(t, r.relayUT, "a").Spent[policy.Day]

	r.rewrite(after)
	if st := r.App.Reloader().Status(); len(st.NeedsRestart) != 0 {
		t.Fatalf("keys and prices need a restart: %v", st.NeedsRestart)
	}
	// The in-flight request still holds a's only slot: a request of a now
	// (a model of its new list) waits in the queue.
	queued := make(chan error, 1)
	go func() {
		_, err := keyClient(r.relayUT, "a-key-0123456789").Messages.New(ctx, newParams("claude-haiku-4-5"))
		queued <- err
	}()
	waitFor(t, 10*time.Second, "a request queued behind the in-flight one", func() bool { return keyStatus(t, r.relayUT, "a").Queued == 1 })
	// The old model is refused now, before the queue.
	_, err := keyClient(r.relayUT, "a-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
	if code, body := statusAndBody(t, err); code != 403 || !strings.Contains(body, `model \"claude-sonnet-4-5\" is not allowed for relay key \"a\"`) {
		t.Fatalf("a's old model after the reload: %d %s", code, body)
	}
	close(release)
	if err := <-inFlight; err != nil {
		t.Fatalf("the request in flight across the reload: %v", err)
	}
	if err := <-queued; err != nil {
		t.Fatalf("the request queued after the reload: %v", err)
	}
	if st := keyStatus(t, r.relayUT, "a"); st.InFlight != 0 || st.Queued != 0 || st.Spent[policy.Day] <= spentBefore {
		t.Fatalf("a after both ended: %+v (spent before %d)", st, spentBefore)
	}

	// The disabled key is refused; the added keys serve.
	if _, err := keyClient(r.relayUT, "c-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); statusOf(t, err) != 403 {
		t.Fatalf("disabled c: %v", err)
	}
	if _, err := keyClient(r.relayUT, "second-api-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); err != nil {
		t.Fatalf("the added api_keys entry: %v", err)
	}
	if _, err := keyClient(r.relayUT, "b-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5")); err != nil {
		t.Fatalf("the added key b: %v", err)
	}
	// b's request was priced with the new price.
	want, _ := pricing.New(map[string]config.PriceConfig{"claude-sonnet-4-5": {Output: ptrF(1000)}}).
		Cost("claude-sonnet-4-5", provider.Usage{InputTokens: 12, OutputTokens: 7, CacheCreationTokens: 3, CacheReadTokens: 5})
	if old, _ := pricing.Embedded().Cost("claude-sonnet-4-5", provider.Usage{InputTokens: 12, OutputTokens: 7, CacheCreationTokens: 3, CacheReadTokens: 5}); old == want {
		t.Fatal("the test's price change changes nothing")
	}
	if got := keyStatus(t, r.relayUT, "b").Spent[policy.Day]; got != want {
		t.Fatalf("b spent %d micro-dollars; want %d at the reloaded price", got, want)
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("the upstream got %d requests; want 4 (refused ones never reach it)", n)
	}
}

func ptrF(f float64) *float64 { return &f }

func keyStatus(t *testing.T, r *relayUT, name string) policy.KeyStatus {
	t.Helper()
	for _, s := range r.App.Policy.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no key %q", name)
	return policy.KeyStatus{}
}

func statusAndBody(t *testing.T, err error) (int, string) {
	t.Helper()
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.StatusCode, ae.RawJSON()
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	code, _ := statusAndBody(t, err)
	return code
}

// A key's groups are matched against the accounts in force: after a reload
// that changes a key's groups, and after one that changes accounts'
// groups, new conversations go where the new groups say.
func TestReloadFollowsGroups(t *testing.T) {
	ua := upstream(t, &fakeupstream.Anthropic{Text: "a"})
	ub := upstream(t, &fakeupstream.Anthropic{Text: "b"})
	conf := func(groupsA, groupsB, keyGroups string) string {
		return claudeAPIAccount("acct-a", ua.URL, "sk-ant-a-key-1", 200) + "groups = " + groupsA + "\n" +
			claudeAPIAccount("acct-b", ub.URL, "sk-ant-b-key-1", 50) + "groups = " + groupsB + "\n" + `
[[keys]]
name = "g"
key = "group-key-0123456789"
groups = ` + keyGroups + "\n"
	}
	r := startFileRelay(t, conf(`["team-a"]`, `["team-b"]`, `["team-b"]`))
	n := 0
	servedBy := func() string {
		t.Helper()
		n++ // a new conversation each time: an old one stays on its account
		c := keyClient(r.relayUT, "group-key-0123456789")
		msg, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5"),
			option.WithHeader("X-Claude-Code-Session-Id", fmt.Sprintf("conv-%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Content[0].Text
	}
	if who := servedBy(); who != "b" {
		t.Fatalf("key in team-b served by %q", who)
	}
	r.rewrite(conf(`["team-a"]`, `["team-b"]`, `["team-a"]`)) // the key's groups change
	if who := servedBy(); who != "a" {
		t.Fatalf("key moved to team-a served by %q", who)
	}
	r.rewrite(conf(`["team-c"]`, `["team-a", "team-b"]`, `["team-a"]`)) // the accounts' groups change
	if who := servedBy(); who != "b" {
		t.Fatalf("after team-a moved to acct-b: served by %q", who)
	}
}

// TestReloadKeysUnderLoad rewrites a named key's limits 20 times (its
// concurrency between 2 and 4, its model list, rpm and budget, another key
// added and removed) while 6 clients stream with it, so requests are
// always in flight and queued across the swaps: every stream succeeds, and
// afterwards no slot or waiter is left over.
func TestReloadKeysUnderLoad(t *testing.T) {
	a := upstream(t, &fakeupstream.Anthropic{Text: "abcdefghij", StreamEvents: 10, EventGap: 2 * time.Millisecond})
	head := claudeAPIAccount("a", a.URL, "sk-ant-a-key-1", 100)
	key := func(conc int, extra string) string {
		return fmt.Sprintf("\n[[keys]]\nname = \"load\"\nkey = \"load-key-0123456789\"\nconcurrency = %d\nqueue_seconds = 60\n%s", conc, extra)
	}
	variants := []string{
		head + key(2, ""),
		head + key(4, "models = [\"claude-*\"]\nrpm = 100000\n"),
		head + key(2, "daily_usd = 1000\n") + "\n[[keys]]\nname = \"other\"\nkey = \"other-key-0123456789\"\n",
		head + key(3, "weekly_usd = 1000\ndaily_tokens = 1000000000\n"),
	}
	r := startFileRelay(t, variants[0])

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := keyClient(r.relayUT, "load-key-0123456789")
			for ctx.Err() == nil {
				s := c.Messages.NewStreaming(context.Background(), newParams("claude-sonnet-4-5"))
				var msg anthropic.Message
				for s.Next() {
					_ = msg.Accumulate(s.Current())
				}
				if err := s.Err(); err != nil || len(msg.Content) == 0 || msg.Content[0].Text != "abcdefghij" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err=%v content=%+v", err, msg.Content))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		before := ok.Load()
		r.rewrite(variants[i%len(variants)])
		waitFor(t, 10*time.Second, "streams after a reload", func() bool { return ok.Load() >= before+3 })
	}
	stop()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d streams failed across 20 reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if st := keyStatus(t, r.relayUT, "load"); st.InFlight != 0 || st.Queued != 0 {
		t.Fatalf("after the load: %d in flight, %d queued; want 0 and 0", st.InFlight, st.Queued)
	}
	t.Logf("%d streams, 0 failed, across 20 key reloads", ok.Load())
}
