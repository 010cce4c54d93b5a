package store

import (
	"strings"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// Measure is one of the sums kept for every group of usage, named once
// here: the usage tables' columns and upserts, the usage queries' sums and
// the order they are scanned in, UsageRow's arithmetic and the cluster's
// Redis fields all follow from Measures. Adding a measure is adding a row
// (and a migration adding its columns: TestMeasuresMatchTheSchema checks).
type Measure struct {
	// Name is its column in usage_daily.
	Name string
	// Hourly is its column in usage_hourly and rollup_batch; "" for a
	// measure usage_hourly derives from its status_class instead.
	Hourly string
	// FromRaw is what a rollup step sums from raw rows into Hourly.
	FromRaw string
	// HourlySum is its sum over usage_hourly rows; RawSum over raw rows
	// (usage_stats); LegacySum over the raw rows of a database written
	// before rollups (no costs), "" when RawSum serves.
	HourlySum, RawSum, LegacySum string
	// Of is what one record adds to it; HourlyOf what it adds to Hourly
	// when that differs (nil: Of).
	Of, HourlyOf func(r *usage.Record) int64
	// Field is its field in a UsageRow.
	Field func(r *UsageRow) *int64
}

// The SQL of okClass/okStatus and errClass/errStatus says which requests count as successes (2xx, 3xx)
// and errors (400 and up, or no status at all), in SQL and in Go.
const (
	okClass   = `status_class IN (2, 3)`
	errClass  = `(status_class >= 4 OR status_class = 0)`
	okStatus  = `status BETWEEN 200 AND 399`
	errStatus = `(status >= 400 OR status = 0)`
)

func isOK(r *usage.Record) bool  { return r.Status >= 200 && r.Status <= 399 }
func isErr(r *usage.Record) bool { return r.Status >= 400 || r.Status == 0 }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// tokens is a token measure: a column of the same name everywhere.
func tokens(col string, of func(r *usage.Record) int64, field func(r *UsageRow) *int64) Measure {
	return Measure{Name: col, Hourly: col, FromRaw: "SUM(" + col + ")", HourlySum: "SUM(" + col + ")", RawSum: "SUM(" + col + ")", Of: of, Field: field}
}

// Measures are the usage measures, in the order every query selects them
// and the cluster encodes them (append only: the cluster's Redis values of
// older relays are read by position).
var Measures = [...]Measure{
	{Name: "requests", Hourly: "requests", FromRaw: "COUNT(*)", HourlySum: "SUM(requests)", RawSum: "COUNT(*)",
		Of: func(*usage.Record) int64 { return 1 }, Field: func(r *UsageRow) *int64 { return &r.Requests }},
	{Name: "errors", HourlySum: "SUM(CASE WHEN " + errClass + " THEN requests ELSE 0 END)", RawSum: "SUM(CASE WHEN " + errStatus + " THEN 1 ELSE 0 END)",
		Of: func(r *usage.Record) int64 { return b2i(isErr(r)) }, Field: func(r *UsageRow) *int64 { return &r.Errors }},
	tokens("input_tokens", func(r *usage.Record) int64 { return r.InputTokens }, func(r *UsageRow) *int64 { return &r.InputTokens }),
	tokens("output_tokens", func(r *usage.Record) int64 { return r.OutputTokens }, func(r *UsageRow) *int64 { return &r.OutputTokens }),
	tokens("cache_creation_tokens", func(r *usage.Record) int64 { return r.CacheCreationTokens }, func(r *UsageRow) *int64 { return &r.CacheCreationTokens }),
	tokens("cache_read_tokens", func(r *usage.Record) int64 { return r.CacheReadTokens }, func(r *UsageRow) *int64 { return &r.CacheReadTokens }),
	{Name: "cost_micros", Hourly: "cost_micros", FromRaw: "SUM(COALESCE(cost_micros, 0))", HourlySum: "SUM(cost_micros)", RawSum: "SUM(COALESCE(cost_micros, 0))", LegacySum: "0",
		Of: func(r *usage.Record) int64 {
			if r.CostKnown {
				return r.CostMicros
			}
			return 0
		}, Field: func(r *UsageRow) *int64 { return &r.CostMicros }},
	{Name: "cost_unknown", Hourly: "cost_unknown", FromRaw: "SUM(cost_micros IS NULL)", HourlySum: "SUM(cost_unknown)", RawSum: "SUM(cost_micros IS NULL)", LegacySum: "COUNT(*)",
		Of: func(r *usage.Record) int64 { return b2i(!r.CostKnown) }, Field: func(r *UsageRow) *int64 { return &r.CostUnknown }},
	{Name: "successes", HourlySum: "SUM(CASE WHEN " + okClass + " THEN requests ELSE 0 END)", RawSum: "SUM(CASE WHEN " + okStatus + " THEN 1 ELSE 0 END)",
		Of: func(r *usage.Record) int64 { return b2i(isOK(r)) }, Field: func(r *UsageRow) *int64 { return &r.Successes }},
	// usage_hourly sums the latency of every request (its rows are per
	// status class); the measure is the successes' only.
	{Name: "latency_ms_sum", Hourly: "latency_ms_sum", FromRaw: "SUM(latency_ms)",
		HourlySum: "SUM(CASE WHEN " + okClass + " THEN latency_ms_sum ELSE 0 END)", RawSum: "SUM(CASE WHEN " + okStatus + " THEN latency_ms ELSE 0 END)",
		Of:       func(r *usage.Record) int64 { return b2i(isOK(r)) * r.Latency.Milliseconds() },
		HourlyOf: func(r *usage.Record) int64 { return r.Latency.Milliseconds() }, Field: func(r *UsageRow) *int64 { return &r.LatencyMsSum }},
	{Name: "ttfb_ms_sum", Hourly: "ttfb_ms_sum", FromRaw: "SUM(ttfb_ms)",
		HourlySum: "SUM(CASE WHEN " + okClass + " THEN ttfb_ms_sum ELSE 0 END)", RawSum: "SUM(CASE WHEN " + okStatus + " THEN ttfb_ms ELSE 0 END)",
		Of:       func(r *usage.Record) int64 { return b2i(isOK(r)) * r.TTFB.Milliseconds() },
		HourlyOf: func(r *usage.Record) int64 { return r.TTFB.Milliseconds() }, Field: func(r *UsageRow) *int64 { return &r.TTFBMsSum }},
}

// NumMeasures is len(Measures).
const NumMeasures = len(Measures)

// hourlyOf is what one record adds to m's usage_hourly column.
func hourlyOf(m *Measure, r *usage.Record) int64 {
	if m.HourlyOf != nil {
		return m.HourlyOf(r)
	}
	return m.Of(r)
}

// measureSQL joins one expression per measure (those each returns "" for
// are left out).
func measureSQL(f func(m *Measure) string) string {
	var parts []string
	for i := range Measures {
		if s := f(&Measures[i]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

// addedTo is "col = col + excluded.col" for each column, an upsert's SET.
func addedTo(cols func(m *Measure) string) string {
	return measureSQL(func(m *Measure) string {
		if c := cols(m); c != "" {
			return c + " = " + c + " + excluded." + c
		}
		return ""
	})
}

func measureName(m *Measure) string   { return m.Name }
func measureHourly(m *Measure) string { return m.Hourly }

// The measures' SQL, built once from Measures.
var (
	// rollupSums, rawSums, legacySums and dailySums are the sums every
	// usage query selects after its bucket and two group columns, in
	// Measures' order (scanRow's).
	rollupSums = measureSQL(func(m *Measure) string { return m.HourlySum })
	rawSums    = measureSQL(func(m *Measure) string { return m.RawSum })
	legacySums = measureSQL(func(m *Measure) string {
		if m.LegacySum != "" {
			return m.LegacySum
		}
		return m.RawSum
	})
	dailySums = measureSQL(func(m *Measure) string { return "SUM(" + m.Name + ")" })
	// hourlyMeasureColumns are usage_hourly's measure columns.
	hourlyMeasureColumns = measureSQL(measureHourly)
	// hourlyFromRaw sums raw rows into them.
	hourlyFromRaw = measureSQL(func(m *Measure) string { return m.FromRaw })
	hourlyUpsert  = addedTo(measureHourly)
	// dailyMeasureColumns are usage_daily's measure columns.
	dailyMeasureColumns = measureSQL(measureName)
	dailyUpsertSet      = addedTo(measureName)
	// rollupBatchMeasures declares the batch table's measure columns.
	rollupBatchMeasures = measureSQL(func(m *Measure) string {
		if m.Hourly == "" {
			return ""
		}
		return m.Hourly + " INTEGER"
	})
)

// RowOf is one record's usage as a row of sums.
func RowOf(r *usage.Record) UsageRow {
	var row UsageRow
	for i := range Measures {
		*Measures[i].Field(&row) = Measures[i].Of(r)
	}
	return row
}

// add adds o's sums to r.
func (r *UsageRow) add(o UsageRow) {
	for i := range Measures {
		*Measures[i].Field(r) += *Measures[i].Field(&o)
	}
}

// scanDest appends a destination for each measure of r, in Measures' order.
func (r *UsageRow) scanDest(dst []any) []any {
	for i := range Measures {
		dst = append(dst, Measures[i].Field(r))
	}
	return dst
}
