package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// measureRecords are records over the last three days with every measure
// non-zero in their sums: successes and errors, known and unknown costs.
func measureRecords(now time.Time) []usage.Record {
	statuses := []int{200, 301, 400, 429, 500, 0}
	var recs []usage.Record
	for i := range 300 {
		r := usage.Record{
			Time:    now.Add(-time.Duration(i) * 13 * time.Minute).Truncate(time.Millisecond),
			KeyHash: fmt.Sprintf("h%d", i%3), KeyName: []string{"alice", "bob", ""}[i%3], AccountID: fmt.Sprintf("acct-%d", i%4),
			Platform: "claude", Model: []string{"m1", "m2"}[i%2],
			Usage:  provider.Usage{InputTokens: int64(100 + i), OutputTokens: int64(7 * i), CacheCreationTokens: int64(i % 11), CacheReadTokens: int64(3 * i)},
			Status: statuses[i%len(statuses)], Latency: time.Duration(1000+i) * time.Millisecond, TTFB: time.Duration(50+i) * time.Millisecond,
			Attempts: 1,
		}
		if i%5 != 0 {
			r.CostKnown, r.CostMicros = true, int64(900+i)
		}
		recs = append(recs, r)
	}
	return recs
}

// Every measure makes the round trip through the database: what the
// records add to it (Measure.Of) is what the usage queries read back, from
// raw rows before a roll-up and from the hourly and daily rollups after
// one. The test reads the list, so a measure added to it is checked too.
func TestMeasuresRoundTripSQL(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	recs := measureRecords(now)
	var want UsageRow
	for i := range recs {
		want.add(RowOf(&recs[i]))
	}
	for i := range Measures {
		if *Measures[i].Field(&want) == 0 {
			t.Fatalf("measure %s is 0 in the test records: the round trip would not see it", Measures[i].Name)
		}
	}
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	check := func(stage string) {
		t.Helper()
		for _, q := range []UsageQuery{{By: GroupNone}, {By: GroupModel}, {By: GroupKey}, {From: now.Add(-50 * time.Hour), By: GroupAccount}} {
			rows, err := db.Usage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var got UsageRow
			for _, r := range rows {
				got.add(r)
			}
			w := want
			if !q.From.IsZero() {
				w = UsageRow{}
				for i := range recs {
					if !recs[i].Time.Before(q.From) {
						w.add(RowOf(&recs[i]))
					}
				}
			}
			for i := range Measures {
				m := &Measures[i]
				if g, w := *m.Field(&got), *m.Field(&w); g != w {
					t.Errorf("%s, %+v: measure %s = %d, want %d", stage, q, m.Name, g, w)
				}
			}
		}
	}
	check("raw rows")
	for {
		n, err := db.RollupStep(ctx, 64)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	check("rolled up")
}

// The tables hold a column for every measure and no other: a measure added
// to the list without a migration adding its columns fails here.
func TestMeasuresMatchTheSchema(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	columns := func(table string, skip int) []string {
		rows, err := db.conn().Query(`SELECT name FROM pragma_table_info('` + table + `') ORDER BY cid`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out[skip:]
	}
	var daily, hourly []string
	for _, m := range Measures {
		daily = append(daily, m.Name)
		if m.Hourly != "" {
			hourly = append(hourly, m.Hourly)
		}
	}
	slices.Sort(daily)
	slices.Sort(hourly)
	for _, tt := range []struct {
		table string
		skip  int // the group columns
		want  []string
	}{{"usage_daily", 4, daily}, {"usage_hourly", 7, hourly}, {"usage_hourly_served", 2, daily}} {
		got := columns(tt.table, tt.skip)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s measure columns %v, Measures name %v", tt.table, got, tt.want)
		}
	}
	if NumMeasures != 11 || Measures[0].Name != "requests" {
		t.Errorf("Measures: %d, first %q", NumMeasures, Measures[0].Name)
	}
}
