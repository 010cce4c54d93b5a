// Package reset implements `ccrelay accounts reset`.
package reset

import (
	"context"
	"fmt"
	"net/url"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are reset's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	DB     func() (*store.DB, error)
	Getenv func(string) string
	IDs    []string
	// Server is --server: reset on a running relay through its admin API.
	Server string
}

// NewCmdReset builds `accounts reset`.
func NewCmdReset(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, DB: f.DB, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "reset <id>...",
		Short: "Clear an account's cooldowns by hand",
		Long: heredoc.Doc(`
			Clear every cooldown of the named accounts (whole-account and per-model), so
			the relay uses them again at once. A running server picks the change up within
			a second. A "token invalid" account needs a new login instead:
			ccrelay login claude --account ID.

			With --server (or $CCRELAY_SERVER) the relay at that URL resets them through
			its admin API, with the admin key in $CCRELAY_ADMIN_KEY.
		`),
		Example: heredoc.Doc(`
			$ ccrelay accounts reset claude-1
			$ CCRELAY_ADMIN_KEY=... ccrelay accounts reset claude-1 --server http://10.0.0.5:3000
		`),
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: cmdutil.CompleteAccountIDs(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IDs = args
			if runF != nil {
				return runF(opts)
			}
			return resetRun(opts)
		},
	}
	cmdutil.AddServerFlag(cmd, &opts.Server)
	return cmd
}

func resetRun(opts *Options) error {
	adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return err
	}
	if adm != nil {
		for _, id := range opts.IDs {
			var r struct {
				Cleared int `json:"cleared"`
			}
			if err := adm.Do(context.Background(), "POST", "accounts/"+url.PathEscape(id)+"/reset", nil, &r); err != nil {
				return fmt.Errorf("reset %s: %w", id, err)
			}
			fmt.Fprintf(opts.IO.Out, "%s: cleared %d cooldown(s)\n", id, r.Cleared)
		}
		return nil
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range cfg.Accounts {
		known[a.ID] = true
	}
	for _, id := range opts.IDs {
		if !known[id] {
			return cmdutil.FlagErrorf("no account %q in %s", id, cfgName(cfg))
		}
	}
	if cfg.Cluster.RedisURL != "" {
		return resetShared(opts, cfg)
	}
	db, err := opts.DB()
	if err != nil {
		return err
	}
	if db == nil {
		fmt.Fprintln(opts.IO.ErrOut, "no state database yet: nothing to reset")
		return nil
	}
	ctx := context.Background()
	for _, id := range opts.IDs {
		n, err := db.DeleteCooldowns(ctx, id)
		if err != nil {
			return fmt.Errorf("reset %s: %w", id, err)
		}
		if err := db.AddCommand(ctx, store.Command{Kind: "reset_account", AccountID: id}); err != nil {
			return fmt.Errorf("notify a running server: %w", err)
		}
		fmt.Fprintf(opts.IO.Out, "%s: cleared %d cooldown(s)\n", id, n)
	}
	return nil
}

// resetShared clears the cooldowns in the cluster's Redis; every relay
// applies the change at once.
func resetShared(opts *Options, cfg *config.Config) error {
	ctx := context.Background()
	adm, err := cluster.Dial(ctx, cfg.Cluster)
	if err != nil {
		return err
	}
	defer adm.Close()
	for _, id := range opts.IDs {
		n, err := adm.ResetAccount(ctx, id)
		if err != nil {
			return fmt.Errorf("reset %s: %w", id, err)
		}
		fmt.Fprintf(opts.IO.Out, "%s: cleared %d cooldown(s) on every relay of the cluster\n", id, n)
	}
	return nil
}

func cfgName(c *config.Config) string {
	if c.Path == "" {
		return "the config (no config file found)"
	}
	return c.Path
}
