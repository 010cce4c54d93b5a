package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/testutil"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// usageRecords spreads n records over the span before now, with key names
// (one name used with two keys), unnamed and anonymous keys, known and
// unknown costs, successes and errors.
func usageRecords(n int, now time.Time, span time.Duration, seed uint64) []usage.Record {
	rng := rand.New(rand.NewPCG(seed, 2))
	keys := []struct{ name, hash string }{{"alice", "h1"}, {"alice", "h2"}, {"bob", "h3"}, {"", "h4"}, {"", usage.Anonymous}}
	models := []struct{ model, platform string }{{"claude-sonnet-4-5", "claude"}, {"gpt-5", "openai"}, {"gemini-2.5-pro", "gemini"}}
	statuses := []int{200, 200, 200, 301, 400, 429, 500, 0, 499}
	recs := make([]usage.Record, n)
	for i := range recs {
		k, m := keys[rng.IntN(len(keys))], models[rng.IntN(len(models))]
		u := usage.Record{
			Time:    now.Add(-time.Duration(rng.Int64N(int64(span)))).Truncate(time.Millisecond),
			KeyHash: k.hash, KeyName: k.name, AccountID: fmt.Sprintf("acct-%d", rng.IntN(4)), Platform: m.platform, Model: m.model,
			Usage: provider.Usage{InputTokens: rng.Int64N(5000), OutputTokens: rng.Int64N(900), CacheCreationTokens: rng.Int64N(300),
				CacheReadTokens: rng.Int64N(10000)},
			Status: statuses[rng.IntN(len(statuses))], Latency: time.Duration(rng.IntN(60000)) * time.Millisecond,
			TTFB: time.Duration(rng.IntN(3000)) * time.Millisecond, Attempts: 1,
		}
		if m.model != "gemini-2.5-pro" {
			u.CostKnown, u.CostMicros = true, rng.Int64N(100000)
		}
		if m.model == "claude-sonnet-4-5" && i%5 == 0 {
			// A route's fallback: asked for Claude, served by OpenAI.
			u.ServedModel, u.Platform = "gpt-5-codex", "openai"
		}
		recs[i] = u
	}
	return recs
}

// localDB writes recs into a relay database of their own: the reference
// the cluster's numbers must equal.
func localDB(t *testing.T, recs ...[]usage.Record) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "ref.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, rs := range recs {
		if err := db.InsertUsage(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func byGroup(rows []store.UsageRow) []store.UsageRow {
	out := append([]store.UsageRow{}, rows...)
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// waitMerged waits until u merged n records.
func waitMerged(t *testing.T, u *UsageShare, n int64) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d records merged", n), func() bool { return u.Merged() >= n })
	if m := u.Merged(); m != n {
		t.Fatalf("merged %d records, want %d", m, n)
	}
}

// Two relays merge what they record; either one reads the sums of both,
// equal for every grouping and window to what their two databases hold
// from the window's start (rounded down to the hour, or to the day for
// windows beyond the hour buckets' retention), and the same series.
func TestClusterUsageEqualsTheDatabases(t *testing.T) {
	rd := clustertest.Start(t)
	cfg := clusterCfg(rd, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	ua, ub := a.ShareUsage(), b.ShareUsage()
	now := time.Now()
	recsA := usageRecords(3000, now, 50*24*time.Hour, 1)
	recsB := usageRecords(2000, now, 72*time.Hour, 2)
	for _, r := range recsA {
		ua.Record(r)
	}
	for _, r := range recsB {
		ub.Record(r)
	}
	waitMerged(t, ua, int64(len(recsA)))
	waitMerged(t, ub, int64(len(recsB)))
	ref := localDB(t, recsA, recsB)
	ctx := context.Background()

	for _, since := range []time.Time{{}, now.Add(-24 * time.Hour), now.Add(-90 * time.Minute), now.Add(-7 * 24 * time.Hour), now.Add(-40 * 24 * time.Hour)} {
		for _, by := range []string{store.GroupNone, store.GroupKey, store.GroupAccount, store.GroupModel, store.GroupPlatform, store.GroupServedModel} {
			for _, u := range []*UsageShare{ua, ub} {
				got, start, err := u.Usage(ctx, since, by)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case since.IsZero():
				case now.Sub(since) < 30*24*time.Hour:
					if !start.Equal(since.Truncate(time.Hour)) {
						t.Fatalf("since %v: start %v, want the hour", since, start)
					}
				default:
					if start.UnixMilli()%dayMs != 0 || start.After(since) || since.Sub(start) >= 24*time.Hour {
						t.Fatalf("since %v: start %v, want the UTC day", since, start)
					}
				}
				want, err := ref.Usage(ctx, store.UsageQuery{From: start, By: by})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(byGroup(got), byGroup(want)) {
					t.Fatalf("since %v by %q:\n got  %+v\n want %+v", since, by, byGroup(got), byGroup(want))
				}
			}
		}
	}

	for _, tt := range []struct {
		since time.Duration
		step  time.Duration
		by    string
	}{
		{24 * time.Hour, time.Hour, store.GroupModel},
		{24 * time.Hour, time.Hour, store.GroupServedModel},
		{30 * 24 * time.Hour, 24 * time.Hour, store.GroupServedModel},
		{24 * time.Hour, time.Hour, store.GroupKey},
		{30 * 24 * time.Hour, 24 * time.Hour, store.GroupAccount},
		{7 * 24 * time.Hour, 3 * time.Hour, store.GroupNone},
		{time.Hour, time.Minute, store.GroupNone},
		{3 * time.Hour, 5 * time.Minute, store.GroupPlatform},
	} {
		name := fmt.Sprintf("series %v step %v by %q", tt.since, tt.step, tt.by)
		got, start, err := ua.UsageSeries(ctx, now.Add(-tt.since), tt.step, tt.by)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := ref.UsageSeries(ctx, start, time.Time{}, tt.step, tt.by)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got  %+v\n want %+v", name, got, want)
		}
	}
	// A grouped series by minute is not in the buckets: the relay's own
	// database answers it.
	if _, _, err := ua.UsageSeries(ctx, now.Add(-time.Hour), time.Minute, store.GroupKey); err != ErrUsageNotCovered {
		t.Fatalf("grouped minutes: %v, want ErrUsageNotCovered", err)
	}
}

// A chunk merged twice (its reply lost, then retried) counts once.
func TestClusterUsageChunkMergedOnce(t *testing.T) {
	rd := clustertest.Start(t)
	c := newMember(t, clusterCfg(rd, 15), false)
	u := &UsageShare{c: c, pending: map[usageTuple]*usageSums{}}
	now := time.Now()
	recs := usageRecords(50, now, time.Hour, 3)
	for _, r := range recs {
		k := usageTuple{minute: r.Time.UnixMilli() - r.Time.UnixMilli()%minuteMs, keyHash: r.KeyHash, keyName: r.KeyName, account: r.AccountID, model: r.Model, platform: r.Platform, served: r.Served()}
		if u.pending[k] == nil {
			u.pending[k] = new(usageSums)
		}
		u.pending[k].add(&r)
	}
	u.seal()
	ctx := context.Background()
	for range 2 {
		for _, ch := range u.chunks {
			if err := u.write(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, start, err := u.Usage(ctx, now.Add(-2*time.Hour), store.GroupAccount)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := localDB(t, recs).Usage(ctx, store.UsageQuery{From: start, By: store.GroupAccount})
	if !reflect.DeepEqual(byGroup(got), byGroup(want)) {
		t.Fatalf("after a retried merge:\n got  %+v\n want %+v", got, want)
	}
}

// While Redis is down the cluster's numbers are refused with the reason
// (the admin API then answers with the relay's own), records wait, and
// they are merged once Redis answers again.
func TestClusterUsageOutage(t *testing.T) {
	rd := clustertest.Start(t)
	c := newMember(t, clusterCfg(rd, 15), false)
	u := c.ShareUsage()
	ctx := context.Background()
	now := time.Now()
	rd.Stop()
	eventually(t, 5*time.Second, "the outage is noticed", c.Degraded)
	_, _, err := u.Usage(ctx, now.Add(-time.Hour), store.GroupNone)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("usage during the outage: %v", err)
	}
	if strings.Contains(err.Error(), rd.URL) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("the reason names the address: %v", err)
	}
	recs := usageRecords(300, now, 30*time.Minute, 4)
	for _, r := range recs {
		u.Record(r)
	}
	rd.Restart()
	eventually(t, 10*time.Second, "redis is back", func() bool { return !c.Degraded() })
	waitMerged(t, u, int64(len(recs)))
	got, start, err := u.Usage(ctx, now.Add(-time.Hour), store.GroupKey)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := localDB(t, recs).Usage(ctx, store.UsageQuery{From: start, By: store.GroupKey})
	if !reflect.DeepEqual(byGroup(got), byGroup(want)) {
		t.Fatalf("after the outage:\n got  %+v\n want %+v", got, want)
	}
	if d := u.Dropped(); d != 0 {
		t.Fatalf("%d records dropped", d)
	}
}

// Closing the cluster merges what is queued.
func TestClusterUsageMergedOnClose(t *testing.T) {
	rd := clustertest.Start(t)
	cfg := clusterCfg(rd, 15)
	c, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := c.ShareUsage()
	recs := usageRecords(100, time.Now(), time.Hour, 5)
	for _, r := range recs {
		u.Record(r)
	}
	c.Close()
	if m := u.Merged(); m != int64(len(recs)) {
		t.Fatalf("merged %d of %d on close", m, len(recs))
	}
	reader := newMember(t, cfg, false).ShareUsage()
	got, _, err := reader.Usage(context.Background(), time.Now().Add(-2*time.Hour), store.GroupNone)
	if err != nil || len(got) != 1 || got[0].Requests != int64(len(recs)) {
		t.Fatalf("after close: %+v %v", got, err)
	}
}

// During an outage the sums wait up to their bound; records beyond it are
// counted as dropped (the relay's database keeps them), logged once, and
// what waited is merged when Redis returns.
func TestClusterUsageOutageBufferBound(t *testing.T) {
	rd := clustertest.Start(t)
	logs := &testutil.SyncBuffer{}
	c, err := New(clusterCfg(rd, 15), nil, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	u := c.ShareUsage()
	u.maxTuples = 10
	rd.Stop()
	eventually(t, 5*time.Second, "the outage is noticed", c.Degraded)
	// 30 records, each in a minute of its own: 30 tuples.
	base := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	for i := range 30 {
		u.Record(usage.Record{Time: base.Add(time.Duration(i) * time.Minute), KeyHash: "h", AccountID: "a", Platform: "claude", Model: "m", Status: 200})
	}
	eventually(t, 5*time.Second, "the records beyond the bound dropped", func() bool { return u.Dropped() == 20 })
	rd.Restart()
	waitMerged(t, u, 10)
	got, _, err := u.Usage(context.Background(), base, store.GroupNone)
	if err != nil || len(got) != 1 || got[0].Requests != 10 {
		t.Fatalf("after the outage: %+v %v", got, err)
	}
	if n := strings.Count(logs.String(), "cluster usage buffer full"); n != 1 {
		t.Fatalf("the full buffer was logged %d times:\n%s", n, logs.String())
	}
}

// A bucket an older relay merged into (no served-model grouping) would
// make the served-model answer short: it is refused as not covered (the
// admin API then answers from the relay's own database, saying why), and
// the other groupings still answer.
func TestClusterUsageServedModelOfAnOlderRelay(t *testing.T) {
	rd := clustertest.Start(t)
	c := newMember(t, clusterCfg(rd, 15), false)
	u := c.ShareUsage()
	now := time.Now()
	recs := usageRecords(200, now, time.Hour, 4)
	for _, r := range recs {
		u.Record(r)
	}
	waitMerged(t, u, int64(len(recs)))
	ctx := context.Background()
	since := now.Add(-2 * time.Hour)
	got, start, err := u.Usage(ctx, since, store.GroupServedModel)
	if err != nil {
		t.Fatalf("every relay merged the served model: %v", err)
	}
	want, _ := localDB(t, recs).Usage(ctx, store.UsageQuery{From: start, By: store.GroupServedModel})
	if !reflect.DeepEqual(byGroup(got), byGroup(want)) {
		t.Fatalf("by served model:\n got  %+v\n want %+v", got, want)
	}

	// An older relay merges one request into the platform and model
	// groupings only.
	old := usageRecords(1, now, time.Minute, 5)[0]
	var s usageSums
	s.add(&old)
	hour := now.UnixMilli() - now.UnixMilli()%hourMs
	for _, dim := range []byte{'p', 'm'} {
		if err := c.rdb.HSet(ctx, c.usageKey('h', dim, hour), "old-relay", s.encode()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := u.Usage(ctx, since, store.GroupServedModel); !errors.Is(err, ErrUsageNotCovered) {
		t.Fatalf("by served model with an older relay's bucket: %v, want ErrUsageNotCovered", err)
	}
	if _, _, err := u.UsageSeries(ctx, since, time.Hour, store.GroupServedModel); !errors.Is(err, ErrUsageNotCovered) {
		t.Fatalf("series by served model with an older relay's bucket: %v, want ErrUsageNotCovered", err)
	}
	if _, _, err := u.Usage(ctx, since, store.GroupModel); err != nil {
		t.Fatalf("by model: %v", err)
	}
}
