package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/testutil"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// oracle sums records the slow, obvious way: what Usage must return.
func oracle(recs []usage.Record, from, to time.Time, by string) []UsageRow {
	m := map[string]*UsageRow{}
	for _, u := range recs {
		if (!from.IsZero() && u.Time.Before(from)) || (!to.IsZero() && !u.Time.Before(to)) {
			continue
		}
		var g, name, hash string
		switch by {
		case GroupKey:
			name, hash, g = u.KeyName, u.KeyHash, u.KeyName
			if g == "" {
				g = u.KeyHash
			}
		case GroupAccount:
			g = u.AccountID
		case GroupModel:
			g = u.Model
		case GroupServedModel:
			g = u.Served()
		case GroupPlatform:
			g = u.Platform
		}
		r := m[g]
		if r == nil {
			r = &UsageRow{Group: g, KeyName: name, KeyHash: hash}
			m[g] = r
		} else if r.KeyHash != hash {
			r.KeyHash = ""
		}
		r.Requests++
		if u.Status >= 400 || u.Status == 0 {
			r.Errors++
		}
		r.InputTokens += u.InputTokens
		r.OutputTokens += u.OutputTokens
		r.CacheCreationTokens += u.CacheCreationTokens
		r.CacheReadTokens += u.CacheReadTokens
		if u.CostKnown {
			r.CostMicros += u.CostMicros
		} else {
			r.CostUnknown++
		}
		if u.Status >= 200 && u.Status <= 399 {
			r.Successes++
			r.LatencyMsSum += u.Latency.Milliseconds()
			r.TTFBMsSum += u.TTFB.Milliseconds()
		}
	}
	out := []UsageRow{}
	for _, r := range m {
		out = append(out, *r)
	}
	sortRows(out)
	return out
}

func sortRows(rows []UsageRow) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
}

// randomRecords spreads n records over the three days before now, written
// in shuffled time order (as late-recorded streams arrive), with key names,
// known and unknown costs, successes and errors.
func randomRecords(n int, now time.Time, seed uint64) []usage.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	keys := []struct{ name, hash string }{{"alice", "h1"}, {"alice", "h2"}, {"bob", "h3"}, {"", "h4"}, {"", usage.Anonymous}}
	models := []struct{ model, platform string }{{"claude-sonnet-4-5", "claude"}, {"gpt-5", "openai"}, {"gemini-2.5-pro", "gemini"}}
	statuses := []int{200, 200, 200, 200, 301, 400, 429, 500, 0, 499}
	recs := make([]usage.Record, n)
	for i := range recs {
		k, m := keys[rng.IntN(len(keys))], models[rng.IntN(len(models))]
		u := usage.Record{
			Time:    now.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour)))).Truncate(time.Millisecond),
			KeyHash: k.hash, KeyName: k.name, AccountID: fmt.Sprintf("acct-%d", rng.IntN(4)), Platform: m.platform, Model: m.model,
			Usage: provider.Usage{InputTokens: rng.Int64N(5000), OutputTokens: rng.Int64N(900), CacheCreationTokens: rng.Int64N(300),
				CacheReadTokens: rng.Int64N(10000)},
			Status: statuses[rng.IntN(len(statuses))], Latency: time.Duration(rng.IntN(60000)) * time.Millisecond,
			TTFB: time.Duration(rng.IntN(3000)) * time.Millisecond, Attempts: 1,
		}
		if m.model != "gemini-2.5-pro" {
			u.CostKnown, u.CostMicros = true, rng.Int64N(100000)
		}
		// Every seventh Claude request is served by an OpenAI account as
		// gpt-5-codex (a route's fallback); some name their served model
		// even when it is the one asked.
		switch {
		case m.model == "claude-sonnet-4-5" && i%7 == 0:
			u.ServedModel, u.Platform = "gpt-5-codex", "openai"
		case i%11 == 0:
			u.ServedModel = u.Model
		}
		recs[i] = u
	}
	return recs
}

func checkUsage(t *testing.T, db *DB, recs []usage.Record, windows [][2]time.Time) {
	t.Helper()
	for _, by := range []string{GroupNone, GroupKey, GroupAccount, GroupModel, GroupPlatform, GroupServedModel} {
		for _, w := range windows {
			got, err := db.Usage(context.Background(), UsageQuery{From: w[0], To: w[1], By: by})
			if err != nil {
				t.Fatal(err)
			}
			want := oracle(recs, w[0], w[1], by)
			if got == nil {
				got = []UsageRow{}
			}
			sortRows(got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("by %q, window %v .. %v:\n got  %+v\n want %+v", by, w[0], w[1], got, want)
			}
		}
	}
}

// TestUsageExactAtEveryRollupStage checks that Usage returns exactly the sums
// of the raw records for every grouping and many windows (whole hours,
// partial hours, open ends), before any roll-up, midway through one, and
// after it.
func TestUsageExactAtEveryRollupStage(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 37, 12, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := randomRecords(3000, now, 7)
	ctx := context.Background()
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	hour := now.Truncate(time.Hour)
	windows := [][2]time.Time{
		{}, {now.Add(-24 * time.Hour), time.Time{}}, {now.Add(-90 * time.Minute), time.Time{}},
		{hour.Add(-30 * time.Hour), hour.Add(-2 * time.Hour)}, {now.Add(-50*time.Hour - 17*time.Minute), now.Add(-3*time.Hour + 5*time.Second)},
		{now.Add(-10 * time.Minute), now.Add(-5 * time.Minute)}, {time.Time{}, now.Add(-40 * time.Hour)},
		{now.Add(time.Hour), time.Time{}},
	}
	t.Run("raw only", func(t *testing.T) { checkUsage(t, db, recs, windows) })
	if _, err := db.RollupStep(ctx, 1234); err != nil {
		t.Fatal(err)
	}
	t.Run("partly rolled up", func(t *testing.T) { checkUsage(t, db, recs, windows) })
	// Late records (a long stream recorded when it ends) join hours
	// already rolled up.
	late := randomRecords(200, now, 8)
	if err := db.InsertUsage(ctx, late); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, late...)
	for {
		n, err := db.RollupStep(ctx, 500)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	t.Run("rolled up", func(t *testing.T) { checkUsage(t, db, recs, windows) })

	more := randomRecords(100, now, 9)
	if err := db.InsertUsage(ctx, more); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, more...)
	t.Run("rolled up plus a raw tail", func(t *testing.T) { checkUsage(t, db, recs, windows) })
}

// TestUsageAfterPruning: raw rows older than the retention are gone, the
// rollups keep their sums; a window starting inside a pruned hour reads that
// whole hour.
func TestUsageAfterPruning(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 37, 12, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	recs := randomRecords(3000, now, 11)
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	retention := 30*time.Hour + 20*time.Minute
	// Not rolled up yet: nothing may be pruned.
	if n, err := db.PruneStep(ctx, now.Add(-retention), 100); err != nil || n != 0 {
		t.Fatalf("pruned %d rows not rolled up (err %v)", n, err)
	}
	if err := Maintain(ctx, db, retention, now); err != nil {
		t.Fatal(err)
	}
	cutoff := now.Add(-retention).Truncate(time.Hour)
	var raw int
	if err := db.conn().QueryRow(`SELECT count(*) FROM usage_stats WHERE ts_ms < ?`, cutoff.UnixMilli()).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != 0 {
		t.Fatalf("%d raw rows older than the cutoff survived", raw)
	}
	hour := now.Truncate(time.Hour)
	checkUsage(t, db, recs, [][2]time.Time{
		{}, {now.Add(-24 * time.Hour), time.Time{}}, {hour.Add(-60 * time.Hour), hour.Add(-35 * time.Hour)},
		{cutoff, now.Add(-time.Minute)}, {time.Time{}, cutoff},
	})
	// Inside the pruned hours a partial-hour edge widens to its hour.
	from := cutoff.Add(-5*time.Hour + 20*time.Minute)
	got, err := db.Usage(ctx, UsageQuery{From: from})
	if err != nil {
		t.Fatal(err)
	}
	if want := oracle(recs, from.Truncate(time.Hour), time.Time{}, GroupNone); !reflect.DeepEqual(got, want) {
		t.Fatalf("from inside a pruned hour: got %+v, want the whole hour %+v", got, want)
	}
}

func TestUsageByKeyMergesAName(t *testing.T) {
	now := time.Now()
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	recs := []usage.Record{
		{Time: now, KeyHash: "h1", KeyName: "alice", Status: 200, Usage: provider.Usage{InputTokens: 10}, CostKnown: true, CostMicros: 5},
		{Time: now, KeyHash: "h2", KeyName: "alice", Status: 200, Usage: provider.Usage{InputTokens: 1}, CostKnown: true, CostMicros: 7},
		{Time: now, KeyHash: "h3", Status: 200, CostKnown: true},
		{Time: now, KeyHash: "h4", KeyName: "carol", Status: 500},
	}
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := db.Usage(ctx, UsageQuery{By: GroupKey})
	if err != nil {
		t.Fatal(err)
	}
	want := []UsageRow{
		{Group: "alice", KeyName: "alice", Requests: 2, InputTokens: 11, CostMicros: 12, Successes: 2},
		{Group: "carol", KeyName: "carol", KeyHash: "h4", Requests: 1, Errors: 1, CostUnknown: 1},
		{Group: "h3", KeyHash: "h3", Requests: 1, Successes: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !got[0].CostKnown() || got[1].CostKnown() {
		t.Error("CostKnown: alice's cost is known, carol's is not")
	}

	totals, err := db.KeyTotalsSince(ctx, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(totals, func(i, j int) bool { return totals[i].KeyHash < totals[j].KeyHash })
	wantTotals := []KeyTotals{
		{KeyName: "alice", KeyHash: "h1", Requests: 1, Tokens: 10, InputTokens: 10, CostMicros: 5},
		{KeyName: "alice", KeyHash: "h2", Requests: 1, Tokens: 1, InputTokens: 1, CostMicros: 7},
		{KeyHash: "h3", Requests: 1},
		{KeyName: "carol", KeyHash: "h4", Requests: 1, CostUnknown: 1},
	}
	if !reflect.DeepEqual(totals, wantTotals) {
		t.Fatalf("key totals:\n got  %+v\nwant %+v", totals, wantTotals)
	}
}

func TestUsageUnknownGroup(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Usage(context.Background(), UsageQuery{By: "id; DROP TABLE usage_stats"}); err == nil {
		t.Fatal("an unknown grouping must be refused")
	}
}

// TestUsageQueryPlans runs EXPLAIN QUERY PLAN on every usage query (each
// grouping, each part) and on the roll-up and pruning statements, and fails
// on a full table scan.
func TestUsageQueryPlans(t *testing.T) {
	db := planDB(t)
	type q struct {
		name, text string
		args       []any
	}
	var qs []q
	for _, by := range []string{GroupNone, GroupKey, GroupAccount, GroupModel, GroupPlatform, GroupServedModel} {
		u := buildUsageQueries("main", by, false)
		qs = append(qs,
			q{"daily by " + by, u.daily, []any{1, 2}},
			q{"hourly by " + by, u.hourly, []any{1, 2}},
			q{"tail by " + by, u.tail, []any{1, 2, 3}},
			q{"edge by " + by, u.edge, []any{1, 2}})
		if u.served != "" {
			qs = append(qs, q{"served hours by " + by, u.served, []any{1, 2}})
		}
		// The series' queries (UsageSeries): the same, per time bucket.
		s := buildQueries("main", by, false, true)
		qs = append(qs,
			q{"series daily by " + by, s.daily, []any{dayMs, dayMs, 1, 2}},
			q{"series hourly by " + by, s.hourly, []any{hourMs, hourMs, 1, 2}},
			q{"series tail by " + by, s.tail, []any{hourMs, hourMs, 1, 2, 3}},
			q{"series edge by " + by, s.edge, []any{60000, 60000, 1, 2}})
	}
	// A roll-up step's batch table holds only that step's groups and is
	// meant to be read whole; the raw rows are read by id range.
	for i, d := range dailySumSQL(`temp.rollup_batch`, true) {
		qs = append(qs, q{"daily rollup " + dailyDims[i].dim, d, nil})
	}
	for _, d := range dailyFromHourlySQL() {
		qs = append(qs, q{"generated days", d, []any{1, 2}})
	}
	qs = append(qs,
		q{"rollup batch", rollupBatchSQL, []any{1, 2}},
		q{"rollup hourly", hourlyFromBatchSQL, nil},
		q{"rollup served hours", servedFromBatchSQL, nil},
		q{"prune", pruneSQL, []any{1, 2, 3}},
		q{"rollup state", `SELECT rolled_id, pruned_before_ms FROM main.usage_rollup_state WHERE id = 1`, nil},
		q{"max id", `SELECT COALESCE(MAX(id), 0) FROM usage_stats`, nil},
	)
	// One connection: the batch table is the connection's own.
	conn, err := db.conn().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), rollupBatchTable); err != nil {
		t.Fatal(err)
	}
	for _, tt := range qs {
		t.Run(tt.name, func(t *testing.T) {
			plan := queryPlan(t, conn, tt.text, tt.args...)
			for _, d := range plan {
				if strings.HasPrefix(d, "SCAN ") && !strings.HasPrefix(d, "SCAN CONSTANT") && !strings.HasPrefix(d, "SCAN temp.rollup_batch") {
					t.Errorf("full scan in %s:\n%s", tt.name, strings.Join(plan, "\n"))
				}
			}
		})
	}
}

// planDB is the database the query plan tests explain their queries on:
// some random rows, rolled up; no ANALYZE, as the relay runs none. It is
// closed when t ends.
func planDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.InsertUsage(context.Background(), randomRecords(2000, time.Now(), 3)); err != nil {
		t.Fatal(err)
	}
	if err := Maintain(context.Background(), db, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	return db
}

// queryPlan returns the detail lines of SQLite's EXPLAIN QUERY PLAN for
// query on q (a *sql.DB, or a *sql.Conn for a connection's temp tables).
func queryPlan(t *testing.T, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, query string, args ...any) []string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}

// TestUsageLegacyDatabase reads a database written before rollups existed
// (stats opens it read-only, without migrating): totals from raw rows, no
// key names, every cost unknown.
func TestUsageLegacyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.InsertUsage(ctx, []usage.Record{{Time: time.Now(), KeyHash: "h1", KeyName: "x", Status: 200, CostKnown: true}}); err != nil {
		t.Fatal(err)
	}
	// Undo the roll-up migration as an old database would lack it.
	if _, err := db.conn().Exec(`DROP TABLE usage_hourly; DROP TABLE usage_daily; DROP TABLE usage_rollup_state;
		ALTER TABLE usage_stats DROP COLUMN key_name; ALTER TABLE usage_stats DROP COLUMN cost_micros`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := OpenReadOnlyMany([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Usage(ctx, UsageQuery{By: GroupKey})
	if err != nil {
		t.Fatal(err)
	}
	want := []UsageRow{{Group: "h1", KeyHash: "h1", Requests: 1, CostUnknown: 1, Successes: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// TestUsageManyDatabases sums several relays' files, rolled up to different
// points.
func TestUsageManyDatabases(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 37, 12, 0, time.UTC)
	dir := t.TempDir()
	var all []usage.Record
	var paths []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("r%d.db", i))
		db, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		recs := randomRecords(500, now, uint64(20+i))
		if err := db.InsertUsage(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			if _, err := db.RollupStep(context.Background(), 200*i); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		all = append(all, recs...)
		paths = append(paths, p)
	}
	db, err := OpenReadOnlyMany(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkUsage(t, db, all, [][2]time.Time{{}, {now.Add(-24*time.Hour - 13*time.Minute), now.Add(-time.Hour)}})
}

func TestNewDatabaseUsesIncrementalVacuum(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Vacuum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != AutoVacuumIncremental {
		t.Fatalf("auto_vacuum = %d, want incremental", v.Mode)
	}
}

func TestGenerateUsage(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 15, 37, 12, 0, time.UTC)
	for _, legacy := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "gen.db")
		o := GenOptions{Rows: 2400, RawDays: 1, RollupDays: 3, Keys: 5, Accounts: 2, Now: now, Seed: 1, Legacy: legacy}
		if err := GenerateUsage(ctx, path, o); err != nil {
			t.Fatal(err)
		}
		db, err := OpenReadOnly(path)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(2400)
		if !legacy {
			want += 100 * 72 // 100 requests an hour in the rollups before
		}
		for _, by := range []string{GroupNone, GroupKey, GroupModel} {
			rows, err := db.Usage(ctx, UsageQuery{By: by})
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, r := range rows {
				n += r.Requests
			}
			if n != want {
				t.Errorf("legacy %v by %q: %d requests, want %d", legacy, by, n, want)
			}
		}
		db.Close()
	}
}

// TestUpgradeExistingDatabase opens a database written before rollups: the
// migration keeps its rows (cost unknown), and the usage writer's
// maintenance rolls them up, prunes past the retention and switches the
// small file to incremental auto-vacuum.
func TestUpgradeExistingDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := openUpTo(path, legacyMigrations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.conn().Exec(`PRAGMA auto_vacuum = NONE; VACUUM`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	recs := randomRecords(500, now, 5)
	for i := range recs {
		recs[i].KeyName, recs[i].CostKnown, recs[i].CostMicros = "", false, 0 // the old schema had neither
		recs[i].ServedModel = ""                                              // nor a served model
	}
	if _, err := old.conn().Exec(`INSERT INTO usage_stats (ts_ms, client_api_key_hash, status) VALUES (?, 'h', 200)`, now.Add(-100*24*time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	for _, u := range recs {
		if _, err := old.conn().Exec(`INSERT INTO usage_stats (ts_ms, client_api_key_hash, account_id, platform, model, input_tokens, output_tokens,
			cache_creation_tokens, cache_read_tokens, status, latency_ms, ttfb_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Time.UnixMilli(), u.KeyHash, u.AccountID, u.Platform, u.Model, u.InputTokens, u.OutputTokens, u.CacheCreationTokens, u.CacheReadTokens,
			u.Status, u.Latency.Milliseconds(), u.TTFB.Milliseconds()); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkUsage(t, db, recs, [][2]time.Time{{now.Add(-80 * 24 * time.Hour), time.Time{}}})

	rec := newRecorder(db, slog.New(slog.DiscardHandler), time.Hour, 5*time.Millisecond)
	defer rec.Close(ctx)
	testutil.Eventually(t, 30*time.Second, "the recorder to roll up, prune and switch to incremental vacuum", func() bool {
		var rolled, oldRows int64
		if err := db.conn().QueryRow(`SELECT rolled_id, (SELECT count(*) FROM usage_stats WHERE ts_ms < ?) FROM usage_rollup_state`,
			now.Add(-90*24*time.Hour).UnixMilli()).Scan(&rolled, &oldRows); err != nil {
			t.Fatal(err)
		}
		v, err := db.Vacuum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rolled == int64(len(recs)+1) && oldRows == 0 && v.Mode == AutoVacuumIncremental
	})
	checkUsage(t, db, recs, [][2]time.Time{{now.Add(-80 * 24 * time.Hour), time.Time{}}, {now.Add(-26 * time.Hour), now.Add(-2 * time.Hour)}})
	all, err := db.Usage(ctx, UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if all[0].Requests != int64(len(recs)+1) {
		t.Fatalf("the pruned row must live on in the rollups: %d requests, want %d", all[0].Requests, len(recs)+1)
	}
}

// seriesOracle sums records into series points the slow, obvious way.
func seriesOracle(recs []usage.Record, from time.Time, step time.Duration, by string) []SeriesPoint {
	type id struct {
		start       int64
		group, hash string
	}
	m := map[id]*SeriesPoint{}
	for _, u := range recs {
		if u.Time.Before(from) {
			continue
		}
		ms := u.Time.UnixMilli()
		k := id{start: ms - ms%step.Milliseconds()}
		switch by {
		case GroupKey:
			k.group = u.KeyName
			if k.group == "" {
				k.hash = u.KeyHash
			}
		case GroupAccount:
			k.group = u.AccountID
		case GroupModel:
			k.group = u.Model
		case GroupServedModel:
			k.group = u.Served()
		case GroupPlatform:
			k.group = u.Platform
		}
		p := m[k]
		if p == nil {
			p = &SeriesPoint{Start: time.UnixMilli(k.start).UTC(), Group: k.group, KeyHash: k.hash}
			m[k] = p
		}
		p.Requests++
		if u.Status >= 400 || u.Status == 0 {
			p.Errors++
		}
		p.InputTokens += u.InputTokens
		p.OutputTokens += u.OutputTokens
		p.CacheCreationTokens += u.CacheCreationTokens
		p.CacheReadTokens += u.CacheReadTokens
		if u.CostKnown {
			p.CostMicros += u.CostMicros
		} else {
			p.CostUnknown++
		}
	}
	out := []SeriesPoint{}
	for _, p := range m {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.KeyHash < b.KeyHash
	})
	return out
}

// TestUsageSeriesExactAtEveryRollupStage checks UsageSeries against the raw
// records for steps of hours, days and minutes, every grouping, and windows
// starting mid-hour, before and after the roll-up and after pruning.
func TestUsageSeriesExactAtEveryRollupStage(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 37, 12, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	recs := randomRecords(3000, now, 21)
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, step := range []time.Duration{time.Hour, 3 * time.Hour, 24 * time.Hour, 5 * time.Minute, 90 * time.Minute} {
			for _, from := range []time.Time{now.Add(-71 * time.Hour), now.Add(-24*time.Hour - 17*time.Minute), now.Truncate(time.Hour).Add(-48 * time.Hour)} {
				for _, by := range []string{GroupNone, GroupKey, GroupAccount, GroupModel, GroupPlatform, GroupServedModel} {
					got, err := db.UsageSeries(ctx, from, time.Time{}, step, by)
					if err != nil {
						t.Fatal(err)
					}
					if got == nil {
						got = []SeriesPoint{}
					}
					if want := seriesOracle(recs, from, step, by); !reflect.DeepEqual(got, want) {
						t.Fatalf("step %v from %v by %q:\n got  %+v\n want %+v", step, from, by, got, want)
					}
				}
			}
		}
	}
	t.Run("raw only", check)
	if err := Maintain(ctx, db, 365*24*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	more := randomRecords(100, now, 22)
	if err := db.InsertUsage(ctx, more); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, more...)
	t.Run("rolled up plus a raw tail", check)
}

// TestUsageSeriesReadsRollups: once raw rows are pruned, a series of whole
// hours still has every hour (from the rollups).
func TestUsageSeriesReadsRollups(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 37, 12, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	recs := randomRecords(2000, now, 23)
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := Maintain(ctx, db, 10*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	from := now.Truncate(time.Hour).Add(-60 * time.Hour)
	for _, step := range []time.Duration{time.Hour, 24 * time.Hour} {
		got, err := db.UsageSeries(ctx, from, time.Time{}, step, GroupModel)
		if err != nil {
			t.Fatal(err)
		}
		if want := seriesOracle(recs, from, step, GroupModel); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %v after pruning:\n got  %+v\n want %+v", step, got, want)
		}
	}
}
