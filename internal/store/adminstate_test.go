package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

func TestAccountDisabledSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	ctx := context.Background()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id string
		d  bool
	}{{"a", true}, {"b", true}, {"b", false}} {
		if err := db.SetAccountDisabled(ctx, c.id, c.d); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.DisabledAccounts(ctx)
	if err != nil || len(got) != 1 || !got["a"] {
		t.Fatalf("disabled %v, %v; want only a", got, err)
	}
}

func TestUsageSeries(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "relay.db")
	seedUsage(t, path, now)
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pts, err := db.UsageSeries(context.Background(), now.Add(-24*time.Hour), time.Time{}, time.Hour, GroupAccount)
	if err != nil {
		t.Fatal(err)
	}
	var reqs, errs, in int64
	byAcct := map[string]int64{}
	for i, p := range pts {
		if p.Start.UnixMilli()%time.Hour.Milliseconds() != 0 {
			t.Fatalf("bucket %v not aligned to the hour", p.Start)
		}
		if i > 0 && p.Start.Before(pts[i-1].Start) {
			t.Fatal("points out of order")
		}
		reqs, errs, in = reqs+p.Requests, errs+p.Errors, in+p.InputTokens
		byAcct[p.Group] += p.Requests
	}
	// seedUsage: a has 100 + 2 in the last day, b has 3; the 2-day-old row is out.
	if reqs != 105 || errs != 2 || in != 1300 || byAcct["a"] != 102 || byAcct["b"] != 3 {
		t.Fatalf("series sums: requests %d errors %d input %d by account %v", reqs, errs, in, byAcct)
	}
	if _, err := db.UsageSeries(context.Background(), now, time.Time{}, time.Hour, "bogus"); err == nil {
		t.Fatal("unknown grouping accepted")
	}
}

// seedUsage writes a known set of rows: for account "a", 100 successful
// requests with latencies 1..100 ms (ttfb = latency/2) plus 2 errors with a
// huge latency; for account "b", 3 successful requests; one old row for "a"
// two days back.
func seedUsage(t *testing.T, path string, now time.Time) {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var recs []usage.Record
	for i := 1; i <= 100; i++ {
		recs = append(recs, usage.Record{
			Time: now.Add(-time.Duration(i) * time.Minute), KeyHash: "k1", AccountID: "a", Platform: "claude", Model: "claude-x",
			Usage:  provider.Usage{InputTokens: 10, OutputTokens: 2, CacheCreationTokens: 1, CacheReadTokens: 5},
			Status: 200, Latency: time.Duration(i) * time.Millisecond, TTFB: time.Duration(i/2) * time.Millisecond, Stream: true, Attempts: 1,
		})
	}
	for _, st := range []int{429, 0} {
		recs = append(recs, usage.Record{Time: now.Add(-time.Minute), KeyHash: "k2", AccountID: "a", Platform: "claude", Model: "claude-x",
			Status: st, Latency: time.Hour, Attempts: 3, Error: "boom"})
	}
	for i := 1; i <= 3; i++ {
		recs = append(recs, usage.Record{Time: now.Add(-time.Hour), KeyHash: "k1", AccountID: "b", Platform: "openai", Model: "gpt-x",
			Usage: provider.Usage{InputTokens: 100, OutputTokens: 50}, Status: 200, Latency: time.Duration(i) * time.Second, Attempts: 1})
	}
	recs = append(recs, usage.Record{Time: now.Add(-48 * time.Hour), KeyHash: "k1", AccountID: "a", Model: "claude-x", Status: 200, Latency: time.Millisecond,
		Usage: provider.Usage{InputTokens: 1000000}})
	if err := db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}
