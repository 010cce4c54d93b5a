package e2e

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

func keyClient(r *relayUT, key string) *anthropic.Client {
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
	return &c
}

// A key with groups uses only accounts of its groups, even when another
// account has a higher priority.
func TestKeyGroupRouting(t *testing.T) {
	fa := &fakeupstream.Anthropic{}
	fb := &fakeupstream.Anthropic{}
	ua, ub := upstream(t, fa), upstream(t, fb)
	r := startRelay(t, claudeAPIAccount("acct-a", ua.URL, "ka", 50)+"groups = [\"team-a\"]\n"+
		claudeAPIAccount("acct-b", ub.URL, "kb", 200)+"groups = [\"team-b\"]\n"+`
[[keys]]
name = "a"
key = "team-a-key-0123456789"
groups = ["team-a"]

[[keys]]
name = "any"
key = "any-key-0123456789"
`)
	for i := 0; i < 3; i++ {
		if _, err := keyClient(r, "team-a-key-0123456789").Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
			t.Fatal(err)
		}
	}
	// Another conversation (the first is sticky to acct-a): the highest priority serves it.
	other := newParams("claude-sonnet-4-5")
	other.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("another conversation"))}
	if _, err := keyClient(r, "any-key-0123456789").Messages.New(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if a, b := len(fa.Requests()), len(fb.Requests()); a != 3 || b != 1 {
		t.Fatalf("team-a account got %d, team-b account %d; want 3 and 1", a, b)
	}
}

// Concurrency: with one request in flight, the next waits in the queue and
// is served when the first ends; one that waits past queue_seconds gets 429.
func TestKeyConcurrencyQueue(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int32
	entered := make(chan struct{}, 4)
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if arrived.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
		fake.ServeHTTP(w, req)
	}))
	r := startRelay(t, claudeAPIAccount("acct-1", up.URL, "k", 100)+`
[[keys]]
name = "c"
key = "conc-key-0123456789"
concurrency = 1
queue_seconds = 1
`)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := keyClient(r, "conc-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
		first <- err
	}()
	<-entered
	// Past queue_seconds while the first holds the slot: 429.
	_, err := keyClient(r, "conc-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 429 {
		t.Fatalf("past queue_seconds: %v", err)
	}
	// The next one waits in the queue (seen in the policy's counters) and is
	// served once the first ends.
	second := make(chan error, 1)
	go func() {
		_, err := keyClient(r, "conc-key-0123456789").Messages.New(ctx, newParams("claude-sonnet-4-5"))
		second <- err
	}()
	waitFor(t, 10*time.Second, "the second request to queue", func() bool { return r.App.Policy.Status()[0].Queued > 0 })
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the queued request: %v", err)
	}
}
