// Package stats implements `ccrelay stats`.
package stats

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are stats' inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	// Now is the clock (replaceable in tests).
	Now func() time.Time

	// Since is the --since value: a duration back from now, a date or a
	// time, or "all".
	Since string
	// By is the grouping: "", key, account, model, served_model or platform.
	By string
	// JSON prints machine-readable output.
	JSON bool
	// Databases override server.database_path; several are read as one
	// (one file per relay of a cluster).
	Databases []string
	// Server is --server: ask a running relay's admin API instead of
	// reading a database.
	Server string
	Getenv func(string) string
}

// NewCmdStats builds the stats command.
func NewCmdStats(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Now: time.Now, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show requests, errors, tokens, cost and latency from the usage database",
		Long: heredoc.Doc(`
			Summarize the usage that the relay recorded: requests, errors (status 400 or
			more), input, output and cache tokens as the upstreams reported them, their
			cost, and the mean latency and time to first byte of successful requests.
			Cost is "unknown" when any request of a row has no price (a model missing
			from the price table, or a request recorded before costs were), never 0.

			Whole hours are read from the hourly rollups the relay keeps for good, the
			partial hours at the window's edges from the raw rows (kept for
			server.usage_retention_days), so stats stays fast over any window. A window
			starting before the retention reads its first hour whole.

			It reads the SQLite database at server.database_path (or --db) directly, so it
			works whether or not 'ccrelay serve' is running, and it never writes to it.
			A relative database path is relative to the current directory, as it is for
			serve: run stats from the same directory, or pass --config / --db.

			With --server (or $CCRELAY_SERVER) it asks the relay running at that URL,
			through its admin API with the admin key in $CCRELAY_ADMIN_KEY, and prints
			the same report. A relay of a cluster ([cluster] redis_url) answers for
			every relay sharing the Redis, from whole hours (the window starts at the
			hour, or at the UTC day for windows over about 34 days; "all" is the last
			400 days); while Redis is unreachable it answers with its own numbers and
			stats says so. Without --server, stats reads one relay's database: on a
			cluster it says these are that relay's own numbers (--db repeated reads
			several relays' files as one).

			Retention, rollups and the cluster's numbers: docs/operations.md and
			docs/cluster.md.

			--by key groups by relay key name ([[keys]] name); a key without a name (an
			entry of api_keys) is shown by its position (api_keys[0]), never by its
			value, and keys no longer in the config by the start of their SHA-256.

			--by model groups by the model the client asked for, --by served_model by
			the model the upstream served: they differ when a route's target or the
			[models] map rewrote it (claude-sonnet-4 asked, gpt-5-codex served on an
			OpenAI account). Cost is always at the served model's price. Requests
			recorded before the relay kept the served model count as served as asked.
		`),
		Example: heredoc.Doc(`
			$ ccrelay stats
			$ ccrelay stats --since 7d --by account
			$ ccrelay stats --since 2026-11-01 --by model --json | jq '.groups[0]'
			$ ccrelay stats --since 7d --by served_model
			$ ccrelay stats --db /var/lib/ccrelay/relay.db --since all
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch opts.By {
			case store.GroupNone, store.GroupKey, store.GroupAccount, store.GroupModel, store.GroupServedModel, store.GroupPlatform:
			default:
				return cmdutil.FlagErrorf("--by must be key, account, model, served_model or platform, not %q", opts.By)
			}
			if _, err := usage.ParseSince(opts.Since, time.Now()); err != nil {
				return cmdutil.FlagErrorf("--since: %v", err)
			}
			if runF != nil {
				return runF(opts)
			}
			return statsRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Since, "since", "24h", "window start: a duration back from now (90m, 24h, 7d), a date (2026-11-01), an RFC 3339 time, or \"all\"")
	fl.StringVar(&opts.By, "by", "", "group by key, account, model (asked), served_model or platform")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	fl.StringArrayVar(&opts.Databases, "db", nil, "read this database file instead of server.database_path; repeat it to read several relays' files as one")
	cmdutil.AddServerFlag(cmd, &opts.Server)
	_ = cmd.RegisterFlagCompletionFunc("by", cobra.FixedCompletions([]string{"key", "account", "model", "served_model", "platform"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("since", cobra.FixedCompletions([]string{"1h", "24h", "7d", "30d", "all"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Report is the --json output (the admin API serves the same).
type Report = store.Report

// Group is one row of the report.
type Group = store.ReportGroup

func statsRun(opts *Options) error {
	now := opts.Now()
	since, err := usage.ParseSince(opts.Since, now)
	if err != nil {
		return cmdutil.FlagErrorf("--since: %v", err)
	}
	if len(opts.Databases) == 0 {
		adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
		if err != nil {
			return err
		}
		if adm != nil {
			return remoteStats(opts, adm, since)
		}
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	paths := opts.Databases
	if len(paths) == 0 {
		paths = []string{cfg.Server.DatabasePath}
	}
	path := strings.Join(paths, ", ")
	report := store.NewReport(path, since, now, opts.By)

	db, err := store.OpenReadOnlyMany(paths)
	switch {
	case store.IsNotExist(err):
		// Nothing recorded yet is a valid answer, not a failure: say where we looked.
		fmt.Fprintf(opts.IO.ErrOut, "no usage database at %s yet: nothing recorded (serve creates it on start; check server.database_path or --db)\n", path)
		if opts.JSON {
			return writeJSON(opts.IO.Out, report)
		}
		return nil
	case err != nil:
		return err
	}
	defer db.Close()
	if err := db.FillReport(context.Background(), &report, usage.KeyLabels(cfg.APIKeys)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	report.Scope = store.ScopeLocal
	if cfg.Cluster.RedisURL != "" && len(opts.Databases) == 0 {
		report.ScopeReason = localOnCluster
		fmt.Fprintln(opts.IO.ErrOut, "Note: "+localOnCluster+".")
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, report)
	}
	return writeTable(opts.IO.Out, report)
}

// localOnCluster says whose numbers a database read on a cluster shows.
const localOnCluster = "these are this relay's own numbers, read from its database; the cluster's: ccrelay stats --server URL"

// remoteStats asks the relay at --server for the same report.
func remoteStats(opts *Options, adm *cmdutil.AdminClient, since time.Time) error {
	// The window start is sent as an absolute time, so a date means local
	// midnight where the command runs, as it does without --server.
	q := url.Values{"by": {opts.By}, "since": {"all"}}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	var report Report
	if err := adm.Do(context.Background(), "GET", "usage?"+q.Encode(), nil, &report); err != nil {
		return err
	}
	report.Database = adm.BaseURL
	report.Until = opts.Now().UTC().Truncate(time.Second)
	if report.Scope == store.ScopeLocal && report.ScopeReason != "" && report.ScopeReason != admin.ReasonNoCluster {
		fmt.Fprintln(opts.IO.ErrOut, "Note: "+report.ScopeReason+".")
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, report)
	}
	return writeTable(opts.IO.Out, report)
}

func writeJSON(w io.Writer, r Report) error {
	if r.Groups == nil {
		r.Groups = []Group{}
	}
	return cmdutil.WriteJSON(w, r)
}

func writeTable(w io.Writer, r Report) error {
	window := "all time"
	if r.Since != nil {
		window = "since " + r.Since.Local().Format("2006-01-02 15:04")
	}
	source := r.Database
	if r.Scope == store.ScopeCluster {
		source += ", every relay of the cluster"
	}
	if r.Total.Requests == 0 {
		_, err := fmt.Fprintf(w, "No requests recorded %s (%s).\n", window, source)
		return err
	}
	fmt.Fprintf(w, "Usage %s (%s)\n\n", window, source)
	// Numbers are right-aligned (AlignRight) and each cell carries its own
	// two-space gap, so the first column (a name, padded by hand to the
	// widest) starts at the margin, left-aligned.
	tw := tabwriter.NewWriter(w, 0, 0, 0, ' ', tabwriter.AlignRight)
	first := strings.ToUpper(strings.ReplaceAll(r.By, "_", " "))
	header := []string{"REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "COST", "AVG LATENCY", "AVG TTFB", ""}
	if first != "" {
		header = append([]string{first}, header...)
	}
	width := max(len(first), len("TOTAL"))
	for _, g := range r.Groups {
		width = max(width, len(displayName(g.Name)))
	}
	gap := func(cells []string) string {
		for i := range cells {
			if cells[i] != "" && i > 0 {
				cells[i] = "  " + cells[i]
			}
		}
		return strings.Join(cells, "\t")
	}
	row := func(name string, g Group) {
		cells := []string{
			strconv.FormatInt(g.Requests, 10), strconv.FormatInt(g.Errors, 10),
			humanInt(g.InputTokens), humanInt(g.OutputTokens), humanInt(g.CacheCreationTokens), humanInt(g.CacheReadTokens),
			usd(g.CostUSD), ms(g.LatencyAvgMs), ms(g.TTFBAvgMs), "",
		}
		if first != "" {
			cells = append([]string{fmt.Sprintf("%-*s", width, name)}, cells...)
		}
		fmt.Fprintln(tw, gap(cells))
	}
	if first != "" {
		header[0] = fmt.Sprintf("%-*s", width, header[0])
	}
	fmt.Fprintln(tw, gap(header))
	for _, g := range r.Groups {
		row(displayName(g.Name), g)
	}
	if first != "" && len(r.Groups) > 1 {
		row("TOTAL", r.Total)
	} else if first == "" {
		row("", r.Total)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nLatency and time to first byte are means over successful requests; tokens as the upstreams reported them;\ncost is unknown where any request has no price.")
	return err
}

// usd formats a cost: cents from a dollar up, more digits below; "unknown"
// for nil (never 0).
func usd(v *float64) string {
	switch {
	case v == nil:
		return "unknown"
	case *v >= 1 || *v == 0:
		return "$" + humanFloat(*v, 2)
	default:
		return "$" + strconv.FormatFloat(*v, 'f', 4, 64)
	}
}

// humanFloat formats v with prec decimals and thousands separators.
func humanFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	return humanInt(n) + "." + frac
}

func displayName(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// humanInt groups digits by thousands (1234567 -> 1,234,567).
func humanInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ms(v int64) string {
	if v == 0 {
		return "-"
	}
	if v < 10_000 {
		return strconv.FormatInt(v, 10) + "ms"
	}
	return strconv.FormatFloat(float64(v)/1000, 'f', 1, 64) + "s"
}
