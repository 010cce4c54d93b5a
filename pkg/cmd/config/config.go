// Package config implements `ccrelay config`: find, check and create the
// configuration file.
package config

import (
	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/pkg/cmd/config/initcmd"
	"github.com/ccrelay/ccrelay/pkg/cmd/config/path"
	"github.com/ccrelay/ccrelay/pkg/cmd/config/validate"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// NewCmdConfig builds the config command and its subcommands.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config <command>",
		Short: "Find, check and create the config file",
		Long: heredoc.Doc(`
			Work with ccrelay's config file (TOML). The file is the first that exists of:
			--config, $CCRELAY_CONFIG, ./config.toml, $XDG_CONFIG_HOME/ccrelay/config.toml
			(~/.config when unset), /etc/ccrelay/config.toml. CCRELAY_* environment variables
			and serve's flags override some of its settings.
		`),
		Example: heredoc.Doc(`
			$ ccrelay config init
			$ ccrelay config validate
			$ ccrelay config path
		`),
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(path.NewCmdPath(f, nil))
	cmd.AddCommand(validate.NewCmdValidate(f, nil))
	cmd.AddCommand(initcmd.NewCmdInit(f, nil))
	return cmd
}
