// Package sessions implements `ccrelay sessions` and `ccrelay sessions clear`.
package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are the inputs of both commands.
type Options struct {
	IO *iostreams.IOStreams
	// Config tells whether a cluster's Redis holds the sessions.
	Config  func() (*config.Config, error)
	DB      func() (*store.DB, error)
	Now     func() time.Time
	Getenv  func(string) string
	JSON    bool
	Key     string
	Account string
	// Server is --server: ask a running relay through its admin API.
	Server string
}

// NewCmdSessions builds `sessions` (list) with its `clear` subcommand.
func NewCmdSessions(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, DB: f.DB, Now: time.Now, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List sticky sessions (conversation -> account)",
		Long: heredoc.Doc(`
			List the sticky sessions: which account each conversation is bound to and when
			the binding expires. A conversation stays on its account so the provider's
			prompt cache stays warm; it moves only when that account is unavailable.
			Reads the state database, with or without a running server; with --server (or
			$CCRELAY_SERVER) it asks the relay at that URL through its admin API, with the
			admin key in $CCRELAY_ADMIN_KEY.
		`),
		Example: heredoc.Doc(`
			$ ccrelay sessions
			$ ccrelay sessions --json
			$ ccrelay sessions clear --account claude-1
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
	cmd.AddCommand(NewCmdClear(f, nil))
	return cmd
}

// NewCmdClear builds `sessions clear`.
func NewCmdClear(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, DB: f.DB, Now: time.Now, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "clear [<key>] [--account ID]",
		Short: "Remove sticky sessions",
		Long: heredoc.Doc(`
			Remove one sticky session (by key), all of one account's (--account), or, with
			neither, all of them. The next request of each conversation is scheduled
			afresh. A running server picks the change up within a second. With --server
			the relay at that URL clears them through its admin API.
		`),
		Example: heredoc.Doc(`
			$ ccrelay sessions clear 9f1c0e34-5b7a-4d2e-8c61-0a1b2c3d4e5f
			$ ccrelay sessions clear --account claude-1
			$ ccrelay sessions clear
		`),
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: cmdutil.CompleteSessionKeys(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Key = args[0]
			}
			if opts.Key != "" && opts.Account != "" {
				return cmdutil.FlagErrorf("give a session key or --account, not both")
			}
			if runF != nil {
				return runF(opts)
			}
			return clearRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Account, "account", "", "remove only this account's sessions")
	cmdutil.AddServerFlag(cmd, &opts.Server)
	_ = cmd.RegisterFlagCompletionFunc("account", cmdutil.CompleteAccountIDs(f))
	return cmd
}

func listRun(opts *Options) error {
	ss, err := bindings(opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		type row struct {
			Key       string    `json:"key"`
			Account   string    `json:"account"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		rows := make([]row, len(ss))
		for i, s := range ss {
			rows[i] = row{s.Key, s.AccountID, s.ExpiresAt}
		}
		return cmdutil.WriteJSON(opts.IO.Out, rows)
	}
	if len(ss) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no sticky sessions")
		return nil
	}
	tw := cmdutil.NewTable(opts.IO.Out)
	fmt.Fprintln(tw, "KEY\tACCOUNT\tEXPIRES")
	now := opts.Now()
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s (in %s)\n", s.Key, s.AccountID, s.ExpiresAt.Local().Format("2006-01-02 15:04:05"), s.ExpiresAt.Sub(now).Round(time.Second))
	}
	return tw.Flush()
}

// bindings reads the sessions from the relay at --server, the cluster's
// Redis, or the local database.
func bindings(opts *Options) ([]state.Binding, error) {
	remote, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return nil, err
	}
	if remote != nil {
		var resp struct {
			Sessions []struct {
				Key       string    `json:"key"`
				Account   string    `json:"account"`
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"sessions"`
		}
		if err := remote.Do(context.Background(), "GET", "sessions", nil, &resp); err != nil {
			return nil, err
		}
		out := make([]state.Binding, len(resp.Sessions))
		for i, s := range resp.Sessions {
			out[i] = state.Binding{Key: s.Key, AccountID: s.Account, ExpiresAt: s.ExpiresAt}
		}
		return out, nil
	}
	adm, err := dialCluster(opts)
	if err != nil {
		return nil, err
	}
	db, err := opts.DB()
	if err != nil {
		return nil, err
	}
	var ss []state.Binding
	if adm != nil {
		defer adm.Close()
		if ss, err = adm.Sessions(context.Background(), opts.Now()); err != nil {
			return nil, err
		}
	} else if db != nil {
		if ss, err = db.Sessions(context.Background(), opts.Now()); err != nil {
			return nil, err
		}
	}
	if ss == nil {
		ss = []state.Binding{}
	}
	return ss, nil
}

// dialCluster connects to the cluster's Redis when the config has one
// (nil, nil otherwise): the sessions are then the cluster's.
func dialCluster(opts *Options) (*cluster.Admin, error) {
	if opts.Config == nil {
		return nil, nil
	}
	cfg, err := opts.Config()
	if err != nil || cfg.Cluster.RedisURL == "" {
		return nil, err
	}
	return cluster.Dial(context.Background(), cfg.Cluster)
}

func clearRun(opts *Options) error {
	remote, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return err
	}
	if remote != nil {
		var r struct {
			Removed int64 `json:"removed"`
		}
		if err := remote.Do(context.Background(), "POST", "sessions/clear", map[string]string{"key": opts.Key, "account": opts.Account}, &r); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "removed %d session(s)\n", r.Removed)
		return nil
	}
	adm, err := dialCluster(opts)
	if err != nil {
		return err
	}
	if adm != nil {
		defer adm.Close()
		n, err := adm.ClearSessions(context.Background(), opts.Key, opts.Account)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "removed %d session(s) on every relay of the cluster\n", n)
		return nil
	}
	db, err := opts.DB()
	if err != nil {
		return err
	}
	if db == nil {
		fmt.Fprintln(opts.IO.ErrOut, "no state database yet: no sessions")
		return nil
	}
	ctx := context.Background()
	n, err := db.DeleteSessions(ctx, opts.Key, opts.Account)
	if err != nil {
		return err
	}
	if err := db.AddCommand(ctx, store.Command{Kind: "clear_sessions", AccountID: opts.Account, SessionKey: opts.Key}); err != nil {
		return fmt.Errorf("notify a running server: %w", err)
	}
	fmt.Fprintf(opts.IO.Out, "removed %d session(s)\n", n)
	return nil
}
