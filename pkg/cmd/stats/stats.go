// Package stats implements `ccrelay stats`.
package stats

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

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
	// By is the grouping: "", key, account, model or platform.
	By string
	// JSON prints machine-readable output.
	JSON bool
	// Databases override server.database_path; several are read as one
	// (one file per relay of a cluster).
	Databases []string
}

// NewCmdStats builds the stats command.
func NewCmdStats(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Now: time.Now}
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

			--by key groups by relay key name ([[keys]] name); a key without a name (an
			entry of api_keys) is shown by its position (api_keys[0]), never by its
			value, and keys no longer in the config by the start of their SHA-256.
		`),
		Example: heredoc.Doc(`
			$ ccrelay stats
			$ ccrelay stats --since 7d --by account
			$ ccrelay stats --since 2026-11-01 --by model --json | jq '.groups[0]'
			$ ccrelay stats --db /var/lib/ccrelay/relay.db --since all
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch opts.By {
			case store.GroupNone, store.GroupKey, store.GroupAccount, store.GroupModel, store.GroupPlatform:
			default:
				return cmdutil.FlagErrorf("--by must be key, account, model or platform, not %q", opts.By)
			}
			if _, err := parseSince(opts.Since, time.Now()); err != nil {
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
	fl.StringVar(&opts.By, "by", "", "group by key, account, model or platform")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	fl.StringArrayVar(&opts.Databases, "db", nil, "read this database file instead of server.database_path; repeat it to read several relays' files as one")
	_ = cmd.RegisterFlagCompletionFunc("by", cobra.FixedCompletions([]string{"key", "account", "model", "platform"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("since", cobra.FixedCompletions([]string{"1h", "24h", "7d", "30d", "all"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Report is the --json output.
type Report struct {
	// Database is the file read.
	Database string `json:"database"`
	// Since is the window start (null for "all"); Until is when the report was made.
	Since *time.Time `json:"since"`
	Until time.Time  `json:"until"`
	// By is the grouping ("" when none).
	By string `json:"by"`
	// Total sums every request of the window.
	Total Group `json:"total"`
	// Groups is one entry per group, busiest first ([] without --by).
	Groups []Group `json:"groups"`
}

// Group is one row of the report.
type Group struct {
	// Name is the account id, model or platform; for keys the key name or,
	// for an unnamed key, its label (api_keys[N], "anonymous", or the hash
	// prefix of a key no longer configured).
	Name string `json:"name,omitempty"`
	store.UsageRow
	// CostUSD is the cost in dollars; null when any request's cost is unknown.
	CostUSD *float64 `json:"cost_usd"`
	// LatencyAvgMs and TTFBAvgMs are the means over successful requests.
	LatencyAvgMs int64 `json:"latency_avg_ms"`
	TTFBAvgMs    int64 `json:"ttfb_avg_ms"`
}

func newGroup(name string, r store.UsageRow) Group {
	g := Group{Name: name, UsageRow: r, LatencyAvgMs: r.LatencyAvgMs(), TTFBAvgMs: r.TTFBAvgMs()}
	g.UsageRow.Group = ""
	if r.CostKnown() {
		usd := float64(r.CostMicros) / 1e6
		g.CostUSD = &usd
	}
	return g
}

func statsRun(opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	now := opts.Now()
	since, err := parseSince(opts.Since, now)
	if err != nil {
		return cmdutil.FlagErrorf("--since: %v", err)
	}
	paths := opts.Databases
	if len(paths) == 0 {
		paths = []string{cfg.Server.DatabasePath}
	}
	path := strings.Join(paths, ", ")
	report := Report{Database: path, Until: now.UTC().Truncate(time.Second), By: opts.By}
	if !since.IsZero() {
		s := since.UTC().Truncate(time.Second)
		report.Since = &s
	}

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

	ctx := context.Background()
	groups, err := db.Usage(ctx, store.UsageQuery{From: since, By: opts.By})
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	// The total is the sum of the groups: one query, not two.
	var total store.UsageRow
	for _, g := range groups {
		total.Requests += g.Requests
		total.Errors += g.Errors
		total.InputTokens += g.InputTokens
		total.OutputTokens += g.OutputTokens
		total.CacheCreationTokens += g.CacheCreationTokens
		total.CacheReadTokens += g.CacheReadTokens
		total.CostMicros += g.CostMicros
		total.CostUnknown += g.CostUnknown
		total.Successes += g.Successes
		total.LatencyMsSum += g.LatencyMsSum
		total.TTFBMsSum += g.TTFBMsSum
	}
	report.Total = newGroup("", total)
	if opts.By != "" {
		labels := keyLabels(cfg.APIKeys)
		report.Groups = make([]Group, 0, len(groups))
		for _, g := range groups {
			name := g.Group
			if opts.By == store.GroupKey && g.KeyName == "" {
				name = keyLabel(g.KeyHash, labels)
			}
			report.Groups = append(report.Groups, newGroup(name, g))
		}
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
	if r.Total.Requests == 0 {
		_, err := fmt.Fprintf(w, "No requests recorded %s (%s).\n", window, r.Database)
		return err
	}
	fmt.Fprintf(w, "Usage %s (%s)\n\n", window, r.Database)
	// Numbers are right-aligned (AlignRight) and each cell carries its own
	// two-space gap, so the first column (a name, padded by hand to the
	// widest) starts at the margin, left-aligned.
	tw := tabwriter.NewWriter(w, 0, 0, 0, ' ', tabwriter.AlignRight)
	first := strings.ToUpper(r.By)
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

// keyLabels maps the hash of each configured relay key to its position.
func keyLabels(keys []string) map[string]string {
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		h := usage.HashKey(k)
		if _, dup := m[h]; !dup {
			m[h] = fmt.Sprintf("api_keys[%d]", i)
		}
	}
	return m
}

func keyLabel(hash string, labels map[string]string) string {
	if hash == usage.Anonymous {
		return usage.Anonymous
	}
	if l, ok := labels[hash]; ok {
		return l
	}
	if len(hash) > 12 {
		return "sha256:" + hash[:12]
	}
	return hash
}

// parseSince turns --since into a window start; the zero time means "all".
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "all", "0", "":
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.ParseFloat(n, 64); err == nil && d > 0 {
			return now.Add(-time.Duration(d * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: the duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a duration (24h, 7d), a date (2006-01-02), a time (RFC 3339) or \"all\"", s)
}
