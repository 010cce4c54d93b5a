// Package capture implements `ccrelay capture on|off|list`: opt-in body
// capture for debugging, per relay key, per account or for errors only.
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are the inputs of the capture commands.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	DB     func() (*store.DB, error)
	Now    func() time.Time
	Getenv func(string) string

	// Spec is what `capture on` asks for.
	Spec reqlog.Spec
	// ID is the capture `capture off` stops.
	ID   int64
	JSON bool
	// Server is --server: act through a running relay's admin API.
	Server string
}

// NewCmdCapture builds `capture` with its subcommands.
func NewCmdCapture(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "capture <command>",
		Short: "Capture request and answer bodies for debugging (off by default)",
		Long: heredoc.Doc(`
			Store the bodies of some requests for a while, to see what a client sent and
			what it got back: one relay key's requests (--key), one account's (--account),
			or every request that ends in an error (--errors), a share of them
			(--sample), for a time (--for, default 1h, at most 7 days). Streams are stored
			as the events the client received. Each body is cut at --max-body (default
			256 KiB); the client's credentials, the accounts' secrets, anything shaped
			like a provider key or token and JSON fields named like credentials are
			replaced by [redacted] before anything is written. The bodies are deleted
			--keep (default 24h) after the capture ends.

			'ccrelay requests <id>' shows them; the dashboard shows a banner while a
			capture runs.

			Without --server the capture is written to the database at
			server.database_path, and a running relay applies it within two seconds.
		`),
	}
	cmd.AddCommand(NewCmdOn(f, nil), NewCmdOff(f, nil), NewCmdList(f, nil))
	return cmd
}

func newOptions(f *cmdutil.Factory) *Options {
	return &Options{IO: f.IOStreams, Config: f.Config, DB: f.DB, Now: time.Now, Getenv: f.Getenv}
}

// NewCmdOn builds `capture on`.
func NewCmdOn(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:   "on {--key NAME | --account ID | --errors} [--for 1h]",
		Short: "Start capturing bodies",
		Example: heredoc.Doc(`
			$ ccrelay capture on --key alice --for 1h
			$ ccrelay capture on --account claude-2 --errors --sample 0.1 --for 30m
			$ ccrelay capture on --errors --for 2h --server http://relay:3000
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := opts.Spec.Build(time.Now()); err != nil {
				return cmdutil.FlagErrorf("%v", err)
			}
			if runF != nil {
				return runF(opts)
			}
			return onRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Spec.Key, "key", "", "capture this relay key's requests ([[keys]] name)")
	fl.StringVar(&opts.Spec.Account, "account", "", "capture requests this account served or failed")
	fl.BoolVar(&opts.Spec.ErrorsOnly, "errors", false, "capture only requests that end with status 400 or more")
	fl.Float64Var(&opts.Spec.SampleRate, "sample", 1, "share of matching requests to capture, 0 to 1")
	fl.StringVar(&opts.Spec.For, "for", "1h", "how long to capture (at most 168h)")
	fl.StringVar(&opts.Spec.Keep, "keep", "24h", "how long the bodies are kept after the capture ends")
	fl.IntVar(&opts.Spec.MaxBodyBytes, "max-body", reqlog.DefaultMaxBodyBytes, "cut each stored body at this many bytes")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	cmdutil.AddServerFlag(cmd, &opts.Server)
	return cmd
}

// NewCmdOff builds `capture off`.
func NewCmdOff(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:     "off <capture-id>",
		Short:   "Stop a capture (its bodies stay until its keep time ends)",
		Example: "$ ccrelay capture off 3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return cmdutil.FlagErrorf("capture id must be a number (see ccrelay capture list), not %q", args[0])
			}
			opts.ID = id
			if runF != nil {
				return runF(opts)
			}
			return offRun(opts)
		},
	}
	cmdutil.AddServerFlag(cmd, &opts.Server)
	return cmd
}

// NewCmdList builds `capture list`.
func NewCmdList(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the captures running or with bodies still kept",
		Args:  cobra.NoArgs,
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

// localDB is the writable database of the local relay.
func localDB(opts *Options) (*store.DB, error) {
	db, err := opts.DB()
	if err != nil {
		return nil, err
	}
	if db == nil {
		cfg, _ := opts.Config()
		path := ""
		if cfg != nil {
			path = cfg.Server.DatabasePath
		}
		return nil, fmt.Errorf("no database at %s: start the relay once (ccrelay serve), or pass --server", path)
	}
	return db, nil
}

func onRun(opts *Options) error {
	ctx := context.Background()
	c, err := opts.Spec.Build(opts.Now())
	if err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return err
	}
	if adm != nil {
		if err := adm.Do(ctx, "POST", "captures", opts.Spec, &c); err != nil {
			return err
		}
	} else {
		db, err := localDB(opts)
		if err != nil {
			return err
		}
		if c, err = db.AddCapture(ctx, c); err != nil {
			return err
		}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, c)
	}
	fmt.Fprintf(opts.IO.Out, "Capture %d on: %s until %s; bodies kept until %s.\n", c.ID, describe(c),
		c.Until.Local().Format("2006-01-02 15:04"), c.Expires().Local().Format("2006-01-02 15:04"))
	if adm == nil {
		fmt.Fprintln(opts.IO.ErrOut, "A running relay on this database applies it within two seconds (in a cluster, that relay only: --server starts it on every relay). Stop it with: ccrelay capture off "+strconv.FormatInt(c.ID, 10))
	}
	return nil
}

func offRun(opts *Options) error {
	ctx := context.Background()
	adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return err
	}
	if adm != nil {
		if err := adm.Do(ctx, "POST", "captures/"+strconv.FormatInt(opts.ID, 10)+"/stop", struct{}{}, nil); err != nil {
			return err
		}
	} else {
		db, err := localDB(opts)
		if err != nil {
			return err
		}
		ok, err := db.StopCapture(ctx, opts.ID, opts.Now())
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("no running capture " + strconv.FormatInt(opts.ID, 10) + " (see ccrelay capture list)")
		}
	}
	fmt.Fprintf(opts.IO.Out, "Capture %d off; what it stored stays until its keep time ends.\n", opts.ID)
	return nil
}

func listRun(opts *Options) error {
	ctx := context.Background()
	var list admin.CaptureList
	adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
	if err != nil {
		return err
	}
	if adm != nil {
		if err := adm.Do(ctx, "GET", "captures", nil, &list); err != nil {
			return err
		}
	} else {
		db, err := localDB(opts)
		if err != nil {
			return err
		}
		cs, err := db.Captures(ctx, opts.Now())
		if err != nil {
			return err
		}
		list.Captures = cs
		for i := range cs {
			if cs[i].Active(opts.Now()) {
				list.Active++
			}
		}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, list)
	}
	if len(list.Captures) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No captures: body capture is off.")
		return nil
	}
	return writeTable(opts.IO.Out, list.Captures, opts.Now())
}

func writeTable(w io.Writer, cs []reqlog.Capture, now time.Time) error {
	tw := cmdutil.NewTable(w)
	fmt.Fprintln(tw, "ID\tSTATE\tTAKES\tSAMPLE\tUNTIL\tCAPTURED\tBODIES KEPT UNTIL")
	for _, c := range cs {
		state := "on"
		switch {
		case c.Stopped:
			state = "stopped"
		case !c.Active(now):
			state = "ended"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%g\t%s\t%d\t%s\n", c.ID, state, describe(c), c.SampleRate,
			c.Until.Local().Format("01-02 15:04"), c.Captured, c.Expires().Local().Format("01-02 15:04"))
	}
	return tw.Flush()
}

// describe says which requests c takes.
func describe(c reqlog.Capture) string {
	s := ""
	add := func(p string) {
		if s != "" {
			s += ", "
		}
		s += p
	}
	if c.Key != "" {
		add("key " + c.Key)
	}
	if c.Account != "" {
		add("account " + c.Account)
	}
	if c.ErrorsOnly {
		add("errors")
	}
	if c.Key == "" && c.Account == "" {
		s = "every request that fails"
	}
	if c.LocalTo != "" {
		s += " (relay " + c.LocalTo + " only)"
	}
	return s
}
