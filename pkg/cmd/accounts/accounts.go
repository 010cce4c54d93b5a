// Package accounts groups the account commands.
package accounts

import (
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/list"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/reset"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/testcmd"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// NewCmdAccounts builds `accounts` and its subcommands.
func NewCmdAccounts(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accounts <command>",
		Short: "List, test and reset upstream accounts",
		Long: "See the configured upstream accounts and their state, check them live, and clear cooldowns. " +
			"Account types and fields: docs/accounts.md.",
	}
	cmd.AddCommand(list.NewCmdList(f, nil), testcmd.NewCmdTest(f, nil), reset.NewCmdReset(f, nil))
	return cmd
}
