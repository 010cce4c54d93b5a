package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Every measure of store.Measures makes the round trip through the Redis
// fields: a hash value encodes and decodes each sum in its place, and the
// cluster's answer after a real merge equals, measure by measure, what the
// records add to it and what a relay database reads back. The test reads
// the list, so a measure added to it is checked too.
func TestMeasuresRoundTripRedis(t *testing.T) {
	now := time.Now()
	recs := usageRecords(400, now, 6*time.Hour, 9)
	var sums usageSums
	var want store.UsageRow
	for i := range recs {
		sums.add(&recs[i])
		r := store.RowOf(&recs[i])
		for j := range store.Measures {
			*store.Measures[j].Field(&want) += *store.Measures[j].Field(&r)
		}
	}
	dec, ok := decodeSums(sums.encode())
	if !ok || dec != sums {
		t.Fatalf("decode(encode(%v)) = %v, %v", sums, dec, ok)
	}
	var fromSums store.UsageRow
	dec.addTo(&fromSums)
	for i, m := range store.Measures {
		if *m.Field(&fromSums) != *m.Field(&want) || sums[i] == 0 {
			t.Errorf("measure %s: sums %d, row %d, want %d (non-zero)", m.Name, sums[i], *m.Field(&fromSums), *m.Field(&want))
		}
	}
	if store.Measures[requestsMeasure].Name != "requests" {
		t.Fatalf("requestsMeasure is %q", store.Measures[requestsMeasure].Name)
	}

	rd := clustertest.Start(t)
	u := newMember(t, clusterCfg(rd, 15), false).ShareUsage()
	for _, r := range recs {
		u.Record(r)
	}
	waitMerged(t, u, int64(len(recs)))
	ctx := context.Background()
	rows, start, err := u.Usage(ctx, now.Add(-7*time.Hour), store.GroupNone)
	if err != nil || len(rows) != 1 {
		t.Fatalf("cluster usage: %v %+v", err, rows)
	}
	ref, err := localDB(t, recs).Usage(ctx, store.UsageQuery{From: start})
	if err != nil || len(ref) != 1 {
		t.Fatalf("database usage: %v %+v", err, ref)
	}
	for _, m := range store.Measures {
		got, db := *m.Field(&rows[0]), *m.Field(&ref[0])
		if got != *m.Field(&want) || db != got {
			t.Errorf("measure %s: cluster %d, database %d, records %d", m.Name, got, db, *m.Field(&want))
		}
	}
}
