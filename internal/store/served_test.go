package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// schemaBeforeServedModel is the number of migrations before the served model.
const schemaBeforeServedModel = 8

// oldUsage writes, in a database of the schema before the served model, the
// rollups of one hour three days before (an hourly row and its four daily
// rows, 5 requests of gpt-5), and two raw rows not rolled up yet: one more
// gpt-5 request in that hour, and a claude-sonnet-4-5 one an hour before
// now.
func oldUsage(t *testing.T, path string, now time.Time) (hour time.Time) {
	t.Helper()
	old, err := openUpTo(path, schemaBeforeServedModel)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	hour = now.Add(-72 * time.Hour).Truncate(24 * time.Hour).Add(5 * time.Hour)
	day := hour.Truncate(24 * time.Hour).UnixMilli()
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO usage_stats (ts_ms, client_api_key_hash, key_name, account_id, platform, model, input_tokens, status, cost_micros)
			VALUES (?, 'h1', 'alice', 'acct', 'claude', 'claude-sonnet-4-5', 100, 200, 7)`, []any{now.Add(-time.Hour).UnixMilli()}},
		{`INSERT INTO usage_stats (ts_ms, client_api_key_hash, key_name, account_id, platform, model, input_tokens, status, cost_micros)
			VALUES (?, 'h1', 'alice', 'acct', 'openai', 'gpt-5', 100, 200, 7)`, []any{hour.Add(10 * time.Minute).UnixMilli()}},
		{`INSERT INTO usage_hourly (hour_ms, key_hash, key_name, account_id, model, platform, status_class, requests, input_tokens, output_tokens,
			cache_creation_tokens, cache_read_tokens, cost_micros, cost_unknown, latency_ms_sum, ttfb_ms_sum)
			VALUES (?, 'h1', 'alice', 'acct', 'gpt-5', 'openai', 2, 5, 500, 50, 0, 0, 70, 0, 1000, 100)`, []any{hour.UnixMilli()}},
	}
	for _, d := range []struct{ dim, g1, g2 string }{{"key", "alice", "h1"}, {"account", "acct", ""}, {"model", "gpt-5", ""}, {"platform", "openai", ""}} {
		stmts = append(stmts, struct {
			sql  string
			args []any
		}{`INSERT INTO usage_daily (day_ms, dim, g1, g2, requests, errors, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
			cost_micros, cost_unknown, successes, latency_ms_sum, ttfb_ms_sum) VALUES (?, ?, ?, ?, 5, 0, 500, 50, 0, 0, 70, 0, 5, 1000, 100)`,
			[]any{day, d.dim, d.g1, d.g2}})
	}
	for _, s := range stmts {
		if _, err := old.conn().Exec(s.sql, s.args...); err != nil {
			t.Fatal(err)
		}
	}
	// The rollup SQL is the new schema's.
	if _, err := old.RollupStep(context.Background(), 100); err == nil {
		t.Fatal("the old schema rolled up with the new rollup SQL: the test's old database is not old")
	}
	return hour
}

func groups(t *testing.T, db *DB, q UsageQuery) map[string]int64 {
	t.Helper()
	rows, err := db.Usage(context.Background(), q)
	if err != nil {
		t.Fatalf("usage by %q: %v", q.By, err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Group] = r.Requests
	}
	return out
}

// TestServedModelMigration upgrades a database with raw rows and rollups
// (usage_hourly keeps its key: nothing is rewritten): every old row, raw,
// hourly or daily, reads as served by the model asked, before and after the
// raw rows are rolled up (an old raw row rolled up after the upgrade counts
// once); new records group by the model served, rolled up or not.
func TestServedModelMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "relay.db")
	hour := oldUsage(t, path, time.Now().UTC())
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC() // after the upgrade, as a new relay's requests are
	recs := []usage.Record{
		{Time: now, KeyHash: "h1", AccountID: "oa", Platform: "openai", Model: "claude-sonnet-4-5", ServedModel: "gpt-5-codex",
			Usage: provider.Usage{InputTokens: 10}, Status: 200, CostKnown: true, CostMicros: 3},
		{Time: now, KeyHash: "h1", AccountID: "acct", Platform: "claude", Model: "claude-sonnet-4-5", ServedModel: "claude-sonnet-4-5", Status: 200},
	}
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var named, codex int
	if err := db.conn().QueryRow(`SELECT COUNT(*) FILTER (WHERE served_model = 'claude-sonnet-4-5'), COUNT(*) FILTER (WHERE served_model = 'gpt-5-codex')
		FROM usage_stats`).Scan(&named, &codex); err != nil || named != 0 || codex != 1 {
		t.Fatalf("raw served_model: %d rows name the model asked, %d gpt-5-codex (%v); want 0 and 1", named, codex, err)
	}
	day := hour.Truncate(24 * time.Hour)
	tests := []struct {
		name              string
		q                 UsageQuery
		byModel, byServed map[string]int64
	}{
		{"an old day", UsageQuery{From: day, To: day.Add(24 * time.Hour)}, map[string]int64{"gpt-5": 6}, map[string]int64{"gpt-5": 6}},
		{"an old hour", UsageQuery{From: hour, To: hour.Add(time.Hour)}, map[string]int64{"gpt-5": 6}, map[string]int64{"gpt-5": 6}},
		{"since the old day", UsageQuery{From: day}, map[string]int64{"gpt-5": 6, "claude-sonnet-4-5": 3},
			map[string]int64{"gpt-5": 6, "claude-sonnet-4-5": 2, "gpt-5-codex": 1}},
		{"the last two hours", UsageQuery{From: now.Add(-2 * time.Hour)}, map[string]int64{"claude-sonnet-4-5": 3},
			map[string]int64{"claude-sonnet-4-5": 2, "gpt-5-codex": 1}},
	}
	for _, stage := range []string{"raw rows", "rolled up", "rollups alone"} {
		switch stage {
		case "rolled up":
			if _, err := db.RollupStep(ctx, 1000); err != nil {
				t.Fatal(err)
			}
		case "rollups alone":
			if _, err := db.conn().Exec(`DELETE FROM usage_stats`); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range tests {
			t.Run(stage+"/"+tt.name, func(t *testing.T) {
				q := tt.q
				if q.By = GroupModel; !reflect.DeepEqual(groups(t, db, q), tt.byModel) {
					t.Errorf("by model: %v, want %v", groups(t, db, q), tt.byModel)
				}
				if q.By = GroupServedModel; !reflect.DeepEqual(groups(t, db, q), tt.byServed) {
					t.Errorf("by served model: %v, want %v", groups(t, db, q), tt.byServed)
				}
			})
		}
	}
	// The served hours hold the rows rolled up after the upgrade.
	var served, requests int64
	if err := db.conn().QueryRow(`SELECT COUNT(DISTINCT served_model), SUM(requests) FROM usage_hourly_served WHERE hour_ms > ?`, hour.UnixMilli()).Scan(&served, &requests); err != nil {
		t.Fatal(err)
	}
	if served != 2 || requests != 3 {
		t.Errorf("usage_hourly_served after the old hour: %d served models, %d requests; want 2 and 3", served, requests)
	}
}

// TestServedModelOfAnOlderDatabaseReadOnly groups a database that predates
// the served model, opened read-only (not migrated, as `ccrelay stats`
// opens another relay's file): every request was served as asked.
func TestServedModelOfAnOlderDatabaseReadOnly(t *testing.T) {
	now := time.Now().UTC()
	path := filepath.Join(t.TempDir(), "relay.db")
	hour := oldUsage(t, path, now)
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := UsageQuery{From: hour.Truncate(24 * time.Hour), By: GroupModel}
	want := groups(t, db, q)
	q.By = GroupServedModel
	if got := groups(t, db, q); !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Errorf("by served model %v, want %v (by model)", got, want)
	}
	if _, err := db.UsageSeries(context.Background(), hour, time.Time{}, time.Hour, GroupServedModel); err != nil {
		t.Errorf("series by served model: %v", err)
	}
}
