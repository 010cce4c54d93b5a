package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// usageDBOptions are the flags of `relaybench usagedb`.
type usageDBOptions struct {
	db         string
	rows       int
	rawDays    int
	rollupDays int
	keys       int
	accounts   int
	legacy     bool
	runs       int
	ccrelay    string
	insert     int
	startup    bool
	windows    string
}

// runUsageDB measures the usage database at scale: it generates a synthetic
// history (unless the file exists), then times stats per grouping and
// window, budget seeding, the usage writer's inserts, roll-up and pruning
// steps, and ccrelay's start-up to healthy on that file.
//
//	go run ./cmd/relaybench usagedb -db /tmp/usage.db                 # 10M rows, 90 days + 2 years of rollups
//	go run ./cmd/relaybench usagedb -db /tmp/legacy.db -legacy -ccrelay /tmp/ccrelay-old
func runUsageDB(args []string) error {
	o, err := parseUsageDBFlags(args)
	if err != nil {
		return err
	}
	ctx := context.Background()
	now := time.Now()
	if err := ensureUsageDB(ctx, o, now); err != nil {
		return err
	}
	bin := o.ccrelay
	if bin == "" {
		dir, err := os.MkdirTemp("", "relaybench-usagedb-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if bin, err = buildRelay(ctx, dir); err != nil {
			return err
		}
	}
	windows := strings.Split(o.windows, ",")
	if !o.legacy {
		if err := timeInProcessQueries(ctx, o, windows, now); err != nil {
			return err
		}
	}
	if err := timeStatsCommand(o, bin, windows); err != nil {
		return err
	}
	if o.insert > 0 && !o.legacy {
		if err := insertAndMaintain(ctx, o, now); err != nil {
			return err
		}
	}
	if o.startup {
		return timeStartup(ctx, o, bin)
	}
	return nil
}

func parseUsageDBFlags(args []string) (usageDBOptions, error) {
	var o usageDBOptions
	fs := flag.NewFlagSet("usagedb", flag.ContinueOnError)
	fs.StringVar(&o.db, "db", filepath.Join(os.TempDir(), "ccrelay-usage.db"), "database file (generated when missing; keep it out of the repository)")
	fs.IntVar(&o.rows, "rows", 10_000_000, "raw usage rows to generate")
	fs.IntVar(&o.rawDays, "raw-days", 90, "days the raw rows span (up to now)")
	fs.IntVar(&o.rollupDays, "rollup-days", 730, "days of hourly rollups before the raw rows")
	fs.IntVar(&o.keys, "keys", 40, "relay keys (people)")
	fs.IntVar(&o.accounts, "accounts", 8, "accounts per platform")
	fs.BoolVar(&o.legacy, "legacy", false, "generate the schema before rollups (raw rows only) and time only the CLI (-ccrelay: a build of that version)")
	fs.IntVar(&o.runs, "runs", 5, "runs per measurement (the median is reported)")
	fs.StringVar(&o.ccrelay, "ccrelay", "", "ccrelay binary: time `ccrelay stats` and start-up on the file (default: go build ./cmd/ccrelay)")
	fs.IntVar(&o.insert, "insert", 200_000, "rows to add through the usage writer's batched insert (0: skip; changes the file)")
	fs.BoolVar(&o.startup, "startup", true, "time ccrelay serve to healthy on the file (a legacy file is migrated by it)")
	fs.StringVar(&o.windows, "windows", "24h,7d,30d,all", "--since values to time, comma-separated")
	err := fs.Parse(args)
	return o, err
}

// ensureUsageDB generates the database file when it is missing and prints
// its size.
func ensureUsageDB(ctx context.Context, o usageDBOptions, now time.Time) error {
	if _, err := os.Stat(o.db); errors.Is(err, os.ErrNotExist) {
		start := time.Now()
		err := store.GenerateUsage(ctx, o.db, store.GenOptions{Rows: o.rows, RawDays: o.rawDays, RollupDays: o.rollupDays,
			Keys: o.keys, Accounts: o.accounts, Now: now, Seed: 1, Legacy: o.legacy})
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		d := time.Since(start)
		fmt.Printf("generated %d raw rows (%d days) + %d days of rollups in %s (%.0f rows/s)\n", o.rows, o.rawDays, o.rollupDays,
			d.Round(time.Second), float64(o.rows)/d.Seconds())
	}
	size := fileSize(o.db) + fileSize(o.db+"-wal")
	fmt.Printf("database %s: %.1f MB, %.1f MB per million raw rows (rollups included)\n", o.db, mb(size), mb(size)/(float64(o.rows)/1e6))
	return nil
}

// usageGroups are the --by values timed, "" being no grouping.
var usageGroups = []string{"", store.GroupKey, store.GroupAccount, store.GroupModel, store.GroupPlatform}

// timeInProcessQueries prints the median time of the store's usage queries
// for each window and grouping, and of the budget seeding query.
func timeInProcessQueries(ctx context.Context, o usageDBOptions, windows []string, now time.Time) error {
	db, err := store.OpenReadOnly(o.db)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Printf("\nin-process Usage() p50 of %d runs (ms)\n\n| --since | none | key | account | model | platform |\n|---|---|---|---|---|---|\n", o.runs)
	for _, w := range windows {
		fmt.Printf("| %s |", w)
		for _, g := range usageGroups {
			from := sinceOf(w, now)
			d, err := median(o.runs, func() error { _, err := db.Usage(ctx, store.UsageQuery{From: from, By: g}); return err })
			if err != nil {
				return err
			}
			fmt.Printf(" %s |", msStr(d))
		}
		fmt.Println()
	}
	for _, back := range []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 31 * 24 * time.Hour} {
		var n int
		d, err := median(o.runs, func() error {
			t, err := db.KeyTotalsSince(ctx, now.Add(-back))
			n = len(t)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Printf("KeyTotalsSince(%s ago): %s ms (%d keys)\n", back, msStr(d), n)
	}
	return nil
}

// timeStatsCommand prints the median wall time of `ccrelay stats --json`
// for each window and grouping, process start included.
func timeStatsCommand(o usageDBOptions, bin string, windows []string) error {
	fmt.Printf("\n`ccrelay stats --json` wall time p50 of %d runs (ms, process start included)\n\n| --since | none | key | account | model | platform |\n|---|---|---|---|---|---|\n", o.runs)
	for _, w := range windows {
		fmt.Printf("| %s |", w)
		for _, g := range usageGroups {
			args := []string{"stats", "--db", o.db, "--since", w, "--json"}
			if g != "" {
				args = append(args, "--by", g)
			}
			d, err := median(o.runs, func() error { return runQuiet(bin, args) })
			if err != nil {
				return err
			}
			fmt.Printf(" %s |", msStr(d))
		}
		fmt.Println()
	}
	return nil
}

// runQuiet runs bin with args, discarding its output; a failure carries its
// standard error.
func runQuiet(bin string, args []string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	msg, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", bin, err, msg)
	}
	return nil
}

// timeStartup prints how long `ccrelay serve` takes to become healthy on the
// file; on a legacy file the first start (the migration) is reported alone.
func timeStartup(ctx context.Context, o usageDBOptions, bin string) error {
	var ds []time.Duration
	for i := range o.runs {
		d, err := startupToHealthy(ctx, bin, o.db)
		if err != nil {
			return err
		}
		if i == 0 && o.legacy {
			fmt.Printf("\nfirst start on the legacy file (runs the roll-up migration): %s ms\n", msStr(d))
			continue
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	if len(ds) > 0 {
		fmt.Printf("start-up to healthy: p50 %s ms, max %s ms (%d runs)\n", msStr(ds[len(ds)/2]), msStr(ds[len(ds)-1]), len(ds))
	}
	return nil
}

// insertAndMaintain times the usage writer's batched inserts into the big
// file, then the roll-up and pruning steps the writer runs between batches.
func insertAndMaintain(ctx context.Context, o usageDBOptions, now time.Time) error {
	db, err := store.Open(o.db)
	if err != nil {
		return err
	}
	defer db.Close()
	const batch = 512 // the Recorder's BatchSize
	recs := make([]usage.Record, batch)
	for i := range recs {
		recs[i] = usage.Record{Time: now, KeyHash: usage.HashKey("bench"), KeyName: "bench", AccountID: "claude-1", Platform: "claude",
			Model: "claude-sonnet-4-5", Status: 200, Latency: time.Second, TTFB: 300 * time.Millisecond, Attempts: 1, CostKnown: true, CostMicros: 1234}
		recs[i].InputTokens, recs[i].OutputTokens = 1200, 300
	}
	start := time.Now()
	for n := 0; n < o.insert; n += batch {
		if err := db.InsertUsage(ctx, recs); err != nil {
			return err
		}
	}
	d := time.Since(start)
	fmt.Printf("\nusage writer: %d rows in batches of %d: %.0f rows/s\n", o.insert, batch, float64(o.insert)/d.Seconds())

	steps := func(name string, run func() (int, error)) error {
		var ds []time.Duration
		total := 0
		for {
			t := time.Now()
			n, err := run()
			if err != nil {
				return err
			}
			ds = append(ds, time.Since(t))
			total += n
			if n == 0 || len(ds) >= 200 {
				break
			}
		}
		slices.Sort(ds)
		fmt.Printf("%s: %d steps, %d rows, step p50 %s ms, max %s ms\n", name, len(ds), total, msStr(ds[len(ds)/2]), msStr(ds[len(ds)-1]))
		return nil
	}
	if err := steps("roll-up steps (2000 rows)", func() (int, error) { return db.RollupStep(ctx, 2000) }); err != nil {
		return err
	}
	// Prune the oldest raw day, as the writer does once a day.
	cutoff := now.Add(-time.Duration(o.rawDays-1) * 24 * time.Hour)
	if err := steps("prune steps (2000 rows, the oldest day)", func() (int, error) { return db.PruneStep(ctx, cutoff, 2000) }); err != nil {
		return err
	}
	v, err := db.Vacuum(ctx)
	if err != nil {
		return err
	}
	t := time.Now()
	if err := db.IncrementalVacuumStep(ctx, 256); err != nil {
		return err
	}
	fmt.Printf("incremental vacuum step (256 pages of %d free): %s ms\n", v.FreePages, msStr(time.Since(t)))
	return nil
}

func startupToHealthy(ctx context.Context, bin, dbPath string) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "relaybench-startup-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	p, err := startRelay(bin, dir, "relay", relayConfig{dbPath: dbPath, logLevel: "warn", accounts: 4, upstream: "http://127.0.0.1:9"})
	if err != nil {
		return 0, err
	}
	defer p.stop()
	if err := waitHealthy(ctx, p, 2*time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func sinceOf(w string, now time.Time) time.Time {
	switch w {
	case "24h":
		return now.Add(-24 * time.Hour)
	case "7d":
		return now.Add(-7 * 24 * time.Hour)
	case "30d":
		return now.Add(-30 * 24 * time.Hour)
	}
	return time.Time{}
}

func median(runs int, f func() error) (time.Duration, error) {
	ds := make([]time.Duration, 0, runs)
	for range runs {
		t := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

func msStr(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
