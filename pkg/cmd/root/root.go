// Package root builds ccrelay's command tree.
package root

import (
	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/pkg/cmd/accounts"
	"github.com/ccrelay/ccrelay/pkg/cmd/capture"
	configcmd "github.com/ccrelay/ccrelay/pkg/cmd/config"
	"github.com/ccrelay/ccrelay/pkg/cmd/env"
	"github.com/ccrelay/ccrelay/pkg/cmd/keys"
	"github.com/ccrelay/ccrelay/pkg/cmd/login"
	"github.com/ccrelay/ccrelay/pkg/cmd/requests"
	"github.com/ccrelay/ccrelay/pkg/cmd/serve"
	"github.com/ccrelay/ccrelay/pkg/cmd/sessions"
	"github.com/ccrelay/ccrelay/pkg/cmd/stats"
	"github.com/ccrelay/ccrelay/pkg/cmd/version"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// NewCmdRoot returns the root command with every subcommand.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ccrelay <command>",
		Short: "One endpoint for many Claude, Gemini and OpenAI accounts",
		Long: heredoc.Doc(`
			ccrelay sits between AI coding clients (Claude Code, Codex CLI, Gemini CLI, the
			Anthropic, OpenAI and Google SDKs) and the providers. It pools upstream accounts
			and serves each request from the best one: highest priority first, the same
			account for the same conversation, failover when one is rate-limited or down.

			Start with the README; the guides are under docs/ (clients, accounts, routing,
			teams, operations, cluster, reference).
		`),
		Example: heredoc.Doc(`
			$ ccrelay config init                # write a commented starter config.toml
			$ ccrelay login claude               # add a Claude subscription account
			$ ccrelay serve                      # run the relay
			$ eval "$(ccrelay env claude)"       # point Claude Code at the relay
			$ ccrelay accounts list              # see every account's state
			$ ccrelay stats --by account         # requests, tokens and latency per account
		`),
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       f.Version,
	}
	cmd.SetVersionTemplate(version.Format(f.Version, f.Commit, f.Date))
	cmd.PersistentFlags().StringVarP(f.ConfigPath, "config", "c", "", "config file (default: $CCRELAY_CONFIG, ./config.toml, $XDG_CONFIG_HOME/ccrelay/config.toml, /etc/ccrelay/config.toml)")
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })

	cmd.AddCommand(serve.NewCmdServe(f, nil))
	cmd.AddCommand(accounts.NewCmdAccounts(f))
	cmd.AddCommand(sessions.NewCmdSessions(f, nil))
	cmd.AddCommand(login.NewCmdLogin(f, nil))
	cmd.AddCommand(env.NewCmdEnv(f, nil))
	cmd.AddCommand(stats.NewCmdStats(f, nil))
	cmd.AddCommand(requests.NewCmdRequests(f, nil))
	cmd.AddCommand(capture.NewCmdCapture(f))
	cmd.AddCommand(keys.NewCmdKeys(f))
	cmd.AddCommand(configcmd.NewCmdConfig(f))
	cmd.AddCommand(version.NewCmdVersion(f))
	return cmd
}
