package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

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

func TestUsageSummary(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "relay.db")
	seedUsage(t, path, now)
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	since := now.Add(-24 * time.Hour)

	tests := []struct {
		name  string
		since time.Time
		group string
		want  []UsageGroup
	}{
		{
			name: "total", since: since, group: GroupNone,
			want: []UsageGroup{{Group: "", Requests: 105, Errors: 2, InputTokens: 1300, OutputTokens: 350, CacheCreationTokens: 100, CacheReadTokens: 500,
				// 103 successful: 1..100 ms and 1000, 2000, 3000 ms; ranks ceil(.5*103)=52, ceil(.95*103)=98.
				// TTFB: four zeros, then 1,1,2,2,...: rank 52 is 24, rank 98 is 47.
				LatencyP50Ms: 52, LatencyP95Ms: 98, TTFBP50Ms: 24, TTFBP95Ms: 47}},
		},
		{
			name: "by account", since: since, group: GroupAccount,
			want: []UsageGroup{
				{Group: "a", Requests: 102, Errors: 2, InputTokens: 1000, OutputTokens: 200, CacheCreationTokens: 100, CacheReadTokens: 500,
					LatencyP50Ms: 50, LatencyP95Ms: 95, TTFBP50Ms: 25, TTFBP95Ms: 47},
				{Group: "b", Requests: 3, InputTokens: 300, OutputTokens: 150, LatencyP50Ms: 2000, LatencyP95Ms: 3000},
			},
		},
		{
			name: "by key", since: since, group: GroupKey,
			want: []UsageGroup{
				{Group: "k1", Requests: 103, InputTokens: 1300, OutputTokens: 350, CacheCreationTokens: 100, CacheReadTokens: 500,
					LatencyP50Ms: 52, LatencyP95Ms: 98, TTFBP50Ms: 24, TTFBP95Ms: 47},
				{Group: "k2", Requests: 2, Errors: 2},
			},
		},
		{
			name: "by platform from the beginning", group: GroupPlatform,
			want: []UsageGroup{
				{Group: "claude", Requests: 102, Errors: 2, InputTokens: 1000, OutputTokens: 200, CacheCreationTokens: 100, CacheReadTokens: 500,
					LatencyP50Ms: 50, LatencyP95Ms: 95, TTFBP50Ms: 25, TTFBP95Ms: 47},
				{Group: "openai", Requests: 3, InputTokens: 300, OutputTokens: 150, LatencyP50Ms: 2000, LatencyP95Ms: 3000},
				{Group: "", Requests: 1, InputTokens: 1000000, LatencyP50Ms: 1, LatencyP95Ms: 1},
			},
		},
		{
			name: "empty window", since: now.Add(time.Hour), group: GroupModel,
			want: []UsageGroup{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.UsageSummary(context.Background(), tt.since, time.Time{}, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUsageSummaryUntil(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "relay.db")
	seedUsage(t, path, now)
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.UsageSummary(context.Background(), time.Time{}, now.Add(-24*time.Hour), GroupNone)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Requests != 1 || got[0].InputTokens != 1000000 {
		t.Errorf("until filter: got %+v, want only the old row", got)
	}
}

func TestUsageSummaryUnknownGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	seedUsage(t, path, time.Now())
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.UsageSummary(context.Background(), time.Time{}, time.Time{}, "id; DROP TABLE usage_stats"); err == nil {
		t.Fatal("an unknown grouping must be refused")
	}
}

// TestOpenReadOnlyWhileWriting reads a database that another connection keeps
// open and writes to, as `ccrelay stats` does beside a running server.
func TestOpenReadOnlyWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir with space", "relay.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	rec := usage.Record{Time: time.Now(), AccountID: "a", Status: 200}
	if err := w.InsertUsage(ctx, []usage.Record{rec}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := w.InsertUsage(ctx, []usage.Record{rec}); err != nil {
		t.Fatal(err)
	}
	got, err := r.UsageSummary(ctx, time.Time{}, time.Time{}, GroupNone)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Requests != 2 {
		t.Fatalf("reader sees %+v, want 2 requests", got)
	}
	if _, err := r.conn().ExecContext(ctx, `DELETE FROM usage_stats`); err == nil {
		t.Fatal("a read-only database accepted a write")
	}
}

func TestOpenReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "relay.db")
	_, err := OpenReadOnly(path)
	if !IsNotExist(err) {
		t.Fatalf("err = %v, want not-exist", err)
	}
	if _, serr := os.Stat(filepath.Dir(path)); !os.IsNotExist(serr) {
		t.Fatal("OpenReadOnly created the directory")
	}
}
