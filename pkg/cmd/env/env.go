// Package env implements `ccrelay env`: the environment (and for Codex, the
// config lines) a client needs to use this relay.
package env

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Clients env knows how to configure.
var clients = []string{"claude", "codex", "gemini"}

// noAuthPlaceholder is printed as the key when the relay has no relay key:
// it does not check keys then, but the clients refuse to start without one.
const noAuthPlaceholder = "ccrelay-no-auth"

// noClearKeyPlaceholder is printed when every relay key is a [[keys]] entry
// stored as its sha256 only: the key itself is not in the config.
const noClearKeyPlaceholder = "your-relay-key"

// clientKey picks the relay key to print, and a note on it ("" when none is
// needed): the first of api_keys, else the first enabled [[keys]] entry that
// holds its key in clear, else a placeholder that says why.
func clientKey(cfg *config.Config) (key, note string) {
	if len(cfg.APIKeys) > 0 {
		return cfg.APIKeys[0], ""
	}
	for _, k := range cfg.Keys {
		if k.Key != "" && k.IsEnabled() {
			return k.Key, fmt.Sprintf("The key of [[keys]] %q: its limits and budgets apply and its usage is counted under its name. Give each person their own ('ccrelay keys add NAME').", k.Name)
		}
	}
	switch {
	case len(cfg.Keys) > 0:
		return noClearKeyPlaceholder, fmt.Sprintf("No relay key in clear in the config (%d [[keys]], each stored as its sha256 or disabled): replace %q with your relay key.", len(cfg.Keys), noClearKeyPlaceholder)
	case cfg.AllowUnauthenticated:
		return noAuthPlaceholder, fmt.Sprintf("No relay key and allow_unauthenticated = true: the relay serves every client without a key. %q only keeps the client from asking for one.", noAuthPlaceholder)
	}
	return noAuthPlaceholder, fmt.Sprintf("No relay key: protected mode, the relay serves only clients on its own machine, whatever key they send. %q only keeps the client from asking for one.", noAuthPlaceholder)
}

// Options are env's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Getenv func(string) string
	// HomeDir finds the user's home (for ~/.codex and ~/.gemini);
	// os.UserHomeDir by default.
	HomeDir func() (string, error)
	// GOOS picks the default shell on Windows (replaceable in tests).
	GOOS string

	// Client is claude, codex or gemini.
	Client string
	// Shell is sh, fish or powershell ("" = from $SHELL).
	Shell string
	// URL overrides the base URL derived from server.host and server.port.
	URL string
	// WriteCodexConfig writes the provider into Codex's config.toml.
	WriteCodexConfig bool
	// WriteGeminiSettings selects API-key auth in Gemini CLI's settings.json.
	WriteGeminiSettings bool
}

// NewCmdEnv builds the env command.
func NewCmdEnv(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Getenv: f.Getenv, HomeDir: os.UserHomeDir, GOOS: runtime.GOOS}
	cmd := &cobra.Command{
		Use:   "env {claude|codex|gemini}",
		Short: "Print the environment a client needs to use this relay",
		Long: heredoc.Doc(`
			Print what a client needs to send its requests through this relay, as shell
			code to evaluate: the base URL (from server.host and server.port; 0.0.0.0 and
			:: become 127.0.0.1) and a relay key: the first of api_keys, else the first
			enabled [[keys]] entry that holds its key in clear (its limits and budgets then
			apply). With no relay key at all the relay runs in protected mode (it serves
			only clients on its own machine, whatever key they send) and a placeholder is
			printed because the clients insist on having one.

			claude: ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN, which Claude Code sends as
			"Authorization: Bearer". The Anthropic SDKs read the same variables.

			gemini: GOOGLE_GEMINI_BASE_URL (the relay's URL followed by /gemini) and
			GEMINI_API_KEY. Gemini CLI also needs security.auth.selectedType =
			"gemini-api-key" in ~/.gemini/settings.json ($GEMINI_CLI_HOME/.gemini/settings.json):
			with GOOGLE_GEMINI_BASE_URL set and no auth selected there, it picks its
			"gateway" auth method and exits with "Invalid auth method selected."
			--write-gemini-settings sets it, keeping every other setting; without the flag
			a one-line hint on stderr says when the file lacks it.

			codex: Codex CLI ignores OPENAI_BASE_URL for its built-in provider, so it needs
			a provider in ~/.codex/config.toml ($CODEX_HOME/config.toml). The lines are
			printed as comments, with CCRELAY_API_KEY, the variable that provider reads the
			key from. --write-codex-config writes them into the file, keeping the rest of it.

			The output suits the shell named by --shell: sh (bash, zsh), fish or powershell.
			By default it follows $SHELL. Values are quoted for that shell, so the output is
			safe to evaluate whatever the key contains.

			Clients on another machine need the relay's public address: pass it with --url.
			Each client's set-up in full: docs/clients.md.
		`),
		Example: heredoc.Doc(`
			# bash / zsh
			$ eval "$(ccrelay env claude)"
			$ eval "$(ccrelay env codex --write-codex-config)"
			$ eval "$(ccrelay env gemini --write-gemini-settings)"

			# fish
			$ ccrelay env gemini --shell fish | source

			# PowerShell
			PS> ccrelay env claude --shell powershell | Out-String | Invoke-Expression

			# a relay behind a TLS reverse proxy
			$ ccrelay env claude --url https://relay.example.com
		`),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("name one client: ccrelay env {claude|codex|gemini}")
			}
			if !slices.Contains(clients, args[0]) {
				return cmdutil.FlagErrorf("unknown client %q: ccrelay env {claude|codex|gemini}", args[0])
			}
			return nil
		},
		ValidArgs: clients,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Client = args[0]
			if opts.Shell != "" {
				sh, ok := normalizeShell(opts.Shell)
				if !ok {
					return cmdutil.FlagErrorf("--shell must be sh, fish or powershell, not %q", opts.Shell)
				}
				opts.Shell = sh
			}
			if opts.WriteCodexConfig && opts.Client != "codex" {
				return cmdutil.FlagErrorf("--write-codex-config only applies to 'ccrelay env codex'")
			}
			if opts.WriteGeminiSettings && opts.Client != "gemini" {
				return cmdutil.FlagErrorf("--write-gemini-settings only applies to 'ccrelay env gemini'")
			}
			if opts.URL != "" {
				if _, err := parseBaseURL(opts.URL); err != nil {
					return cmdutil.FlagErrorf("--url: %v", err)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return envRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Shell, "shell", "", "output for sh, fish or powershell (default: from $SHELL, else sh)")
	fl.StringVar(&opts.URL, "url", "", "base URL clients use to reach the relay (default: from server.host and server.port)")
	fl.BoolVar(&opts.WriteCodexConfig, "write-codex-config", false, "codex: write the provider into $CODEX_HOME/config.toml (default ~/.codex/config.toml)")
	fl.BoolVar(&opts.WriteGeminiSettings, "write-gemini-settings", false, "gemini: select API-key auth in $GEMINI_CLI_HOME/.gemini/settings.json (default ~/.gemini/settings.json)")
	_ = cmd.RegisterFlagCompletionFunc("shell", cobra.FixedCompletions([]string{"sh", "fish", "powershell"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("url", cobra.NoFileCompletions)
	return cmd
}

func envRun(opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	shell := opts.Shell
	if shell == "" {
		shell = defaultShell(opts.Getenv, opts.GOOS)
	}
	base := baseURL(cfg.Server)
	if opts.URL != "" {
		u, err := parseBaseURL(opts.URL)
		if err != nil {
			return cmdutil.FlagErrorf("--url: %v", err)
		}
		base = u
	}
	key, note := clientKey(cfg)

	var s script
	source := "the defaults (no config file)"
	if cfg.Path != "" {
		source = cfg.Path
	}
	s.Comment("ccrelay at %s, from %s", base, source)
	if note != "" {
		s.Comment("%s", note)
	}

	switch opts.Client {
	case "claude":
		claudeEnv(&s, base, key)
	case "gemini":
		err = geminiEnv(opts, &s, base, key)
	case "codex":
		err = codexEnv(opts, &s, base, key)
	}
	if err != nil {
		return err
	}
	out, err := s.Render(shell)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(opts.IO.Out, out)
	return err
}

// claudeEnv sets Claude Code's variables.
func claudeEnv(s *script, base, key string) {
	s.Comment("%s", heredoc.Doc(`
		Claude Code sends ANTHROPIC_AUTH_TOKEN as "Authorization: Bearer <key>".
		ANTHROPIC_API_KEY works as well (sent as x-api-key; interactive Claude Code asks
		once to approve it). If ANTHROPIC_API_KEY holds an Anthropic key in this shell,
		unset it: Claude Code would send it to the relay too.`))
	s.Set("ANTHROPIC_BASE_URL", base)
	s.Set("ANTHROPIC_AUTH_TOKEN", key)
}

// geminiEnv sets Gemini CLI's variables and, with --write-gemini-settings,
// selects API-key auth in its settings file.
func geminiEnv(opts *Options, s *script, base, key string) error {
	path, pathErr := geminiSettingsPath(opts.Getenv, opts.HomeDir)
	if opts.WriteGeminiSettings {
		if pathErr != nil {
			return pathErr
		}
		msg, err := writeGeminiSettings(path)
		if err != nil {
			return err
		}
		fmt.Fprintln(opts.IO.ErrOut, msg)
		s.Comment("Gemini CLI uses GEMINI_API_KEY at the relay: %s selects", path)
		s.Comment(`  {"security": {"auth": {"selectedType": "gemini-api-key"}}}`)
	} else {
		// Without a home directory there is no file to check; the
		// comment below still says what Gemini CLI needs.
		if pathErr == nil {
			if hint := geminiSettingsHint(path); hint != "" {
				fmt.Fprintln(opts.IO.ErrOut, hint)
			}
		}
		s.Comment("%s", heredoc.Doc(`
			Gemini CLI also needs security.auth.selectedType = "gemini-api-key" in
			~/.gemini/settings.json, or it exits with "Invalid auth method selected":
			  {"security": {"auth": {"selectedType": "gemini-api-key"}}}
			or run: ccrelay env gemini --write-gemini-settings`))
	}
	if u, err := url.Parse(base); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		s.Comment("Gemini CLI wants an https:// base URL unless the host is localhost: put the relay behind TLS and pass --url.")
	}
	s.Set("GOOGLE_GEMINI_BASE_URL", base+"/gemini")
	s.Set("GEMINI_API_KEY", key)
	return nil
}

// codexEnv sets Codex CLI's key variable and shows (or, with
// --write-codex-config, writes) the provider lines of its config.
func codexEnv(opts *Options, s *script, base, key string) error {
	if opts.WriteCodexConfig {
		path, err := codexConfigPath(opts.Getenv, opts.HomeDir)
		if err != nil {
			return err
		}
		msg, err := writeCodexConfig(path, base)
		if err != nil {
			return err
		}
		fmt.Fprintln(opts.IO.ErrOut, msg)
		s.Comment("Codex CLI reads the relay from the ccrelay provider in %s:", path)
	} else {
		s.Comment("Codex CLI ignores OPENAI_BASE_URL for its built-in provider. Add these lines to\n~/.codex/config.toml ($CODEX_HOME/config.toml), model_provider above any [table],\nor run: ccrelay env codex --write-codex-config")
	}
	s.Comment("")
	for _, l := range codexLines(base) {
		if l == "" {
			s.Comment("")
		} else {
			s.Comment("  %s", l)
		}
	}
	s.Comment("")
	s.Comment("The provider sends %s as \"Authorization: Bearer\".", codexKeyEnv)
	s.Set(codexKeyEnv, key)
	return nil
}

// defaultShell is fish when $SHELL is fish, powershell on Windows, else sh.
func defaultShell(getenv func(string) string, goos string) string {
	if sh, ok := normalizeShell(filepath.Base(getenv("SHELL"))); ok && getenv("SHELL") != "" {
		return sh
	}
	if goos == "windows" {
		return shellPowerShell
	}
	return shellSh
}

// baseURL is the relay's address as a local client reaches it: a wildcard
// listen address is reached through the loopback interface.
func baseURL(s config.ServerConfig) string {
	host := strings.TrimSuffix(strings.TrimPrefix(s.Host, "["), "]")
	switch host {
	case "", "0.0.0.0", "::", "::0", "0:0:0:0:0:0:0:0":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.Port))
}

// parseBaseURL checks a --url value and drops a trailing slash.
func parseBaseURL(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", errors.New("the URL is not valid UTF-8")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: a base URL has no query, fragment or user info", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
