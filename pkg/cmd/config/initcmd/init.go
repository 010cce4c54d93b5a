// Package initcmd implements `ccrelay config init` (a package cannot be
// named init).
package initcmd

import (
	"bytes"
	"crypto/rand"
	_ "embed" // the starter config
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fsutil"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Example is a copy of the repository's config.example.toml, which a package
// cannot embed from the module root. `go run ./cmd/gen-docs` refreshes it and
// a test fails when the two differ.
//
//go:embed example.toml
var Example []byte

// ExampleFile is where Example is kept, relative to the repository root.
const ExampleFile = "pkg/cmd/config/initcmd/example.toml"

// Options are config init's inputs.
type Options struct {
	IO *iostreams.IOStreams
	// Explicit is the --config flag's value, the target when --path is not given.
	Explicit *string
	// Path is --path ("-" = standard output).
	Path string
	// Force replaces an existing file.
	Force bool
	// NewKey makes the relay key (replaceable in tests).
	NewKey func() string
	// NewAdminKey makes the admin key (replaceable in tests).
	NewAdminKey func() string
}

// NewCmdInit builds the config init command.
func NewCmdInit(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Explicit: f.ConfigPath, NewKey: NewRelayKey, NewAdminKey: NewAdminKey}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starter config file",
		Long: heredoc.Doc(`
			Write a starter config: every setting with its default and a comment, a newly
			generated relay key in api_keys, a newly generated admin key in admin_keys (it
			opens the dashboard at /dashboard and the admin API), and the example
			[[accounts]] entries commented out so that nothing fake is used. Add an account
			with 'ccrelay login claude' (or 'ccrelay login gemini'), or by un-commenting an
			entry and filling it in. Neither key is printed: both are in the file.

			The file goes to --path, else to the --config path, else to ./config.toml. It
			is written with mode 0600, since it holds keys and tokens, and an existing file
			is never replaced unless --force is given.

			Every setting: config.example.toml. Accounts: docs/accounts.md; keys and
			budgets: docs/teams.md; the dashboard and admin API: docs/operations.md.
		`),
		Example: heredoc.Doc(`
			$ ccrelay config init
			$ ccrelay config init --path ~/.config/ccrelay/config.toml
			$ ccrelay config init --path - | less
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return initRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Path, "path", "", "file to write, or - for standard output (default: --config, else ./config.toml)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing file")
	_ = cmd.MarkFlagFilename("path", "toml")
	return cmd
}

func initRun(opts *Options) error {
	adminKey := NewAdminKey
	if opts.NewAdminKey != nil {
		adminKey = opts.NewAdminKey
	}
	data, err := Starter(Example, opts.NewKey(), adminKey())
	if err != nil {
		return err
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return err
	}
	target := opts.Path
	if target == "" && opts.Explicit != nil {
		target = *opts.Explicit
	}
	if target == "" {
		target = "config.toml"
	}
	if target == "-" {
		_, err := opts.IO.Out.Write(data)
		return err
	}
	if _, err := os.Lstat(target); err == nil && !opts.Force {
		return fmt.Errorf("%s already exists; check it with 'ccrelay config validate', or pass --force to replace it", target)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir := filepath.Dir(target); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := fsutil.WriteFileAtomic(target, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, heredoc.Doc(`
		Wrote %s (mode 0600) with a new relay key in api_keys and a new admin key in admin_keys.
		Next:
		  1. add an account: ccrelay login claude   (or edit an [[accounts]] entry)
		  2. start the relay: ccrelay serve%s
		  3. point a client at it: eval "$(ccrelay env claude)"
		The dashboard: %s (sign in with the admin key from admin_keys in %s).
	`), target, configFlag(target), cmdutil.DashboardURL(cfg.Server.Host, cfg.Server.Port), target)
	return nil
}

// configFlag is the --config flag that finds target, when the default
// search would not.
func configFlag(target string) string {
	if filepath.Clean(target) == "config.toml" {
		return ""
	}
	return " --config " + target
}

var (
	apiKeysLine   = regexp.MustCompile(`(?m)^api_keys = \[.*\]`)
	adminKeysLine = regexp.MustCompile(`(?m)^# admin_keys = \[.*\]`)
	accountsStart = regexp.MustCompile(`(?m)^# -+ Accounts`)
)

// Starter turns config.example.toml into a starter config: a real relay key
// and a real admin key instead of the placeholders (the example's admin_keys
// line is commented out; the starter's is not), and the example accounts
// (fake credentials) commented out. The result is checked to load.
func Starter(example []byte, relayKey, adminKey string) ([]byte, error) {
	if !apiKeysLine.Match(example) {
		return nil, errors.New("starter config: the example has no api_keys line")
	}
	if !adminKeysLine.Match(example) {
		return nil, errors.New("starter config: the example has no admin_keys line")
	}
	loc := accountsStart.FindIndex(example)
	if loc == nil {
		return nil, errors.New("starter config: the example has no accounts section")
	}
	head := apiKeysLine.ReplaceAll(example[:loc[0]], []byte(`api_keys = ["`+relayKey+`"]`))
	head = adminKeysLine.ReplaceAll(head, []byte(`admin_keys = ["`+adminKey+`"]`))
	var b bytes.Buffer
	b.WriteString("# Written by 'ccrelay config init'. api_keys holds a newly generated relay key,\n")
	b.WriteString("# admin_keys a newly generated admin key (the dashboard at /dashboard);\n")
	b.WriteString("# the [[accounts]] examples at the end are commented out: add yours with\n")
	b.WriteString("# 'ccrelay login claude' / 'ccrelay login gemini', or un-comment and fill one in.\n\n")
	b.Write(head)
	for _, line := range strings.SplitAfter(string(example[loc[0]:]), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString("# ")
		}
		b.WriteString(line)
	}
	out := b.Bytes()
	cfg, err := config.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("starter config does not load: %w", err)
	}
	if len(cfg.APIKeys) != 1 || cfg.APIKeys[0] != relayKey || len(cfg.Accounts) != 0 {
		return nil, errors.New("starter config: unexpected api_keys or accounts")
	}
	if len(cfg.AdminKeys) != 1 || cfg.AdminKeys[0] != adminKey {
		return nil, errors.New("starter config: unexpected admin_keys")
	}
	return out, nil
}

// NewRelayKey returns a random relay key ("ccr-" and 26 base32 characters,
// 130 bits from crypto/rand).
func NewRelayKey() string { return config.NewRelayKey() }

// NewAdminKey returns a random admin key ("ccr-admin-" and 26 base32
// characters, 130 bits from crypto/rand), never equal to a relay key.
func NewAdminKey() string { return "ccr-admin-" + rand.Text() }
