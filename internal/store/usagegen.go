package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// GenOptions describes a synthetic usage history, for benchmarks
// (relaybench usagedb): a team's traffic of Keys people on Accounts
// accounts, each person mostly on one model and, within a session, on one
// account.
type GenOptions struct {
	// Rows is the number of raw rows, spread evenly over the RawDays before Now.
	Rows    int
	RawDays int
	// RollupDays of hourly rollups precede the raw rows (at the same rate).
	RollupDays int
	Keys       int
	Accounts   int
	Now        time.Time
	Seed       uint64
	// Legacy writes the schema as it was before rollups (raw rows only, no
	// key names or costs, the old indexes), to compare against.
	Legacy bool
}

// legacyMigrations is how many migrations the schema before rollups had.
const legacyMigrations = 3

var genModels = []struct {
	model, platform string
	priced          bool
}{
	{"claude-sonnet-4-5", "claude", true}, {"claude-opus-4-1", "claude", true}, {"claude-haiku-4-5", "claude", true},
	{"gpt-5-codex", "openai", true}, {"gemini-2.5-pro", "gemini", true}, {"claude-sonnet-4-5-preview", "claude", false},
}

var genStatuses = []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
	200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 500, 499, 400}

type generator struct {
	rng  *rand.Rand
	o    GenOptions
	keys []struct{ name, hash string }
	// per key: its main and second model
	models [][2]int
}

func newGenerator(o GenOptions) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(o.Seed, 42)), o: o}
	for i := range o.Keys {
		g.keys = append(g.keys, struct{ name, hash string }{fmt.Sprintf("user-%02d", i), usage.HashKey(fmt.Sprintf("bench-key-%d", i))})
		g.models = append(g.models, [2]int{g.rng.IntN(len(genModels)), g.rng.IntN(len(genModels))})
	}
	return g
}

// record draws one request at t.
func (g *generator) record(t time.Time) usage.Record {
	r := g.rng
	k := r.IntN(len(g.keys))
	m := genModels[g.models[k][0]]
	if r.IntN(10) < 3 {
		m = genModels[g.models[k][1]]
	}
	// A session lasts about an hour and stays on one account.
	acct := (k*7 + int(t.Unix()/3600)) % g.o.Accounts
	u := usage.Record{
		Time: t, KeyHash: g.keys[k].hash, KeyName: g.keys[k].name, AccountID: fmt.Sprintf("%s-%d", m.platform, acct),
		Platform: m.platform, Model: m.model, Status: genStatuses[r.IntN(len(genStatuses))], Attempts: 1, Stream: true,
		Latency: time.Duration(500+r.IntN(60000)) * time.Millisecond, TTFB: time.Duration(200+r.IntN(3000)) * time.Millisecond,
	}
	if u.Status == 200 {
		u.InputTokens, u.OutputTokens = r.Int64N(20000), r.Int64N(4000)
		u.CacheCreationTokens, u.CacheReadTokens = r.Int64N(2000), r.Int64N(80000)
	}
	if m.priced {
		u.CostKnown, u.CostMicros = true, (u.InputTokens*3 + u.OutputTokens*15 + u.CacheReadTokens*3/10)
	}
	return u
}

// GenerateUsage writes a synthetic usage history into a new database at
// path: one transaction and one prepared statement for the raw rows, then
// the rollups of the raw rows, then RollupDays of older hourly rollups. The
// file must not exist.
func GenerateUsage(ctx context.Context, path string, o GenOptions) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists", path)
	}
	if o.Rows <= 0 || o.RawDays <= 0 || o.Keys <= 0 || o.Accounts <= 0 {
		return fmt.Errorf("rows, raw days, keys and accounts must be positive")
	}
	n := len(migrations)
	if o.Legacy {
		n = legacyMigrations
	}
	db, err := openUpTo(path, n)
	if err != nil {
		return err
	}
	db.Close()
	// Bulk load without a journal; the file gets WAL back at the end.
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	sdb, err := sql.Open("sqlite3", u.String()+"?_journal_mode=OFF&_synchronous=OFF")
	if err != nil {
		return err
	}
	defer sdb.Close()
	sdb.SetMaxOpenConns(1)
	g := newGenerator(o)
	if err := g.raw(ctx, sdb); err != nil {
		return err
	}
	if !o.Legacy {
		if err := rollupRange(ctx, sdb, 0, int64(1)<<62); err != nil {
			return fmt.Errorf("roll up: %w", err)
		}
		if _, err := sdb.ExecContext(ctx, `UPDATE usage_rollup_state SET rolled_id = (SELECT MAX(id) FROM usage_stats)`); err != nil {
			return err
		}
		if err := g.rollups(ctx, sdb); err != nil {
			return err
		}
		// The generated hours have no raw rows: their days come from them.
		rawStart := o.Now.Add(-time.Duration(o.RawDays) * 24 * time.Hour).Truncate(time.Hour).UnixMilli()
		for _, q := range dailyFromHourlySQL() {
			if _, err := sdb.ExecContext(ctx, q, 0, rawStart); err != nil {
				return fmt.Errorf("roll up days: %w", err)
			}
		}
	}
	_, err = sdb.ExecContext(ctx, `PRAGMA journal_mode = WAL`)
	return err
}

func (g *generator) raw(ctx context.Context, sdb *sql.DB) error {
	o := g.o
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cols, marks := `created_at, ts_ms, request_id, client_api_key_hash, account_id, platform, model, input_tokens, output_tokens,
		cache_creation_tokens, cache_read_tokens, status, latency_ms, ttfb_ms, stream, attempts, error`, `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`
	if !o.Legacy {
		cols, marks = cols+`, key_name, cost_micros`, marks+`, ?, ?`
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO usage_stats (`+cols+`) VALUES (`+marks+`)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	start := o.Now.Add(-time.Duration(o.RawDays) * 24 * time.Hour)
	step := time.Duration(o.RawDays) * 24 * time.Hour / time.Duration(o.Rows)
	args := make([]any, 0, 19)
	for i := range o.Rows {
		t := start.Add(time.Duration(i) * step).Truncate(time.Millisecond)
		u := g.record(t)
		args = append(args[:0], t.UTC().Format("2006-01-02 15:04:05"), t.UnixMilli(), "", u.KeyHash, u.AccountID, u.Platform, u.Model,
			u.InputTokens, u.OutputTokens, u.CacheCreationTokens, u.CacheReadTokens, u.Status, u.Latency.Milliseconds(), u.TTFB.Milliseconds(), 1, 1, "")
		if !o.Legacy {
			var cost sql.NullInt64
			if u.CostKnown {
				cost = sql.NullInt64{Int64: u.CostMicros, Valid: true}
			}
			args = append(args, u.KeyName, cost)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// rollups writes the hourly rollups of the RollupDays before the raw rows,
// drawing the same traffic and summing it per hour.
func (g *generator) rollups(ctx context.Context, sdb *sql.DB) error {
	o := g.o
	if o.RollupDays <= 0 {
		return nil
	}
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO usage_hourly (`+hourlyColumns+`) VALUES (?`+strings.Repeat(", ?", strings.Count(hourlyColumns, ","))+`)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	type key struct {
		hash, name, acct, model, platform string
		class                             int
	}
	perHour := o.Rows / (o.RawDays * 24)
	end := o.Now.Add(-time.Duration(o.RawDays) * 24 * time.Hour).Truncate(time.Hour)
	for h := end.Add(-time.Duration(o.RollupDays) * 24 * time.Hour); h.Before(end); h = h.Add(time.Hour) {
		sums := map[key]*[NumMeasures]int64{}
		for range perHour {
			u := g.record(h)
			k := key{u.KeyHash, u.KeyName, u.AccountID, u.Model, u.Platform, u.Status / 100}
			s := sums[k]
			if s == nil {
				s = new([NumMeasures]int64)
				sums[k] = s
			}
			for i := range Measures {
				s[i] += hourlyOf(&Measures[i], &u)
			}
		}
		for k, s := range sums {
			args := []any{h.UnixMilli(), k.hash, k.name, k.acct, k.model, k.platform, k.class}
			for i := range Measures {
				if Measures[i].Hourly != "" {
					args = append(args, s[i])
				}
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
