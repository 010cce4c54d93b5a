package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"time"
)

// OpenReadOnly opens an existing database for reading only: it never creates
// the file, runs no migration and takes no write lock, so `ccrelay stats` and
// shell completion can read it while `ccrelay serve` writes (WAL lets readers
// and the writer proceed together). A missing file is fs.ErrNotExist.
func OpenReadOnly(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// mode=ro in a URI filename; the path is escaped so '?' or '#' in it
	// cannot be read as URI syntax.
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	dsn := u.String() + "?mode=ro&_busy_timeout=5000"
	sdb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(2)
	if err := sdb.Ping(); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{path: path}
	db.sqlp.Store(sdb)
	return db, nil
}

// OpenReadOnlyMany opens several relays' databases as one, for cluster-wide
// statistics: the first is opened read-only and the others are attached
// read-only; usage queries then read the union of their usage tables, so
// totals and percentiles are exact across relays.
func OpenReadOnlyMany(paths []string) (*DB, error) {
	if len(paths) == 0 {
		return nil, errors.New("no database given")
	}
	db, err := OpenReadOnly(paths[0])
	if err != nil || len(paths) == 1 {
		return db, err
	}
	// ATTACH is per connection: keep to one.
	db.conn().SetMaxOpenConns(1)
	union := "SELECT * FROM main.usage_stats"
	for i, p := range paths[1:] {
		if _, err := os.Stat(p); err != nil {
			db.Close()
			// Not fs.ErrNotExist: one missing file of several is an error,
			// not "nothing recorded yet".
			return nil, fmt.Errorf("open database %s: %v", p, err)
		}
		u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: p}).EscapedPath(), RawQuery: "mode=ro"}
		alias := fmt.Sprintf("db%d", i+1)
		if _, err := db.conn().Exec(`ATTACH DATABASE ? AS `+alias, u.String()); err != nil {
			db.Close()
			return nil, fmt.Errorf("attach database %s: %w", p, err)
		}
		union += " UNION ALL SELECT * FROM " + alias + ".usage_stats"
	}
	db.usageFrom = "(" + union + ")"
	return db, nil
}

// usageTable is what usage queries read: the usage table, or the union of
// several attached databases' tables.
func (db *DB) usageTable() string {
	if db.usageFrom != "" {
		return db.usageFrom
	}
	return "usage_stats"
}

// IsNotExist reports whether err says the database file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Usage groupings accepted by UsageSummary.
const (
	GroupNone     = ""
	GroupKey      = "key"
	GroupAccount  = "account"
	GroupModel    = "model"
	GroupPlatform = "platform"
)

// groupColumns maps a grouping to its column; the only values ever put into
// the SQL text, so no caller string reaches the query.
var groupColumns = map[string]string{
	GroupNone:     "''",
	GroupKey:      "client_api_key_hash",
	GroupAccount:  "account_id",
	GroupModel:    "model",
	GroupPlatform: "platform",
}

// UsageGroup aggregates the usage rows of one group (one relay key, account,
// model or platform; everything when ungrouped).
type UsageGroup struct {
	// Group is the grouping value: the key hash, account id, model or
	// platform ("" when ungrouped).
	Group string `json:"group,omitempty"`
	// Requests counts every recorded request; Errors those that ended with a
	// status of 400 or more (or none at all).
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Tokens as the upstream reported them.
	InputTokens         int64 `json:"input_tokens"`
	OutputTokens        int64 `json:"output_tokens"`
	CacheCreationTokens int64 `json:"cache_creation_tokens"`
	CacheReadTokens     int64 `json:"cache_read_tokens"`
	// Latency (whole request) and time to first byte percentiles, in
	// milliseconds, over successful requests only (a fast error would
	// otherwise look like good latency). Nearest-rank; 0 when there is none.
	LatencyP50Ms int64 `json:"latency_p50_ms"`
	LatencyP95Ms int64 `json:"latency_p95_ms"`
	TTFBP50Ms    int64 `json:"ttfb_p50_ms"`
	TTFBP95Ms    int64 `json:"ttfb_p95_ms"`
}

// UsageSummary aggregates the usage recorded in [since, until) by group
// (GroupNone, GroupKey, GroupAccount, GroupModel or GroupPlatform). Groups
// come busiest first. A zero since means from the beginning, a zero until
// means up to now and beyond.
func (db *DB) UsageSummary(ctx context.Context, since, until time.Time, group string) ([]UsageGroup, error) {
	col, ok := groupColumns[group]
	if !ok {
		return nil, fmt.Errorf("unknown usage grouping %q", group)
	}
	from, to := int64(0), int64(1<<62)
	if !since.IsZero() {
		from = since.UnixMilli()
	}
	if !until.IsZero() {
		to = until.UnixMilli()
	}
	rows, err := db.conn().QueryContext(ctx, `SELECT `+col+`, COUNT(*),
		SUM(CASE WHEN status >= 400 OR status = 0 THEN 1 ELSE 0 END),
		SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), SUM(cache_read_tokens)
		FROM `+db.usageTable()+` WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1`, from, to)
	if err != nil {
		return nil, fmt.Errorf("query usage: %w", err)
	}
	defer rows.Close()
	byGroup := map[string]*UsageGroup{}
	var out []*UsageGroup
	for rows.Next() {
		g := &UsageGroup{}
		if err := rows.Scan(&g.Group, &g.Requests, &g.Errors, &g.InputTokens, &g.OutputTokens, &g.CacheCreationTokens, &g.CacheReadTokens); err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		byGroup[g.Group] = g
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	rows.Close()

	for _, m := range []struct {
		column   string
		p50, p95 func(*UsageGroup) *int64
	}{
		{"latency_ms", func(g *UsageGroup) *int64 { return &g.LatencyP50Ms }, func(g *UsageGroup) *int64 { return &g.LatencyP95Ms }},
		{"ttfb_ms", func(g *UsageGroup) *int64 { return &g.TTFBP50Ms }, func(g *UsageGroup) *int64 { return &g.TTFBP95Ms }},
	} {
		if err := db.percentiles(ctx, col, m.column, from, to, func(group string, p50, p95 int64) {
			if g := byGroup[group]; g != nil {
				*m.p50(g), *m.p95(g) = p50, p95
			}
		}); err != nil {
			return nil, err
		}
	}

	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Group < out[j].Group
	})
	res := make([]UsageGroup, len(out))
	for i, g := range out {
		res[i] = *g
	}
	return res, nil
}

// percentiles computes the nearest-rank 50th and 95th percentile of value per
// group with window functions, so only one row per group leaves SQLite.
// value and group are constants of this file, never caller input.
func (db *DB) percentiles(ctx context.Context, group, value string, from, to int64, set func(group string, p50, p95 int64)) error {
	rows, err := db.conn().QueryContext(ctx, `WITH ranked AS (
			SELECT `+group+` AS g, `+value+` AS v,
				ROW_NUMBER() OVER (PARTITION BY `+group+` ORDER BY `+value+`) AS rn,
				COUNT(*) OVER (PARTITION BY `+group+`) AS n
			FROM `+db.usageTable()+`
			WHERE ts_ms >= ? AND ts_ms < ? AND status BETWEEN 200 AND 399)
		SELECT g,
			MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN v END),
			MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN v END)
		FROM ranked GROUP BY g`, from, to)
	if err != nil {
		return fmt.Errorf("query %s percentiles: %w", value, err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		var p50, p95 sql.NullInt64
		if err := rows.Scan(&g, &p50, &p95); err != nil {
			return fmt.Errorf("read %s percentiles: %w", value, err)
		}
		set(g, p50.Int64, p95.Int64)
	}
	return rows.Err()
}
