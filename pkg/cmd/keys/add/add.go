// Package add implements `ccrelay keys add`.
package add

import (
	"errors"
	"fmt"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are add's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	// NewKey makes the relay key (config.NewRelayKey; tests replace it).
	NewKey func() string

	Name        string
	Models      []string
	Groups      []string
	RPM         int
	Concurrency int
	Queue       int
	DailyUSD    float64
	WeeklyUSD   float64
	MonthlyUSD  float64
	DailyTokens int64
	ExpiresAt   string
	Timezone    string
	HashOnly    bool
}

// NewCmdAdd builds `keys add`.
func NewCmdAdd(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, NewKey: config.NewRelayKey}
	cmd := &cobra.Command{
		Use:   "add <name>",
		Short: "Create a named relay key and print it once",
		Long: heredoc.Doc(`
			Create a relay key and write it as a new [[keys]] entry at the end of the
			config (the rest of the file, comments included, is kept; the write is atomic
			and the file stays 0600). The key is printed once, on standard output.

			--hash-only stores only the key's sha256 (key_sha256): the config then holds
			nothing a reader could use, and the key cannot be shown again.

			Every limit is optional. A running server applies the new key within seconds (it reloads its config file).
			Keys, limits and budgets in full: docs/teams.md.
		`),
		Example: heredoc.Doc(`
			$ ccrelay keys add alice --models 'claude-sonnet-*' --rpm 60 --daily-usd 20
			$ ccrelay keys add ci --groups team-a --concurrency 2 --hash-only
		`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return addRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Models, "models", nil, "allowed model globs, comma-separated (default: all)")
	fl.StringSliceVar(&opts.Groups, "groups", nil, "account groups the key may use (default: all accounts)")
	fl.IntVar(&opts.RPM, "rpm", 0, "requests per minute (0 = no cap)")
	fl.IntVar(&opts.Concurrency, "concurrency", 0, "requests in flight (0 = no cap); more wait in a queue")
	fl.IntVar(&opts.Queue, "queue-seconds", 0, "longest wait for a concurrency slot (default 30)")
	fl.Float64Var(&opts.DailyUSD, "daily-usd", 0, "budget per calendar day in US dollars")
	fl.Float64Var(&opts.WeeklyUSD, "weekly-usd", 0, "budget per ISO week in US dollars")
	fl.Float64Var(&opts.MonthlyUSD, "monthly-usd", 0, "budget per calendar month in US dollars")
	fl.Int64Var(&opts.DailyTokens, "daily-tokens", 0, "tokens per calendar day")
	fl.StringVar(&opts.ExpiresAt, "expires-at", "", "expiry: a date (2026-12-31) or an RFC 3339 time")
	fl.StringVar(&opts.Timezone, "timezone", "", "IANA time zone of the budget windows (default UTC)")
	fl.BoolVar(&opts.HashOnly, "hash-only", false, "store only the key's sha256 in the config")
	return cmd
}

func addRun(opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	key := opts.NewKey()
	nk := config.NewKey{Name: opts.Name, Models: opts.Models, Groups: opts.Groups, RPM: opts.RPM, Concurrency: opts.Concurrency,
		QueueSeconds: opts.Queue, DailyUSD: opts.DailyUSD, WeeklyUSD: opts.WeeklyUSD, MonthlyUSD: opts.MonthlyUSD, DailyTokens: opts.DailyTokens,
		ExpiresAt: opts.ExpiresAt, Timezone: opts.Timezone, HashOnly: opts.HashOnly}
	if err := config.AddKey(cfg, nk, key); err != nil {
		var invalid *config.InvalidKeyError
		if errors.As(err, &invalid) || errors.Is(err, config.ErrKeyExists) {
			return cmdutil.FlagErrorf("%v", err)
		}
		return err
	}
	fmt.Fprintln(opts.IO.Out, key)
	fmt.Fprintf(opts.IO.ErrOut, "Added relay key %q to %s. It is shown only this once: give it to its holder now. %s.\n", opts.Name, cfg.Path, cmdutil.AppliesLive)
	return nil
}
