// Package keys groups the relay-key commands.
package keys

import (
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/pkg/cmd/keys/add"
	"github.com/ccrelay/ccrelay/pkg/cmd/keys/list"
	"github.com/ccrelay/ccrelay/pkg/cmd/keys/toggle"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// NewCmdKeys builds `keys` and its subcommands.
func NewCmdKeys(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys <command>",
		Short: "Add, list, disable, enable and remove named relay keys",
		Long: "Manage the [[keys]] entries of the config: named relay keys with their own models, " +
			"account groups, rate and concurrency limits, and budgets. A running server applies changes within seconds (it reloads its config file). " +
			"Keys, limits and budgets in full: docs/teams.md.",
	}
	cmd.AddCommand(add.NewCmdAdd(f, nil), list.NewCmdList(f, nil),
		toggle.NewCmdToggle(f, toggle.Disable, nil), toggle.NewCmdToggle(f, toggle.Enable, nil), toggle.NewCmdToggle(f, toggle.Remove, nil))
	return cmd
}
