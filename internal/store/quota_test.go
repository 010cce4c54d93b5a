package store

import (
	"context"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/quota"
)

func TestQuotaRoundTripKeepsNewest(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	seen := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	reset := seen.Add(2 * time.Hour)
	s := quota.Snapshot{Source: quota.SourceClaude, SeenAt: seen, OverageStatus: quota.StatusRejected,
		Windows: []quota.Window{{Name: "5h", Utilization: 0.62, Minutes: 300, ResetsAt: reset, Status: quota.StatusAllowed}}}
	if err := db.SaveQuota(ctx, "a", s); err != nil {
		t.Fatal(err)
	}
	older := s
	older.SeenAt = seen.Add(-time.Minute)
	older.Windows = []quota.Window{{Name: "5h", Utilization: 0.1}}
	if err := db.SaveQuota(ctx, "a", older); err != nil {
		t.Fatal(err)
	}
	if _, err := db.conn().ExecContext(ctx, `INSERT INTO account_quota VALUES ('bad', 1, 'not json')`); err != nil {
		t.Fatal(err)
	}
	got, err := db.Quotas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := got["a"]
	if !ok || len(got) != 1 || !g.SeenAt.Equal(seen) || len(g.Windows) != 1 || g.Windows[0].Utilization != 0.62 ||
		!g.Windows[0].ResetsAt.Equal(reset) || g.OverageStatus != quota.StatusRejected {
		t.Fatalf("got %+v", got)
	}
	if db.SkippedRows() != 1 {
		t.Error("the damaged row was not counted")
	}
}
