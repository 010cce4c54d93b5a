// Package path implements `ccrelay config path`.
package path

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are config path's inputs.
type Options struct {
	IO *iostreams.IOStreams
	// Explicit is the --config flag's value.
	Explicit *string
	Getenv   func(string) string
}

// NewCmdPath builds the config path command.
func NewCmdPath(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Explicit: f.ConfigPath, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "path",
		Short: "Print the config file that ccrelay would use",
		Long: heredoc.Doc(`
			Print the path of the config file that serve and the other commands would read:
			the --config flag, else the first file that exists of $CCRELAY_CONFIG,
			./config.toml, $XDG_CONFIG_HOME/ccrelay/config.toml (~/.config when unset) and
			/etc/ccrelay/config.toml.

			Only the path goes to standard output. On a terminal the search order follows
			on standard error, with what was found at each place. When no file exists the
			command fails, and ccrelay serve would run on the defaults.
		`),
		Example: heredoc.Doc(`
			$ ccrelay config path
			$ $EDITOR "$(ccrelay config path)"
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return pathRun(opts)
		},
	}
	return cmd
}

func pathRun(opts *Options) error {
	explicit := ""
	if opts.Explicit != nil {
		explicit = *opts.Explicit
	}
	found, err := config.Find(explicit, opts.Getenv)
	if err != nil && !errors.Is(err, config.ErrNotFound) {
		return err
	}
	if found != "" {
		fmt.Fprintln(opts.IO.Out, found)
	}
	if opts.IO.IsStdoutTTY() || found == "" {
		fmt.Fprint(opts.IO.ErrOut, SearchReport(explicit, opts.Getenv, found))
	}
	if found == "" {
		return fmt.Errorf("no config file found; create one with 'ccrelay config init'")
	}
	return nil
}

// SearchReport describes the lookup order and what each place holds.
func SearchReport(explicit string, getenv func(string) string, used string) string {
	var b strings.Builder
	b.WriteString("Search order:\n")
	if explicit != "" {
		fmt.Fprintf(&b, "  --config  %s  %s\n", explicit, state(explicit, used))
		b.WriteString("  (--config given: no other place is searched)\n")
		return b.String()
	}
	for i, p := range config.SearchPaths(getenv) {
		label := ""
		if i == 0 && getenv("CCRELAY_CONFIG") != "" {
			label = " ($CCRELAY_CONFIG)"
		}
		fmt.Fprintf(&b, "  %d. %s%s  %s\n", i+1, p, label, state(p, used))
	}
	return b.String()
}

func state(p, used string) string {
	_, err := os.Stat(p)
	switch {
	case p == used:
		return "<- used"
	case err == nil && used != "":
		return "(exists, not used: an earlier file wins)"
	case err == nil:
		return "(exists)"
	case errors.Is(err, os.ErrNotExist):
		return "(not found)"
	default:
		return fmt.Sprintf("(%v)", err)
	}
}
