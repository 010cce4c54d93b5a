// Package validate implements `ccrelay config validate`.
package validate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmd/config/path"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are config validate's inputs.
type Options struct {
	IO *iostreams.IOStreams
	// Explicit is the --config flag's value.
	Explicit *string
	Getenv   func(string) string
	// Viper carries the CCRELAY_* environment overrides.
	Viper *viper.Viper
	// File is the positional argument: a file to check instead of the one found.
	File string
}

// NewCmdValidate builds the config validate command.
func NewCmdValidate(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Explicit: f.ConfigPath, Getenv: f.Getenv, Viper: f.Viper}
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check the config file and list every problem",
		Long: heredoc.Doc(`
			Check a config file the way serve reads it: TOML syntax, unknown keys (each
			named with its line), value types and values, then the CCRELAY_* environment
			overrides. Every problem is listed, not only the first, and the command exits 1
			when there is any.

			It also warns, without failing, about things that work but are probably not
			meant: a file others can read, placeholders copied from config.example.toml,
			no accounts, no relay key at all (protected mode: only clients on this machine
			are served), or no key with allow_unauthenticated on a public address.

			Without FILE it checks the file that 'ccrelay config path' names.
		`),
		Example: heredoc.Doc(`
			$ ccrelay config validate
			$ ccrelay config validate /etc/ccrelay/config.toml
			$ ccrelay --config ./staging.toml config validate
		`),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return validateRun(opts)
		},
	}
	return cmd
}

func validateRun(opts *Options) error {
	file := opts.File
	explicit := ""
	if opts.Explicit != nil {
		explicit = *opts.Explicit
	}
	if file == "" {
		var err error
		file, err = config.Find(explicit, opts.Getenv)
		if errors.Is(err, config.ErrNotFound) {
			fmt.Fprint(opts.IO.ErrOut, path.SearchReport(explicit, opts.Getenv, ""))
			return fmt.Errorf("no config file found; create one with 'ccrelay config init'")
		}
		if err != nil {
			return err
		}
	}
	out := opts.IO.Out

	cfg, err := config.LoadFile(file)
	if err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			return err
		}
		printProblems(out, file, ce.Problems)
		return &cmdutil.ExitError{Code: 1, Err: cmdutil.ErrSilent}
	}
	if err := cfg.ApplyOverrides(opts.Viper); err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			return fmt.Errorf("CCRELAY_* environment overrides: %w", err)
		}
		fmt.Fprintf(out, "%s is valid, but with the CCRELAY_* environment overrides:\n", file)
		printProblems(out, "", ce.Problems)
		return &cmdutil.ExitError{Code: 1, Err: cmdutil.ErrSilent}
	}

	for _, w := range warnings(cfg, file) {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	enabled := 0
	for _, a := range cfg.Accounts {
		if a.Enabled {
			enabled++
		}
	}
	fmt.Fprintf(out, "%s is valid: %s (%d enabled), %s, listening on %s\n", file,
		plural(len(cfg.Accounts), "account"), enabled, relayKeys(cfg), cfg.Server.Addr())
	return nil
}

// relayKeys counts the relay keys of both kinds: "3 relay keys (1 in
// api_keys, 2 [[keys]])", or "no relay key (protected mode)".
func relayKeys(cfg *config.Config) string {
	n := len(cfg.APIKeys) + len(cfg.Keys)
	switch {
	case n == 0 && cfg.AllowUnauthenticated:
		return "no relay key (allow_unauthenticated: every client is served)"
	case n == 0:
		return "no relay key (protected mode: only clients on this machine are served)"
	case len(cfg.Keys) == 0:
		return plural(n, "relay key") + " (api_keys)"
	case len(cfg.APIKeys) == 0:
		return plural(n, "relay key") + " ([[keys]])"
	}
	return fmt.Sprintf("%s (%d in api_keys, %d [[keys]])", plural(n, "relay key"), len(cfg.APIKeys), len(cfg.Keys))
}

func printProblems(w io.Writer, file string, ps []config.Problem) {
	if file != "" {
		fmt.Fprintf(w, "%s: %s\n", file, plural(len(ps), "problem"))
	}
	for _, p := range ps {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// placeholderKeys are the example values of config.example.toml.
var placeholderKeys = []string{"change-me-relay-key"}

// warnings lists what is valid but probably a mistake.
func warnings(cfg *config.Config, file string) []string {
	var ws []string
	for _, w := range cfg.Warnings {
		ws = append(ws, w.String())
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		ws = append(ws, fmt.Sprintf("%s is readable by other users (mode %04o) and holds keys and tokens: chmod 600 %s", file, fi.Mode().Perm(), file))
	}
	for i, k := range cfg.APIKeys {
		for _, p := range placeholderKeys {
			if k == p {
				ws = append(ws, fmt.Sprintf("api_keys[%d] is the placeholder from config.example.toml: replace it with a secret of your own (ccrelay config init generates one)", i))
			}
		}
	}
	for i, k := range cfg.Keys {
		if strings.HasSuffix(k.Key, "...") {
			ws = append(ws, fmt.Sprintf("keys[%d] (%s): key looks like the placeholder from config.example.toml (ccrelay keys add NAME generates one)", i, k.Name))
		}
	}
	if w := noKeyWarning(cfg); w != "" {
		ws = append(ws, w)
	}
	if len(cfg.Accounts) == 0 {
		ws = append(ws, "no [[accounts]]: API calls will get 503 until you add one (ccrelay login claude, or an [[accounts]] entry)")
	} else {
		enabled := 0
		for i, a := range cfg.Accounts {
			if a.Enabled {
				enabled++
			}
			for _, fv := range [][2]string{{"refresh_token", a.RefreshToken}, {"api_key", a.APIKey}} {
				if strings.HasSuffix(fv[1], "...") {
					ws = append(ws, fmt.Sprintf("accounts[%d] (%s): %s looks like the placeholder from config.example.toml", i, a.ID, fv[0]))
				}
			}
		}
		if enabled == 0 {
			ws = append(ws, "every account is disabled: API calls will get 503")
		}
	}
	return ws
}

// noKeyWarning says how a relay without any relay key (api_keys and
// [[keys]] both empty) serves; "" when it has one.
func noKeyWarning(cfg *config.Config) string {
	if cfg.HasRelayKey() {
		return ""
	}
	const add = "add one with 'ccrelay keys add NAME' (or an api_keys entry)"
	switch {
	case cfg.AllowUnauthenticated && public(cfg.Server.Host):
		return fmt.Sprintf("no relay key, allow_unauthenticated = true and the relay listens on %s: anyone who reaches port %d can use your accounts; %s", cfg.Server.Host, cfg.Server.Port, add)
	case cfg.AllowUnauthenticated:
		return "no relay key and allow_unauthenticated = true: every client that reaches the relay is served without a key (usage is recorded as anonymous)"
	case public(cfg.Server.Host):
		return fmt.Sprintf("no relay key: protected mode, so although the relay listens on %s only clients on this machine are served and everyone else gets 403; %s", cfg.Server.Host, add)
	}
	return "no relay key: protected mode, only clients on this machine are served (usage is recorded as anonymous); " + add
}

// public reports whether host listens beyond the loopback interface.
func public(host string) bool {
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip == nil || !ip.IsLoopback()
}
