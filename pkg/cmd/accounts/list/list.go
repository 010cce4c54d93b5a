// Package list implements `ccrelay accounts list`.
package list

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/accountview"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/shared"
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
	// Server is --server: ask a running relay instead of the local database.
	Server string
}

// NewCmdList builds `accounts list`.
func NewCmdList(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, DB: f.DB, Now: time.Now, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Show every account and its state",
		Long: heredoc.Doc(`
			Show every configured account: id, type, name, priority, whether it is enabled,
			its state (ready; cooling down until when and why, per model where a limit is
			per model; disabled; token invalid, with the command that fixes it), when it
			was last used, today's requests and tokens, and the latest rate-limit numbers
			the upstream reported: per window (Claude's 5h and 7d, Codex's primary and
			secondary, an API key's requests and tokens) a bar, the share used and when it
			resets, e.g. "5h ######.... 62% resets 14:00". Numbers older than their
			window are marked stale. --json gives the raw numbers and when they were seen.

			It reads the state database that 'ccrelay serve' writes, so it works whether or
			not a server is running. With --server (or $CCRELAY_SERVER) it asks a running
			relay, possibly remote, through its admin API instead, sending the admin key in
			$CCRELAY_ADMIN_KEY. No key or token is ever shown.
		`),
		Example: heredoc.Doc(`
			$ ccrelay accounts list
			$ CCRELAY_ADMIN_KEY=... ccrelay accounts list --server https://relay.example.com
			$ ccrelay accounts list --json | jq '.[] | select(.state != "ready")'
		`),
		Args: cobra.NoArgs,
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

func listRun(opts *Options) error {
	sts, err := statuses(opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, sts)
	}
	if len(sts) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no accounts configured; add an [[accounts]] entry to the config (see config.example.toml) or run 'ccrelay login claude'")
		return nil
	}
	tw := cmdutil.NewTable(opts.IO.Out)
	fmt.Fprintln(tw, "ID\tTYPE\tNAME\tPRIORITY\tSTATE\tLAST USED\tTODAY REQ\tTODAY TOKENS (in/out/cache)\tQUOTA")
	now := opts.Now()
	for _, s := range sts {
		last := "never"
		if s.LastUsed != nil {
			last = accountview.Ago(now.Sub(*s.LastUsed))
		}
		state := s.State
		if s.Detail != "" {
			state += ": " + s.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s/%s/%s\t%s\n", s.ID, s.Type, s.Name, s.Priority, state, last, s.Today.Requests,
			num(s.Today.InputTokens), num(s.Today.OutputTokens), num(s.Today.CacheReadTokens+s.Today.CacheCreationTokens), s.Quota.Line(now))
	}
	return tw.Flush()
}

// statuses reads the accounts from the relay at --server, or from the
// config and the local database.
func statuses(opts *Options) ([]shared.Status, error) {
	adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return nil, err
	}
	if adm != nil {
		// The admin API's accounts are this command's (one presenter,
		// internal/accountview) plus live-only fields, which are left out.
		var resp struct {
			Accounts []shared.Status `json:"accounts"`
		}
		if err := adm.Do(context.Background(), "GET", "accounts", nil, &resp); err != nil {
			return nil, err
		}
		if resp.Accounts == nil {
			resp.Accounts = []shared.Status{}
		}
		return resp.Accounts, nil
	}
	cfg, err := opts.Config()
	if err != nil {
		return nil, err
	}
	db, err := opts.DB()
	if err != nil {
		return nil, err
	}
	return shared.Statuses(context.Background(), cfg, db, opts.Now())
}

func num(n int64) string {
	switch {
	case n >= 10_000_000:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n >= 10_000:
		return strconv.FormatInt(n/1_000, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}
