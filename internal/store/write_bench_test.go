package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

func benchRecords(n int, base time.Time) []usage.Record {
	recs := make([]usage.Record, n)
	for i := range recs {
		recs[i] = usage.Record{Time: base.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprintf("req_%d", i), KeyHash: "abcdef0123456789", AccountID: fmt.Sprintf("acct-%d", i%4),
			Platform: "claude", Model: "claude-sonnet-4-5", Status: 200,
			Latency: 40 * time.Millisecond, TTFB: 5 * time.Millisecond, Stream: true, Attempts: 1}
		recs[i].InputTokens, recs[i].OutputTokens, recs[i].CacheReadTokens = 1200, 300, 5000
	}
	return recs
}

// BenchmarkInsertUsage: one op is one raw usage row, written in transactions
// of 512 (as the recorder writes them under load).
//
//	go test -run '^$' -bench 'InsertUsage|RollupStep' ./internal/store/
func BenchmarkInsertUsage(b *testing.B) {
	db := openBenchDB(b)
	ctx := context.Background()
	start := time.Now()
	recs := benchRecords(512, start)
	b.ResetTimer()
	for i := 0; i < b.N; i += len(recs) {
		// Times go forward, as a relay's do: the ts_ms index is appended
		// to, not split in the middle by repeated values.
		for j := range recs {
			recs[j].Time = start.Add(time.Duration(i+j) * time.Millisecond)
		}
		if err := db.InsertUsage(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRollupStep: one op is one raw row rolled up (steps of 2000).
func BenchmarkRollupStep(b *testing.B) {
	db := openBenchDB(b)
	ctx := context.Background()
	recs := benchRecords(2000, time.Now())
	b.StopTimer()
	for i := 0; i < b.N; i += len(recs) {
		if err := db.InsertUsage(ctx, recs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := db.RollupStep(ctx, 2000); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
}

func openBenchDB(b *testing.B) *DB {
	db, err := Open(filepath.Join(b.TempDir(), "u.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}
