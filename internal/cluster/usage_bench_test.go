package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/store"
)

// BenchmarkRecordMerge measures the usage pipeline's throughput: records
// recorded, written to SQLite (batched) and, as a cluster member, merged
// into Redis too; records/s counts a record once it is on disk (and in
// Redis). The relay records into both at once, so the difference is the
// merge's cost on a machine that runs both. "now" records are a relay's:
// their times within a minute, 5 keys, 4 accounts, 3 models; "spread"
// records are spread over a day, the worst case (every record its own
// minute, nothing sums up before it leaves).
//
//	go test -run '^$' -bench RecordMerge -benchtime 200000x ./internal/cluster/
func BenchmarkRecordMerge(b *testing.B) {
	rd := clustertest.Start(b)
	for _, tt := range []struct {
		mode   string
		span   time.Duration
		merged bool
	}{{"sqlite/now", time.Minute, false}, {"sqlite+redis/now", time.Minute, true}, {"sqlite/spread", 24 * time.Hour, false}, {"sqlite+redis/spread", 24 * time.Hour, true}} {
		recs := usageRecords(8192, time.Now(), tt.span, 9)
		b.Run(tt.mode, func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "relay.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			rec := store.NewRecorder(db, slog.New(slog.DiscardHandler))
			var share *UsageShare
			if tt.merged {
				c, err := New(clusterCfg(rd, 15), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				share = c.ShareUsage()
			}
			b.ResetTimer()
			for done := 0; done < b.N; {
				// Blocks of 10,000 stay inside both queues' bounds.
				n := min(10_000, b.N-done)
				for i := done; i < done+n; i++ {
					r := recs[i%len(recs)]
					rec.Record(r)
					if share != nil {
						share.Record(r)
					}
				}
				done += n
				for rec.Pending() > 0 || (share != nil && share.Merged()+share.Dropped() < int64(done)) {
					time.Sleep(time.Millisecond)
				}
			}
			b.StopTimer()
			if share != nil && share.Dropped() > 0 {
				b.Fatalf("%d records dropped", share.Dropped())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			_ = rec.Close(context.Background())
		})
	}
}

// BenchmarkClusterUsageRead measures what the admin API's usage report and
// series cost a cluster relay: Redis holds 30 days of a team's traffic (50
// keys, 10 accounts, 8 models, 3 platforms; 150 distinct key, account and
// model tuples an hour).
//
//	go test -run '^$' -bench ClusterUsageRead ./internal/cluster/
func BenchmarkClusterUsageRead(b *testing.B) {
	rd := clustertest.Start(b)
	c, err := New(clusterCfg(rd, 15), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	u := &UsageShare{c: c, pending: map[usageTuple]*usageSums{}}
	now := time.Now()
	n := now.UnixMilli()
	models := []struct{ model, platform string }{{"claude-sonnet-4-5", "claude"}, {"claude-opus-4-1", "claude"}, {"claude-haiku-4-5", "claude"},
		{"gpt-5", "openai"}, {"gpt-5-codex", "openai"}, {"gpt-5-mini", "openai"}, {"gemini-2.5-pro", "gemini"}, {"gemini-2.5-flash", "gemini"}}
	for h := n - n%hourMs - 30*dayMs; h <= n; h += hourMs {
		for i := 0; i < 150; i++ {
			m := models[i%len(models)]
			k := usageTuple{minute: h + int64(i%60)*minuteMs, keyHash: fmt.Sprintf("%064d", i%50), keyName: fmt.Sprintf("user-%02d", i%50),
				account: fmt.Sprintf("acct-%d", i%10), model: m.model, platform: m.platform}
			s := &usageSums{5, 1, 40000, 3000, 2000, 90000, 80000, 0, 4, 40000, 4000}
			u.pending[k] = s
		}
		if len(u.pending) > 5000 {
			if err := u.flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := u.flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// What the buckets cost Redis: one hour's four hashes, one day's.
	hour := n - n%hourMs - 2*hourMs
	day := n - n%dayMs - dayMs
	var hourBytes, dayBytes int64
	for _, d := range []byte("kamp") {
		h, _ := c.rdb.MemoryUsage(ctx, c.usageKey('h', d, hour)).Result()
		dd, _ := c.rdb.MemoryUsage(ctx, c.usageKey('d', d, day)).Result()
		hourBytes, dayBytes = hourBytes+h, dayBytes+dd
	}
	b.Logf("redis memory: %d bytes per hour (4 hashes), %d per day", hourBytes, dayBytes)
	for _, tt := range []struct {
		name   string
		window time.Duration
		by     string
		step   time.Duration
	}{
		{"usage 24h", 24 * time.Hour, store.GroupNone, 0},
		{"usage 24h by key", 24 * time.Hour, store.GroupKey, 0},
		{"usage 30d", 30 * 24 * time.Hour, store.GroupNone, 0},
		{"usage 30d by key", 30 * 24 * time.Hour, store.GroupKey, 0},
		{"usage 30d by model", 30 * 24 * time.Hour, store.GroupModel, 0},
		{"series 1h by minute", time.Hour, store.GroupNone, time.Minute},
		{"series 24h by hour by model", 24 * time.Hour, store.GroupModel, time.Hour},
		{"series 30d by hour by key", 30 * 24 * time.Hour, store.GroupKey, time.Hour},
		{"series 30d by day by key", 30 * 24 * time.Hour, store.GroupKey, 24 * time.Hour},
	} {
		b.Run(tt.name, func(b *testing.B) {
			since := time.Now().Add(-tt.window)
			for b.Loop() {
				var err error
				if tt.step == 0 {
					_, _, err = u.Usage(ctx, since, tt.by)
				} else {
					_, _, err = u.UsageSeries(ctx, since, tt.step, tt.by)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
