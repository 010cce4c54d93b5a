// Package toggle implements `ccrelay keys disable`, `enable` and `remove`.
package toggle

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Action is what the command does to a key.
type Action string

// The actions.
const (
	Disable Action = "disable"
	Enable  Action = "enable"
	Remove  Action = "remove"
)

// Options are the command's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Action Action
	Names  []string
}

var shorts = map[Action]string{
	Disable: "Refuse a relay key (403) until it is enabled again",
	Enable:  "Accept a disabled relay key again",
	Remove:  "Delete a relay key's [[keys]] entry from the config",
}

// NewCmdToggle builds `keys disable`, `keys enable` or `keys remove`.
func NewCmdToggle(f *cmdutil.Factory, action Action, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Action: action}
	cmd := &cobra.Command{
		Use:               string(action) + " <name>...",
		Short:             shorts[action],
		Long:              shorts[action] + ". The config file is edited in place (comments kept, atomic, 0600); a running server applies it within seconds (it reloads its config file).",
		Example:           "$ ccrelay keys " + string(action) + " alice",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: CompleteKeyNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			if runF != nil {
				return runF(opts)
			}
			return toggleRun(opts)
		},
	}
	return cmd
}

func toggleRun(opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	if cfg.Path == "" {
		return errors.New("no config file found (name one with --config)")
	}
	for _, n := range opts.Names {
		if !slices.ContainsFunc(cfg.Keys, func(k config.KeyConfig) bool { return k.Name == n }) {
			return cmdutil.FlagErrorf("no [[keys]] entry named %q in %s", n, cfg.Path)
		}
	}
	for _, n := range opts.Names {
		switch opts.Action {
		case Remove:
			err = config.RemoveKey(cfg.Path, n)
		default:
			err = config.SetKeyField(cfg.Path, n, "enabled", opts.Action == Enable)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "%s: %sd in %s\n", n, opts.Action, cfg.Path)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s.\n", cmdutil.AppliesLive)
	return nil
}

// CompleteKeyNames completes [[keys]] names from the config file.
func CompleteKeyNames(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := f.Config()
		if err != nil || cfg == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, k := range cfg.Keys {
			if len(k.Name) >= len(toComplete) && k.Name[:len(toComplete)] == toComplete && !slices.Contains(args, k.Name) {
				desc := "enabled"
				if !k.IsEnabled() {
					desc = "disabled"
				}
				out = append(out, cobra.CompletionWithDesc(k.Name, desc))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
