package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
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
