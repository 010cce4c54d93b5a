// Package testcmd implements `ccrelay accounts test`.
package testcmd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/credential"
	"github.com/ccrelay/ccrelay/internal/lockfile"
	"github.com/ccrelay/ccrelay/internal/probe"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are test's inputs.
type Options struct {
	IO      *iostreams.IOStreams
	Config  func() (*config.Config, error)
	IDs     []string
	JSON    bool
	Timeout time.Duration
}

// NewCmdTest builds `accounts test`.
func NewCmdTest(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "test [<id>...]",
		Short: "Check accounts live against their upstream",
		Long: heredoc.Doc(`
			Check each account (all, or the ones named) for real, through its own proxy and
			api_url: refresh its OAuth token where it has one, then make the smallest free
			upstream call (list models; for Code Assist accounts, loadCodeAssist). Prints ok
			and the latency, or the step that failed and the upstream's error.

			A rotated refresh token is saved to the state database, under the same
			per-account lock a running 'ccrelay serve' uses, so testing never burns a
			token the server relies on. Exits non-zero when any account fails.
		`),
		Example: heredoc.Doc(`
			$ ccrelay accounts test
			$ ccrelay accounts test claude-1 claude-2 --timeout 20s
		`),
		ValidArgsFunction: cmdutil.CompleteAccountIDs(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IDs = args
			if runF != nil {
				return runF(opts)
			}
			return testRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 30*time.Second, "per-account time limit")
	return cmd
}

func testRun(opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	var pick []config.AccountConfig
	if len(opts.IDs) == 0 {
		pick = cfg.Accounts
	} else {
		for _, id := range opts.IDs {
			found := false
			for _, a := range cfg.Accounts {
				if a.ID == id {
					pick, found = append(pick, a), true
				}
			}
			if !found {
				return cmdutil.FlagErrorf("no account %q in the config", id)
			}
		}
	}
	if len(pick) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no accounts configured")
		return nil
	}
	db, err := store.Open(cfg.Server.DatabasePath)
	if err != nil {
		return err
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	var locker credential.Locker = lockfile.ForDatabase(cfg.Server.DatabasePath)
	var credStore credential.Store = db
	if cfg.Cluster.RedisURL != "" {
		// Refresh under the cluster's lease, from the shared chain: a local
		// refresh could spend a token another relay already spent.
		cl, err := cluster.New(cfg.Cluster, db, log)
		if err != nil {
			return err
		}
		defer cl.Close()
		locker, credStore = cl.Locker(), cl.CredentialStore()
	}
	results := make([]probe.Result, len(pick))
	var wg sync.WaitGroup
	for i, ac := range pick {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := &scheduler.Account{ID: ac.ID, Type: ac.Type, Platform: ac.Platform()}
			up, _, err := app.NewUpstream(acct, ac, credStore, locker, log)
			if err != nil {
				results[i] = probe.Result{AccountID: ac.ID, Step: "setup", Error: err.Error()}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
			defer cancel()
			results[i] = probe.Run(ctx, up)
		}()
	}
	wg.Wait()
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	if opts.JSON {
		if err := cmdutil.WriteJSON(opts.IO.Out, results); err != nil {
			return err
		}
	} else {
		tw := cmdutil.NewTable(opts.IO.Out)
		fmt.Fprintln(tw, "ID\tRESULT\tLATENCY\tDETAIL")
		for _, r := range results {
			res, detail := "ok", ""
			if !r.OK {
				res, detail = "FAIL", r.Step+": "+r.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.AccountID, res, r.Latency.Round(time.Millisecond), detail)
		}
		tw.Flush()
	}
	if failed > 0 {
		return &cmdutil.ExitError{Code: 1, Err: fmt.Errorf("%d of %d accounts failed", failed, len(results))}
	}
	return nil
}
