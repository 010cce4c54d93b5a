package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// oldSeriesSQL is UsageSeries as it was before it read the rollups: every
// raw row of the window, summed per bucket (kept here to compare against).
const oldSeriesSQL = `SELECT (ts_ms / ?) * ?, model, COUNT(*),
	SUM(CASE WHEN status >= 400 OR status = 0 THEN 1 ELSE 0 END),
	SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), SUM(cache_read_tokens)
	FROM usage_stats WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1, 2 ORDER BY 1, 2`

// BenchmarkUsageSeries measures the dashboard's usage series over a
// database of 30 days of raw rows (1 million, a team at ~33,000 requests a
// day) plus a year of rollups, read from the rollups (now) and from the
// raw rows (before).
//
//	go test -run '^$' -bench UsageSeries -benchtime 20x ./internal/store/
func BenchmarkUsageSeries(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	path := filepath.Join(b.TempDir(), "gen.db")
	if err := GenerateUsage(ctx, path, GenOptions{Rows: 1_000_000, RawDays: 30, RollupDays: 365, Keys: 50, Accounts: 10, Now: now, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	db, err := OpenReadOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, tt := range []struct {
		name   string
		window time.Duration
		step   time.Duration
	}{
		{"24h by hour", 24 * time.Hour, time.Hour},
		{"7d by hour", 7 * 24 * time.Hour, time.Hour},
		{"30d by day", 30 * 24 * time.Hour, 24 * time.Hour},
	} {
		since := now.Add(-tt.window)
		b.Run(tt.name+"/rollups", func(b *testing.B) {
			for b.Loop() {
				if _, err := db.UsageSeries(ctx, since, time.Time{}, tt.step, GroupModel); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/raw rows", func(b *testing.B) {
			for b.Loop() {
				rows, err := db.conn().QueryContext(ctx, oldSeriesSQL, tt.step.Milliseconds(), tt.step.Milliseconds(), since.UnixMilli(), int64(1<<62))
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
				}
				rows.Close()
			}
		})
	}
}
