// Package list implements `ccrelay keys list`.
package list

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are list's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	DB     func() (*store.DB, error)
	Now    func() time.Time
	Getenv func(string) string
	JSON   bool
	// Server is --server: ask a running relay's admin API instead of the
	// local database (the cluster's in-flight and queued counts).
	Server string
}

// NewCmdList builds `keys list`.
func NewCmdList(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, DB: f.DB, Now: time.Now, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Show every named relay key, its limits and its spending",
		Long: heredoc.Doc(`
			Show every [[keys]] entry: enabled or not, expiry, models, groups, rpm and
			concurrency limits, and today's, this week's and this month's cost against its
			budgets (windows in the key's time zone), today's tokens, and when it was last
			used. Spending is read from the usage database that 'ccrelay serve' writes:
			the cost stored with each request (its price when it was served). A key's value
			is never shown.

			With --server (or $CCRELAY_SERVER) it asks a running relay through its admin
			API (admin key in $CCRELAY_ADMIN_KEY) and also shows each limited key's requests
			in flight and queued: in a cluster, every relay's (about a second old), else
			that relay's own; the scope is printed. --json then prints the admin API's
			answer (GET /admin/v1/keys).
		`),
		Example: "$ ccrelay keys list\n$ ccrelay keys list --json\n$ CCRELAY_ADMIN_KEY=... ccrelay keys list --server https://relay.example.com",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmdutil.AddServerFlag(cmd, &opts.Server)
	return cmd
}

// Window is one budget window of a key in the JSON output.
type Window struct {
	SpentUSD  float64   `json:"spent_usd"`
	BudgetUSD *float64  `json:"budget_usd"`
	Resets    time.Time `json:"resets"`
}

// Key is one key in the JSON output.
type Key struct {
	Name        string     `json:"name"`
	Enabled     bool       `json:"enabled"`
	HashOnly    bool       `json:"hash_only"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Models      []string   `json:"models"`
	Groups      []string   `json:"groups"`
	RPM         int        `json:"rpm"`
	Concurrency int        `json:"concurrency"`
	Day         Window     `json:"day"`
	Week        Window     `json:"week"`
	Month       Window     `json:"month"`
	TokensToday int64      `json:"tokens_today"`
	DailyTokens int64      `json:"daily_tokens"`
	LastUsed    *time.Time `json:"last_used"`
}

func listRun(opts *Options) error {
	adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return err
	}
	if adm != nil {
		return serverRun(opts, adm)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	pol, err := policy.New(policy.Options{Keys: cfg.Keys, Now: opts.Now})
	if err != nil {
		return err
	}
	db, err := opts.DB()
	if err != nil {
		return err
	}
	if db != nil {
		if err := pol.Seed(context.Background(), db); err != nil {
			return err
		}
	}
	var out []Key
	for i, s := range pol.Status() {
		kc := cfg.Keys[i]
		k := Key{Name: s.Name, Enabled: s.Enabled, HashOnly: kc.Key == "", Models: kc.Models, Groups: kc.Groups, RPM: s.RPM,
			Concurrency: s.Concurrency, TokensToday: s.Tokens, DailyTokens: kc.DailyTokens}
		if !s.ExpiresAt.IsZero() {
			k.ExpiresAt = &s.ExpiresAt
		}
		if !s.LastUsed.IsZero() {
			k.LastUsed = &s.LastUsed
		}
		for w, dst := range []*Window{&k.Day, &k.Week, &k.Month} {
			dst.SpentUSD, dst.Resets = float64(s.Spent[w])/1e6, s.Resets[w]
			if b := s.Budget[w]; b > 0 {
				v := float64(b) / 1e6
				dst.BudgetUSD = &v
			}
		}
		out = append(out, k)
	}
	if opts.JSON {
		if out == nil {
			out = []Key{}
		}
		return cmdutil.WriteJSON(opts.IO.Out, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, noNamedKeys(cfg))
		return nil
	}
	tw := cmdutil.NewTable(opts.IO.Out)
	fmt.Fprintln(tw, "NAME\tSTATE\tMODELS\tGROUPS\tRPM\tCONC\tTODAY\tWEEK\tMONTH\tTOKENS TODAY\tLAST USED")
	now := opts.Now()
	for _, k := range out {
		state := "enabled"
		switch {
		case !k.Enabled:
			state = "disabled"
		case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
			state = "expired"
		}
		last := "never"
		if k.LastUsed != nil {
			last = k.LastUsed.Local().Format("2006-01-02 15:04")
		}
		toks := strconv.FormatInt(k.TokensToday, 10)
		if k.DailyTokens > 0 {
			toks += "/" + strconv.FormatInt(k.DailyTokens, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, state, list(k.Models), list(k.Groups), limit(k.RPM), limit(k.Concurrency),
			money(k.Day), money(k.Week), money(k.Month), toks, last)
	}
	return tw.Flush()
}

func list(s []string) string {
	if len(s) == 0 {
		return "all"
	}
	return strings.Join(s, ",")
}

func limit(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func money(w Window) string {
	s := "$" + strconv.FormatFloat(w.SpentUSD, 'f', 2, 64)
	if w.BudgetUSD != nil {
		s += "/$" + strconv.FormatFloat(*w.BudgetUSD, 'f', 2, 64)
	}
	return s
}

// noNamedKeys says what relay keys there are when no [[keys]] entry is:
// the unnamed ones of api_keys, or none at all (protected mode).
func noNamedKeys(cfg *config.Config) string {
	const add = "add a named one with 'ccrelay keys add NAME'"
	switch n := len(cfg.APIKeys); {
	case n > 0:
		return fmt.Sprintf("no [[keys]] configured; api_keys holds %d unnamed relay key(s), without limits (reported as api_keys[N]); %s", n, add)
	case cfg.AllowUnauthenticated:
		return "no relay key configured: with allow_unauthenticated = true the relay serves every client without a key; " + add
	}
	return "no relay key configured: protected mode, the relay serves only clients on its own machine; " + add
}
