package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// LatencySample bounds the requests the latency percentiles are read
// from: the most recent successful ones of the window. The rollups keep
// sums, which give a mean but no percentile; a histogram in every rollup
// row would widen the hot write for a number only the usage page shows.
// So the percentiles read the raw rows newest first through the ts_ms
// index and stop at the bound: a report costs at most this many rows
// whatever the window, and on a busy relay the percentiles describe its
// latest requests (Percentiles.Sample says how many).
const LatencySample = 10000

// Percentiles are the 50th and 95th percentile of successful requests'
// total time (arrival to last byte), nearest rank, over Sample requests.
type Percentiles struct {
	P50Ms  int64
	P95Ms  int64
	Sample int64
}

// Latencies returns the percentiles of the window since since (zero: all
// kept raw rows) for the whole window (under "") and for each group of by,
// named as Report names its groups (keyLabel names an unnamed key). Only
// this database's raw rows are read: in a cluster, this relay's requests.
func (db *DB) Latencies(ctx context.Context, since time.Time, by string, keyLabel func(hash string) string) (map[string]Percentiles, error) {
	col := map[string]string{GroupNone: "''", GroupModel: "model", GroupAccount: "account_id", GroupPlatform: "platform", GroupKey: "key_name",
		GroupServedModel: servedModelSQL}[by]
	if col == "" {
		return nil, fmt.Errorf("latencies: unknown grouping %q", by)
	}
	rows, err := db.conn().QueryContext(ctx, `SELECT latency_ms, `+col+`, client_api_key_hash FROM usage_stats
		WHERE ts_ms >= ? AND status >= 200 AND status < 400 ORDER BY ts_ms DESC LIMIT ?`, since.UnixMilli(), LatencySample)
	if err != nil {
		return nil, fmt.Errorf("read latencies: %w", err)
	}
	defer rows.Close()
	groups := map[string][]int64{}
	var all []int64
	for rows.Next() {
		var ms int64
		var group, hash string
		if err := rows.Scan(&ms, &group, &hash); err != nil {
			return nil, fmt.Errorf("read latencies: %w", err)
		}
		all = append(all, ms)
		if by == GroupNone {
			continue
		}
		if by == GroupKey && group == "" {
			group = keyLabel(hash)
		}
		groups[group] = append(groups[group], ms)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read latencies: %w", err)
	}
	out := make(map[string]Percentiles, len(groups)+1)
	out[""] = percentiles(all)
	for g, v := range groups {
		out[g] = percentiles(v)
	}
	return out, nil
}

// percentiles sorts v and reads its 50th and 95th percentiles by nearest
// rank; zeros for no values.
func percentiles(v []int64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	slices.Sort(v)
	rank := func(p int) int64 { return v[(p*len(v)+99)/100-1] }
	return Percentiles{P50Ms: rank(50), P95Ms: rank(95), Sample: int64(len(v))}
}

// SetLatencies puts the percentiles Latencies read into r's total and
// groups; a group without any (no successful request in the sample) keeps
// zeros.
func (r *Report) SetLatencies(p map[string]Percentiles) {
	r.Total.setLatency(p[""])
	for i := range r.Groups {
		if r.By != GroupNone {
			r.Groups[i].setLatency(p[r.Groups[i].Name])
		}
	}
}

func (g *ReportGroup) setLatency(p Percentiles) {
	g.LatencyP50Ms, g.LatencyP95Ms, g.LatencySample = p.P50Ms, p.P95Ms, p.Sample
}
