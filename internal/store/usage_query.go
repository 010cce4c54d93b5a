package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Usage groupings accepted by Usage.
const (
	GroupNone     = ""
	GroupKey      = "key"
	GroupAccount  = "account"
	GroupModel    = "model"
	GroupPlatform = "platform"
	// GroupServedModel groups by the model that served the request (the
	// model asked, unless a route or the [models] map rewrote it).
	GroupServedModel = "served_model"
)

// groupColumns maps a grouping to the two columns it groups by, in the
// rollup table and in the raw table; the only values ever put into the SQL
// text, so no caller string reaches a query. Keys group by name and hash;
// Usage then merges the hashes of one name.
var groupColumns = map[string]struct{ rollup, raw string }{
	GroupNone:     {"'', ''", "'', ''"},
	GroupKey:      {"key_name, key_hash", "key_name, client_api_key_hash"},
	GroupAccount:  {"account_id, ''", "account_id, ''"},
	GroupModel:    {"model, ''", "model, ''"},
	GroupPlatform: {"platform, ''", "platform, ''"},
	// usage_hourly's rows were served as asked; from served_from_ms the
	// hours come from usage_hourly_served instead (served.go).
	GroupServedModel: {"model, ''", servedModelSQL + ", ''"},
}

// UsageQuery selects the usage of a window, grouped.
type UsageQuery struct {
	// From is the window start (inclusive); zero means from the beginning.
	From time.Time
	// To is the window end (exclusive); zero means up to now and beyond.
	To time.Time
	// By is GroupNone, GroupKey, GroupAccount, GroupModel, GroupPlatform or
	// GroupServedModel.
	By string
}

// UsageRow sums the usage of one group of a window.
type UsageRow struct {
	// Group is the grouping value: the account id, model (asked or served)
	// or platform; for
	// keys the key name, or the key hash of an unnamed key; "" ungrouped.
	Group string `json:"group,omitempty"`
	// KeyName and KeyHash identify the key (with By GroupKey only). KeyHash
	// is "" when one name was used with several keys in the window.
	KeyName string `json:"key_name,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
	// Requests counts every recorded request; Errors those that ended with a
	// status of 400 or more (or none at all).
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Tokens as the upstream reported them.
	InputTokens         int64 `json:"input_tokens"`
	OutputTokens        int64 `json:"output_tokens"`
	CacheCreationTokens int64 `json:"cache_creation_tokens"`
	CacheReadTokens     int64 `json:"cache_read_tokens"`
	// CostMicros sums the cost of the requests whose cost is known, in
	// micro-dollars; CostUnknown counts the others (a model without a price,
	// or a request recorded before costs were). The cost is known only when
	// CostUnknown is 0.
	CostMicros  int64 `json:"cost_micros"`
	CostUnknown int64 `json:"cost_unknown_requests"`
	// Successes counts the requests with a 2xx or 3xx status; LatencyMsSum
	// and TTFBMsSum sum their latency and time to first byte.
	Successes    int64 `json:"successes"`
	LatencyMsSum int64 `json:"latency_ms_sum"`
	TTFBMsSum    int64 `json:"ttfb_ms_sum"`
}

// CostKnown reports whether every request of the row has a known cost.
func (r UsageRow) CostKnown() bool { return r.CostUnknown == 0 }

// LatencyAvgMs is the mean latency of the successful requests (0 when none).
func (r UsageRow) LatencyAvgMs() int64 { return avg(r.LatencyMsSum, r.Successes) }

// TTFBAvgMs is the mean time to first byte of the successful requests.
func (r UsageRow) TTFBAvgMs() int64 { return avg(r.TTFBMsSum, r.Successes) }

func avg(sum, n int64) int64 {
	if n == 0 {
		return 0
	}
	return (sum + n/2) / n
}

// KeyTotals sums one relay key's usage (one row per key name and hash).
type KeyTotals struct {
	KeyName string
	KeyHash string
	// Requests, tokens (all kinds summed, and by kind) and cost as in UsageRow.
	Requests            int64
	Tokens              int64
	InputTokens         int64
	OutputTokens        int64
	CacheCreationTokens int64
	CacheReadTokens     int64
	CostMicros          int64
	CostUnknown         int64
}

// dailyDim is the usage_daily dimension each grouping reads; ungrouped
// totals sum the smallest one.
var dailyDim = map[string]string{GroupNone: "platform", GroupKey: "key", GroupAccount: "account", GroupModel: "model", GroupPlatform: "platform",
	GroupServedModel: "served_model"}

// usageQueries are the texts of one schema's usage queries for one grouping.
// Each selects a bucket start, the two group columns, then the sums. A
// bucketed query's bucket is (time / step) * step and takes the step twice
// before its other arguments; an unbucketed one selects 0.
type usageQueries struct {
	// daily reads the rollups of whole days [?, ?).
	daily string
	// hourly reads the rollups of whole hours [?, ?).
	hourly string
	// tail reads the raw rows not rolled up yet (id > ?) of whole hours [?, ?).
	tail string
	// edge reads every raw row of [?, ?) (the partial hours of a window).
	edge string
	// served reads the served-model rollups of whole hours [?, ?) (with
	// GroupServedModel only; hourly reads the hours before them).
	served string
}

func buildUsageQueries(schema, by string, legacy bool) usageQueries {
	const perWindow = false // not bucketed: one sum for the whole window
	return buildQueries(schema, by, legacy, perWindow)
}

// buildQueries builds a schema's usage queries; bucketed ones sum per
// time bucket too (usage series).
func buildQueries(schema, by string, legacy, bucketed bool) usageQueries {
	cols := groupColumns[by]
	bucket := func(col string) (sel, group string) {
		if !bucketed {
			return "0", "2, 3"
		}
		return "(" + col + " / ?) * ?", "1, 2, 3"
	}
	rb, rg := bucket("ts_ms")
	if legacy {
		g := cols.raw
		if by == GroupKey {
			g = "'', client_api_key_hash"
		}
		return usageQueries{edge: `SELECT ` + rb + `, ` + g + `, ` + legacySums + ` FROM ` + schema + `.usage_stats WHERE ts_ms >= ? AND ts_ms < ? GROUP BY ` + rg}
	}
	g := "g1, g2"
	if by == GroupNone {
		g = "'', ''"
	}
	db, dg := bucket("day_ms")
	hb, hg := bucket("hour_ms")
	return usageQueries{
		daily:  `SELECT ` + db + `, ` + g + `, ` + dailySums + ` FROM ` + schema + `.usage_daily WHERE dim = '` + dailyDim[by] + `' AND day_ms >= ? AND day_ms < ? GROUP BY ` + dg,
		hourly: `SELECT ` + hb + `, ` + cols.rollup + `, ` + rollupSums + ` FROM ` + schema + `.usage_hourly WHERE hour_ms >= ? AND hour_ms < ? GROUP BY ` + hg,
		// NOT INDEXED: the rows above rolled_id are the newest few, found
		// by rowid; the ts_ms index would visit every row of the window.
		tail:   `SELECT ` + rb + `, ` + cols.raw + `, ` + rawSums + ` FROM ` + schema + `.usage_stats NOT INDEXED WHERE id > ? AND ts_ms >= ? AND ts_ms < ? GROUP BY ` + rg,
		edge:   `SELECT ` + rb + `, ` + cols.raw + `, ` + rawSums + ` FROM ` + schema + `.usage_stats WHERE ts_ms >= ? AND ts_ms < ? GROUP BY ` + rg,
		served: map[bool]string{true: `SELECT ` + hb + `, served_model, '', ` + dailySums + ` FROM ` + schema + `.usage_hourly_served WHERE hour_ms >= ? AND hour_ms < ? GROUP BY ` + hg}[by == GroupServedModel],
	}
}

// schemaList is the attached databases a query sums over: "main", plus one
// per extra relay database opened by OpenReadOnlyMany.
func (db *DB) schemaList() []string {
	if len(db.schemas) == 0 {
		return []string{"main"}
	}
	return db.schemas
}

// Usage sums the usage of [q.From, q.To) by q.By. Whole hours come from the
// hourly rollups (plus the few raw rows not rolled up yet), partial hours at
// the window's edges from the raw rows, so the cost of a query does not grow
// with the history kept. An edge older than the raw retention is read as its
// whole hour from the rollups. Groups come busiest first.
func (db *DB) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	if _, ok := groupColumns[q.By]; !ok {
		return nil, fmt.Errorf("unknown usage grouping %q", q.By)
	}
	from, to := window(q.From, q.To)
	var parts []UsageRow
	err := db.readUsage(ctx, func(c *sql.Conn, schema string) error {
		return db.usageOf(ctx, c, schema, q.By, 0, from, to, func(_ int64, g1, g2 string, r UsageRow) {
			r.KeyName, r.KeyHash = g1, g2
			parts = append(parts, r)
		})
	})
	if err != nil {
		return nil, err
	}
	return GroupUsage(q.By, parts), nil
}

// window turns a query's bounds into milliseconds; zero bounds are open.
func window(fromT, toT time.Time) (from, to int64) {
	from, to = 0, 1<<62
	if !fromT.IsZero() {
		from = fromT.UnixMilli()
	}
	if !toT.IsZero() {
		to = toT.UnixMilli()
	}
	return from, to
}

// readUsage runs read on every attached schema within one read transaction:
// rolled_id, the rollups and the raw rows are read from one snapshot, so no
// row is counted twice or missed while the relay rolls up.
func (db *DB) readUsage(ctx context.Context, read func(c *sql.Conn, schema string) error) error {
	c, err := db.conn().Conn(ctx)
	if err != nil {
		return fmt.Errorf("query usage: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return fmt.Errorf("query usage: %w", err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`) //nolint:errcheck // read-only
	for _, schema := range db.schemaList() {
		if err := read(c, schema); err != nil {
			return err
		}
	}
	return nil
}

// GroupUsage merges partial sums into the rows of grouping by: parts carry
// their two group values in KeyName (the account, model or platform, or the
// key name) and KeyHash (the key hash with GroupKey, else ""), and may hold
// one group several times (several databases, rollups and raw edges, several
// relays). Keys come out one row per key name, the hashes of one name merged
// (KeyHash "" when they differ); unnamed keys one row per hash. Rows come
// busiest first.
func GroupUsage(by string, parts []UsageRow) []UsageRow {
	merged := map[[2]string]*UsageRow{}
	var order []*UsageRow
	for _, r := range parts {
		k := [2]string{r.KeyName, r.KeyHash}
		if m := merged[k]; m != nil {
			m.add(r)
			continue
		}
		r.Group = ""
		merged[k] = &r
		order = append(order, &r)
	}
	if by == GroupKey {
		byName := map[string]*UsageRow{}
		var rows []*UsageRow
		for _, r := range order {
			g := r.KeyName
			if g == "" {
				g = r.KeyHash
			}
			if m := byName[g]; m != nil {
				m.add(*r)
				if m.KeyHash != r.KeyHash {
					m.KeyHash = ""
				}
				continue
			}
			r.Group = g
			byName[g] = r
			rows = append(rows, r)
		}
		order = rows
	} else {
		for _, r := range order {
			r.Group, r.KeyName, r.KeyHash = r.KeyName, "", ""
		}
	}
	out := make([]UsageRow, 0, len(order))
	for _, r := range order {
		out = append(out, *r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// rollupState is what a usage query needs of a schema's rollup state.
type rollupState struct {
	// legacy: a database written before rollups (read only its raw rows).
	legacy               bool
	rolled, prunedBefore int64
	// served: the database keeps the model served (read with
	// GroupServedModel only), from the hour servedFrom in its rollups.
	served     bool
	servedFrom int64
}

// readRollupState reads schema's rollup state (and, grouping by served
// model, where its served-model hours start).
func readRollupState(ctx context.Context, c *sql.Conn, schema, by string) (rollupState, error) {
	var st rollupState
	err := c.QueryRowContext(ctx, `SELECT rolled_id, pruned_before_ms FROM `+schema+`.usage_rollup_state WHERE id = 1`).Scan(&st.rolled, &st.prunedBefore)
	switch {
	case err != nil && isNoSuchTable(err):
		// A database not yet migrated (stats reads it read-only).
		st.legacy = true
	case err != nil:
		return st, fmt.Errorf("query usage: read rollup state: %w", err)
	}
	if by == GroupServedModel && !st.legacy {
		if st.servedFrom, st.served, err = servedFrom(ctx, c, schema); err != nil {
			return st, err
		}
	}
	return st, nil
}

// usageOf adds one schema's usage of [from, to) to add, split into whole
// hours (rollups and the raw tail) and raw edges. With step > 0 the sums are
// per bucket of step ms (aligned to the Unix epoch): a step of whole hours
// reads the rollups as above (whole days only when the step is whole days);
// any other step reads the raw rows of the whole window, so it covers the
// raw retention only. add gets the bucket start (0 without a step).
func (db *DB) usageOf(ctx context.Context, c *sql.Conn, schema, by string, step, from, to int64, add func(bucket int64, g1, g2 string, r UsageRow)) error {
	st, err := readRollupState(ctx, c, schema, by)
	if err != nil {
		return err
	}
	legacy, rolled, prunedBefore, servedFromMs := st.legacy, st.rolled, st.prunedBefore, st.servedFrom
	if by == GroupServedModel && !st.served {
		by = GroupModel // a database older than the served model: served as asked
	}
	qs := buildQueries(schema, by, legacy, step > 0)
	run := func(text string, args ...any) error {
		if step > 0 {
			args = append([]any{step, step}, args...)
		}
		rows, err := c.QueryContext(ctx, text, args...)
		if err != nil {
			return fmt.Errorf("query usage: %w", err)
		}
		defer rows.Close()
		dst := make([]any, 0, 3+NumMeasures)
		for rows.Next() {
			var bucket int64
			var g1, g2 string
			var r UsageRow
			if err := rows.Scan(r.scanDest(append(dst[:0], &bucket, &g1, &g2))...); err != nil {
				return fmt.Errorf("read usage: %w", err)
			}
			add(bucket, g1, g2, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read usage: %w", err)
		}
		return nil
	}
	// hourly reads the rollups of whole hours [a, b): the served-model
	// ones from servedFromMs on.
	hourly := func(a, b int64) error {
		if qs.served == "" || b <= servedFromMs {
			return run(qs.hourly, a, b)
		}
		if a < servedFromMs {
			if err := run(qs.hourly, a, servedFromMs); err != nil {
				return err
			}
			a = servedFromMs
		}
		return run(qs.served, a, b)
	}
	if legacy || (step > 0 && step%hourMs != 0) {
		return run(qs.edge, from, to)
	}
	hFrom, hTo := ceilHour(from), to-to%hourMs
	// Raw rows before prunedBefore are gone once rolled up: an edge there is
	// read as its whole hour from the rollups (prunedBefore is hour-aligned).
	if from < prunedBefore {
		hFrom = from - from%hourMs
	}
	if to < prunedBefore {
		hTo = ceilHour(to)
	}
	if hFrom >= hTo {
		return run(qs.edge, from, to)
	}
	// Whole days from the daily rollups, the hours around them from the
	// hourly ones. A bucket of hours that are not whole days would split a
	// day's sums: those read hours only.
	dFrom, dTo := ceilTo(hFrom, dayMs), hTo-hTo%dayMs
	if step%dayMs == 0 && dFrom < dTo {
		if err := run(qs.daily, dFrom, dTo); err != nil {
			return err
		}
		if hFrom < dFrom {
			if err := hourly(hFrom, dFrom); err != nil {
				return err
			}
		}
		if dTo < hTo {
			if err := hourly(dTo, hTo); err != nil {
				return err
			}
		}
	} else if err := hourly(hFrom, hTo); err != nil {
		return err
	}
	if err := run(qs.tail, rolled, hFrom, hTo); err != nil {
		return err
	}
	if from < hFrom {
		if err := run(qs.edge, from, hFrom); err != nil {
			return err
		}
	}
	if hTo < to {
		return run(qs.edge, hTo, to)
	}
	return nil
}

func ceilHour(ms int64) int64 { return ceilTo(ms, hourMs) }

func ceilTo(ms, unit int64) int64 {
	if r := ms % unit; r != 0 {
		return ms - r + unit
	}
	return ms
}

func isNoSuchTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// KeyTotalsSince sums each relay key's usage since t (one row per key name
// and hash), for seeding budgets at start. It reads the rollups for whole
// hours, like Usage.
func (db *DB) KeyTotalsSince(ctx context.Context, since time.Time) ([]KeyTotals, error) {
	from := since.UnixMilli()
	merged := map[[2]string]*KeyTotals{}
	var out []*KeyTotals
	err := db.readUsage(ctx, func(c *sql.Conn, schema string) error {
		return db.usageOf(ctx, c, schema, GroupKey, 0, from, 1<<62, func(_ int64, name, hash string, r UsageRow) {
			k := [2]string{name, hash}
			t := merged[k]
			if t == nil {
				t = &KeyTotals{KeyName: name, KeyHash: hash}
				merged[k] = t
				out = append(out, t)
			}
			t.Requests += r.Requests
			t.InputTokens += r.InputTokens
			t.OutputTokens += r.OutputTokens
			t.CacheCreationTokens += r.CacheCreationTokens
			t.CacheReadTokens += r.CacheReadTokens
			t.Tokens += r.InputTokens + r.OutputTokens + r.CacheCreationTokens + r.CacheReadTokens
			t.CostMicros += r.CostMicros
			t.CostUnknown += r.CostUnknown
		})
	})
	if err != nil {
		return nil, err
	}
	res := make([]KeyTotals, len(out))
	for i, t := range out {
		res[i] = *t
	}
	return res, nil
}
