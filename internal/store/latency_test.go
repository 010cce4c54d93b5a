package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// Latency percentiles come from successful requests of the window only, by
// nearest rank, per group (an unnamed key under its label), and read at
// most LatencySample rows, the newest.
func TestLatencies(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var recs []usage.Record
	add := func(at time.Time, model, keyName, keyHash string, status int, ms int) {
		recs = append(recs, usage.Record{Time: at, Model: model, KeyName: keyName, KeyHash: keyHash, AccountID: "a", Platform: "claude",
			Status: status, Latency: time.Duration(ms) * time.Millisecond})
	}
	for i := 1; i <= 20; i++ { // 100..2000 ms
		add(now.Add(-time.Duration(i)*time.Second), "m1", "alice", "h-alice", 200, 100*i)
	}
	add(now.Add(-time.Second), "m2", "", "h-unnamed", 200, 7)
	add(now.Add(-time.Second), "m2", "", "h-unnamed", 529, 99999)    // failed: not counted
	add(now.Add(-2*time.Hour), "m1", "alice", "h-alice", 200, 50000) // before the window
	if err := db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	label := func(h string) string { return "label:" + h }
	got, err := db.Latencies(context.Background(), now.Add(-time.Hour), GroupModel, label)
	if err != nil {
		t.Fatal(err)
	}
	if p := got["m1"]; p != (Percentiles{P50Ms: 1000, P95Ms: 1900, Sample: 20}) {
		t.Errorf("m1: %+v", p)
	}
	if p := got["m2"]; p != (Percentiles{P50Ms: 7, P95Ms: 7, Sample: 1}) {
		t.Errorf("m2: %+v", p)
	}
	if p := got[""]; p.Sample != 21 || p.P50Ms != 1000 || p.P95Ms != 1900 {
		t.Errorf("total: %+v", p)
	}
	byKey, err := db.Latencies(context.Background(), now.Add(-time.Hour), GroupKey, label)
	if err != nil {
		t.Fatal(err)
	}
	if byKey["alice"].Sample != 20 || byKey["label:h-unnamed"].Sample != 1 {
		t.Errorf("by key: %+v", byKey)
	}
	rep := NewReport("x", now.Add(-time.Hour), now, GroupModel)
	rep.Groups = []ReportGroup{{Name: "m1"}, {Name: "m2"}}
	rep.SetLatencies(got)
	if rep.Groups[0].LatencyP50Ms != 1000 || rep.Groups[1].LatencyP95Ms != 7 || rep.Total.LatencySample != 21 {
		t.Errorf("report: %+v", rep)
	}
}
