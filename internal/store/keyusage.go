package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// KeySpendSince sums each relay key's usage since t, one row per key hash
// (its names merged), for seeding budgets: the stored cost of each request
// (what it cost when it was served; requests without a price add nothing)
// and its tokens. It reads as Usage does: whole days and hours from the
// rollups, the partial hour at t from raw rows, so it is exact to the
// millisecond for any t within the raw retention (usage_retention_days);
// before that, t's whole hour is read from the rollups. Successful and
// failed requests alike (a failed request's tokens were spent too).
func (db *DB) KeySpendSince(ctx context.Context, since time.Time) ([]usage.KeySpend, error) {
	totals, err := db.KeyTotalsSince(ctx, since)
	if err != nil {
		return nil, err
	}
	byHash := map[string]*usage.KeySpend{}
	var out []usage.KeySpend
	for _, t := range totals {
		s := byHash[t.KeyHash]
		if s == nil {
			out = append(out, usage.KeySpend{KeyHash: t.KeyHash})
			s = &out[len(out)-1]
			byHash[t.KeyHash] = s
		}
		s.Requests += t.Requests
		s.Tokens += t.Tokens
		s.CostMicros += t.CostMicros
		s.CostUnknown += t.CostUnknown
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyHash < out[j].KeyHash })
	return out, nil
}

// The queries of KeyLastUsed (schema, then the arguments in order).
const (
	// lastHourSQL finds each key's latest rolled-up hour at or after ?.
	lastHourSQL = `SELECT key_hash, MAX(hour_ms) FROM %s.usage_hourly WHERE hour_ms >= ? GROUP BY key_hash`
	// lastTailSQL finds each key's latest raw row not rolled up yet (id > ?) at or after ?.
	lastTailSQL = `SELECT client_api_key_hash, MAX(ts_ms) FROM %s.usage_stats NOT INDEXED WHERE id > ? AND ts_ms >= ? GROUP BY 1`
	// lastRawSQL finds each key's latest raw row in [?, ?).
	lastRawSQL = `SELECT client_api_key_hash, MAX(ts_ms) FROM %s.usage_stats WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1`
)

// KeyLastUsed returns when each of the relay keys named by hash was last
// used at or after t (keys not used since are absent). The rollups give each
// key's latest hour, and that hour's raw rows the exact time (one read per
// distinct hour); for an hour whose raw rows were pruned
// (usage_retention_days), the start of the hour.
func (db *DB) KeyLastUsed(ctx context.Context, since time.Time, hashes []string) (map[string]time.Time, error) {
	from := since.UnixMilli()
	want := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		want[h] = true
	}
	c, err := db.conn().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("query keys' last use: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return nil, fmt.Errorf("query keys' last use: %w", err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`) //nolint:errcheck // read-only
	last := map[string]int64{}
	run := func(text string, args ...any) (map[string]int64, error) {
		rows, err := c.QueryContext(ctx, text, args...)
		if err != nil {
			return nil, fmt.Errorf("query keys' last use: %w", err)
		}
		defer rows.Close()
		got := map[string]int64{}
		for rows.Next() {
			var hash string
			var ms int64
			if err := rows.Scan(&hash, &ms); err != nil {
				return nil, fmt.Errorf("read keys' last use: %w", err)
			}
			got[hash] = ms
		}
		return got, rows.Err()
	}
	raise := func(got map[string]int64) {
		for h, ms := range got {
			if ms > last[h] {
				last[h] = ms
			}
		}
	}
	for _, schema := range db.schemaList() {
		var rolled, prunedBefore int64
		err := c.QueryRowContext(ctx, `SELECT rolled_id, pruned_before_ms FROM `+schema+`.usage_rollup_state WHERE id = 1`).Scan(&rolled, &prunedBefore)
		if isNoSuchTable(err) { // not migrated yet: raw rows only
			got, err := run(fmt.Sprintf(lastRawSQL, schema), from, int64(1<<62))
			if err != nil {
				return nil, err
			}
			raise(got)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("query keys' last use: read rollup state: %w", err)
		}
		tail, err := run(fmt.Sprintf(lastTailSQL, schema), rolled, from)
		if err != nil {
			return nil, err
		}
		raise(tail)
		hours, err := run(fmt.Sprintf(lastHourSQL, schema), from-from%hourMs)
		if err != nil {
			return nil, err
		}
		// One raw read per distinct latest hour (keys used in the same hour
		// share it), skipping keys whose tail already says later.
		need := map[int64]bool{}
		for h, hour := range hours {
			if want[h] && last[h] < hour+hourMs {
				need[hour] = true
			}
		}
		for hour := range need {
			if hour < prunedBefore {
				for h, hh := range hours {
					if want[h] && hh == hour && last[h] < max(hour, from) {
						last[h] = max(hour, from)
					}
				}
				continue
			}
			got, err := run(fmt.Sprintf(lastRawSQL, schema), max(hour, from), hour+hourMs)
			if err != nil {
				return nil, err
			}
			raise(got)
		}
	}
	out := make(map[string]time.Time, len(hashes))
	for h, ms := range last {
		if want[h] {
			out[h] = time.UnixMilli(ms)
		}
	}
	return out, nil
}
