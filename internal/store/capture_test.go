package store

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// CapturedCounts counts the bodies held for each capture asked about, by
// the capture id the request log rows carry, whether or not the captures
// table knows the capture (a cluster's is in Redis).
func TestCapturedCounts(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	var recs []usage.Record
	for i, capture := range []int64{1_000_000_001, 1_000_000_001, 1_000_000_002, 7} {
		r := failoverRecord("req_"+string(rune('a'+i)), now)
		r.Bodies = &usage.Bodies{CaptureID: capture, Request: []byte(`{}`), Expires: now.Add(time.Hour)}
		recs = append(recs, r)
	}
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := db.CapturedCounts(ctx, []int64{1_000_000_001, 1_000_000_002, 1_000_000_003})
	if want := map[int64]int64{1_000_000_001: 2, 1_000_000_002: 1}; err != nil || !maps.Equal(got, want) {
		t.Fatalf("counts %v %v; want %v", got, err, want)
	}
	if got, err := db.CapturedCounts(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: %v %v", got, err)
	}
}
