// Package login implements `ccrelay login claude`, `ccrelay login gemini` and
// `ccrelay login codex`: an interactive OAuth sign-in whose refresh token is
// written into the config file as an [[accounts]] entry.
package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/oauth"
	"github.com/ccrelay/ccrelay/internal/oauth/browser"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Provider names, as typed after `ccrelay login`.
const (
	ProviderClaude = "claude"
	ProviderGemini = "gemini"
	ProviderCodex  = "codex"
)

// DefaultTimeout bounds a whole login (--timeout): a sign-in nobody
// finishes must not keep the command and its loopback port open forever.
const DefaultTimeout = 10 * time.Minute

// exchangeTimeout bounds the code exchange when no HTTPClient is given, so a
// token endpoint that never answers does not hang the login forever.
const exchangeTimeout = 60 * time.Second

// Options are the inputs of one login.
type Options struct {
	// IO carries the pasted code (In) and the instructions (ErrOut).
	IO *iostreams.IOStreams
	// Getenv reads $CCRELAY_CONFIG and the search-path variables.
	Getenv func(string) string
	// Ctx is the command's context; loginRun adds SIGINT/SIGTERM
	// cancellation. Nil means context.Background().
	Ctx context.Context

	// Provider is ProviderClaude, ProviderGemini or ProviderCodex.
	Provider string
	// ConfigPath is --config; "" means $CCRELAY_CONFIG, then the search order.
	ConfigPath string
	// AccountID is --account: the entry to update, or the id of the new one.
	AccountID string
	// NoBrowser prints the URLs without opening a browser.
	NoBrowser bool
	// Timeout is --timeout: how long the login waits in all, from the
	// printed URL to the stored token (default DefaultTimeout).
	Timeout time.Duration
	// AuthURL, TokenURL, ClientID and ClientSecret override the provider's
	// OAuth endpoints and client; "" keeps the account's value, else the
	// default.
	AuthURL, TokenURL, ClientID, ClientSecret string

	// OpenBrowser opens the authorization URL; nil means the system browser.
	OpenBrowser func(url string) error
	// HTTPClient sends the code exchange; nil means a plain client with a
	// 60 s timeout.
	HTTPClient *http.Client
	// loopbackPorts, when set, replaces the provider's fixed callback ports
	// (tests: 1455 may be in use on the machine).
	loopbackPorts []int
}

// NewCmdLogin builds `login` and its provider subcommands. runF, when not
// nil, replaces loginRun (tests).
func NewCmdLogin(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login <provider>",
		Short: "Sign in to a subscription account and add it to the config",
		Long: heredoc.Doc(`
			Sign in to a Claude, Google or ChatGPT account in the browser and store its
			refresh token in the config file, as a new [[accounts]] entry or in the entry
			named by --account.

			The sign-in works on a desktop (the browser returns to a local callback on
			127.0.0.1) and on a headless server over SSH (open the printed URL on any
			machine and paste the code the page shows, or the address the browser ended
			on). See 'ccrelay login claude --help'.

			A login gives up after --timeout (10 minutes by default). A request to the
			local callback that does not carry this login's state is answered with an
			error page and ignored. Edits of the config file take a lock, so logins run
			at the same time all land. A running 'ccrelay serve' on that file applies the
			new account or token within seconds.

			Account types, headless sign-in and the providers' terms: docs/accounts.md.
		`),
		Example: heredoc.Doc(`
			$ ccrelay login claude
			$ ccrelay login claude --no-browser --account claude-2
			$ ccrelay login gemini --config /etc/ccrelay/config.toml
			$ ccrelay login codex
		`),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return cmdutil.FlagErrorf("unknown provider %q: use %s", args[0], loginNames())
		},
	}
	for _, spec := range accounttype.All() {
		if spec.Login != nil {
			cmd.AddCommand(newCmdProvider(f, runF, spec))
		}
	}
	return cmd
}

// loginNames lists the login commands for an error message:
// "'ccrelay login claude', 'ccrelay login gemini' or 'ccrelay login codex'".
func loginNames() string {
	var names []string
	for _, spec := range accounttype.All() {
		if spec.Login != nil {
			names = append(names, "'ccrelay login "+spec.Login.Name+"'")
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func newCmdProvider(f *cmdutil.Factory, runF func(*Options) error, spec *accounttype.Spec) *cobra.Command {
	l := spec.Login
	opts := &Options{IO: f.IOStreams, Getenv: f.Getenv, Provider: l.Name}
	cmd := &cobra.Command{Args: cobra.NoArgs, Use: l.Name, Short: l.Short, Long: l.Long, Example: l.Example}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts.Ctx = cmd.Context()
		if f.ConfigPath != nil {
			opts.ConfigPath = *f.ConfigPath
		}
		if err := opts.check(); err != nil {
			return err
		}
		if runF != nil {
			return runF(opts)
		}
		return loginRun(opts)
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.AccountID, "account", "", "update the refresh token of this account (or add a new one with this id)")
	fl.BoolVar(&opts.NoBrowser, "no-browser", false, "print the sign-in URL instead of opening a browser")
	fl.DurationVar(&opts.Timeout, "timeout", DefaultTimeout, "give up when the sign-in has not finished after this long")
	fl.StringVar(&opts.AuthURL, "auth-url", "", "override the authorization endpoint (a moved or proxied sign-in page)")
	fl.StringVar(&opts.TokenURL, "token-url", "", "override the token endpoint; written into the account as token_url")
	fl.StringVar(&opts.ClientID, "client-id", "", "override the OAuth client id; written into the account as client_id")
	fl.StringVar(&opts.ClientSecret, "client-secret", "", "override the OAuth client secret (Google); written into the account as client_secret")
	return cmd
}

// check validates the flag values before any sign-in starts.
func (o *Options) check() error {
	if o.Timeout <= 0 {
		return cmdutil.FlagErrorf("--timeout must be positive, not %s", o.Timeout)
	}
	if strings.ContainsAny(o.AccountID, " \t\r\n/") {
		return cmdutil.FlagErrorf("--account %q: an account id must not contain spaces, slashes or line breaks", o.AccountID)
	}
	for flag, v := range map[string]string{"--auth-url": o.AuthURL, "--token-url": o.TokenURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cmdutil.FlagErrorf("%s must be an http:// or https:// URL, not %q", flag, v)
		}
	}
	for flag, v := range map[string]string{"--client-id": o.ClientID, "--client-secret": o.ClientSecret} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return cmdutil.FlagErrorf("%s must not contain line breaks", flag)
		}
	}
	return nil
}

// providerSpec is the account type a login provider signs in, with its
// authorization server.
type providerSpec struct {
	*accounttype.Spec
	oauth oauth.Provider
}

func specFor(name string) (providerSpec, error) {
	if spec := accounttype.LoginFor(name); spec != nil {
		return providerSpec{Spec: spec, oauth: oauth.ProviderFor(spec)}, nil
	}
	return providerSpec{}, fmt.Errorf("unknown login provider %q", name)
}

// fileAccount is what login needs to know of an existing account. The file is
// decoded leniently: an account that login is about to repair (no
// refresh_token yet) must not stop it.
type fileAccount struct {
	Type         string `toml:"type"`
	ID           string `toml:"id"`
	Enabled      *bool  `toml:"enabled"`
	TokenURL     string `toml:"token_url"`
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"`
}

// target is where the login's token goes.
type target struct {
	path      string       // the config file
	exists    bool         // false: AppendAccount creates it
	defaulted bool         // true when no file was named or found: ./config.toml
	existing  *fileAccount // the entry to update; nil means append a new one
	id        string       // the account id written or updated
	ids       map[string]bool
}

func loginRun(opts *Options) error {
	spec, err := specFor(opts.Provider)
	if err != nil {
		return err
	}
	tg, err := resolveTarget(opts)
	if err != nil {
		return err
	}
	if tg.existing != nil && tg.existing.Type != spec.Type {
		return fmt.Errorf("account %q in %s is a %s account; 'ccrelay login %s' signs in %s accounts (choose another --account, or omit it to add a new one)",
			tg.id, tg.path, describeType(tg.existing.Type), opts.Provider, spec.Type)
	}
	c := resolveClient(opts, spec, tg)
	tok, err := signIn(opts, spec, c.provider, tg)
	if err != nil {
		return err
	}
	if err := writeToken(opts, spec, tg, tok, c.overrides(opts, spec, tok)); err != nil {
		return err
	}
	report(opts.IO.ErrOut, opts, tg, tok.Email)
	return nil
}

// client is the OAuth client a login signs in with, and where its parts
// came from.
type client struct {
	provider oauth.Provider
	// cur is the existing entry's own values (zero for a new account).
	cur fileAccount
	// defaults is the type's authorization server and client.
	defaults oauth.Provider
	// secretDefault is the default secret, which goes with the default
	// client id only.
	secretDefault string
}

// resolveClient applies the overrides: a flag wins, then the entry's own
// value (the refresh at the next start uses it, so the token must come from
// the same client), then the type's default.
func resolveClient(opts *Options, spec providerSpec, tg *target) client {
	c := client{provider: spec.oauth, defaults: spec.oauth}
	if tg.existing != nil {
		c.cur = *tg.existing
	}
	p := &c.provider
	p.TokenURL = firstNonEmpty(opts.TokenURL, c.cur.TokenURL, c.defaults.TokenURL)
	p.ClientID = firstNonEmpty(opts.ClientID, c.cur.ClientID, c.defaults.ClientID)
	// Gemini CLI's installed-app secret belongs to its client id only (the
	// credential package defaults it the same way).
	if p.ClientID == c.defaults.ClientID {
		c.secretDefault = c.defaults.ClientSecret
	}
	p.ClientSecret = firstNonEmpty(opts.ClientSecret, c.cur.ClientSecret, c.secretDefault)
	if opts.AuthURL != "" {
		p.AuthURL = opts.AuthURL
	}
	if opts.loopbackPorts != nil {
		p.LoopbackPorts = opts.loopbackPorts
	}
	return c
}

// overrides are the fields the next refresh needs besides the refresh
// token: a flag value the account would not otherwise have (its own value,
// else the default), and the provider-side account the token belongs to
// (the ChatGPT workspace) as the id token names it: requests must carry it.
func (c client) overrides(opts *Options, spec providerSpec, tok *oauth.Token) []config.Field {
	var out []config.Field
	for _, o := range []struct{ key, flag, have, def string }{
		{"token_url", opts.TokenURL, c.cur.TokenURL, c.defaults.TokenURL},
		{"client_id", opts.ClientID, c.cur.ClientID, c.defaults.ClientID},
		{"client_secret", opts.ClientSecret, c.cur.ClientSecret, c.secretDefault},
	} {
		if o.flag != "" && o.flag != firstNonEmpty(o.have, o.def) {
			out = append(out, config.Field{Key: o.key, Value: o.flag})
		}
	}
	if spec.UpstreamAccountKey != "" && tok.Account != "" {
		out = append(out, config.Field{Key: spec.UpstreamAccountKey, Value: tok.Account})
	}
	return out
}

// signIn runs the interactive sign-in within --timeout. Until the file is
// written a signal only cancels: the write that follows a successful
// exchange takes milliseconds and must not be cut in half.
func signIn(opts *Options, spec providerSpec, p oauth.Provider, tg *target) (*oauth.Token, error) {
	parent := opts.Ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	fmt.Fprint(opts.IO.ErrOut, spec.Login.Note)
	open := opts.OpenBrowser
	if open == nil {
		open = browser.Open
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: exchangeTimeout}
	}
	flow := &oauth.Flow{Provider: p, HTTPClient: hc, OpenBrowser: open, NoBrowser: opts.NoBrowser, In: opts.IO.In, ErrOut: opts.IO.ErrOut}
	tok, err := flow.Run(ctx)
	if err == nil {
		err = ctx.Err() // a Ctrl-C that raced the exchange still means "don't write"
	}
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil:
		return nil, fmt.Errorf("login %s timed out after %s (--timeout); %s was not changed", opts.Provider, timeout, tg.path)
	case ctx.Err() != nil:
		return nil, &cmdutil.ExitError{Code: 130, Err: fmt.Errorf("login cancelled; %s was not changed", tg.path)}
	}
	return nil, fmt.Errorf("login %s: %w (%s was not changed)", opts.Provider, err, tg.path)
}

// writeToken stores the refresh token: into the existing entry, or as a new
// [[accounts]] entry named after the account's email.
func writeToken(opts *Options, spec providerSpec, tg *target, tok *oauth.Token, overrides []config.Field) error {
	if tg.existing != nil {
		fields := append([]config.Field{{Key: spec.SecretKey, Value: tok.RefreshToken}}, overrides...)
		if err := config.SetAccountFields(tg.path, tg.id, fields); err != nil {
			return fmt.Errorf("signed in, but could not update %s: %w", tg.path, err)
		}
		return nil
	}
	fields := append([]config.Field{
		{Key: "type", Value: spec.Type},
		{Key: "id", Value: tg.id},
		{Key: "name", Value: firstNonEmpty(tok.Email, tg.id)},
		{Key: spec.SecretKey, Value: tok.RefreshToken},
	}, overrides...)
	if err := appendAccount(tg, opts, fields); err != nil {
		return fmt.Errorf("signed in, but could not add the account to %s: %w", tg.path, err)
	}
	return nil
}

// report says what was written and what to do next; never a token.
func report(w io.Writer, opts *Options, tg *target, email string) {
	shown := tg.path
	if abs, err := filepath.Abs(tg.path); err == nil {
		shown = abs
	}
	who := ""
	if email != "" {
		who = " (" + email + ")"
	}
	fmt.Fprintln(w)
	switch {
	case tg.existing != nil:
		fmt.Fprintf(w, "Signed in%s. Updated the refresh token of account %q in %s.\n", who, tg.id, shown)
		if tg.existing.Enabled != nil && !*tg.existing.Enabled {
			fmt.Fprintf(w, "Account %q is disabled (enabled = false); set enabled = true to use it.\n", tg.id)
		}
	case !tg.exists:
		fmt.Fprintf(w, "Signed in%s. Created %s (mode 0600) with account %q.\n", who, shown, tg.id)
	default:
		fmt.Fprintf(w, "Signed in%s. Added account %q to %s.\n", who, tg.id, shown)
	}
	serve := "ccrelay serve"
	if opts.ConfigPath != "" {
		serve += " --config " + shellQuote(opts.ConfigPath)
	}
	switch {
	case tg.existing != nil:
		fmt.Fprintf(w, "%s: the new token replaces the one the relay saved from its own refreshes\n"+
			"(a relay that is not running uses it at its next start: %s).\n", cmdutil.AppliesLive, serve)
	case tg.exists:
		fmt.Fprintf(w, "%s: the new account serves from then on\n(a relay that is not running uses it at its next start: %s).\n", cmdutil.AppliesLive, serve)
	case tg.defaulted:
		fmt.Fprintf(w, "Next: run '%s' from this directory, then point a client at it: eval \"$(%s)\"\n", serve, envCommand(opts.Provider))
	default:
		fmt.Fprintf(w, "Next: run '%s', then point a client at it: eval \"$(%s)\"\n", serve, envCommand(opts.Provider))
	}
}

// envCommand is the `ccrelay env` line that points the provider's client at
// the relay (Codex needs its config file written, not only variables).
func envCommand(provider string) string {
	if provider == ProviderCodex {
		return "ccrelay env codex --write-codex-config"
	}
	return "ccrelay env " + provider
}

// appendAccount adds the new account. When its id was picked (no
// --account) and another edit took that id meanwhile (two logins at once),
// the next free id is used, so both accounts land.
func appendAccount(tg *target, opts *Options, fields []config.Field) error {
	for {
		err := config.AppendAccount(tg.path, fields)
		if opts.AccountID != "" || !errors.Is(err, config.ErrAccountExists) {
			return err
		}
		taken := tg.id
		tg.ids[taken] = true
		tg.id = nextID(opts.Provider, tg.ids)
		for i := range fields {
			// The id, and the name when it was the id (no email known).
			if fields[i].Key == "id" || fields[i].Key == "name" && fields[i].Value == taken {
				fields[i].Value = tg.id
			}
		}
	}
}

// nextID is the first "<provider>-<n>" not in ids.
func nextID(provider string, ids map[string]bool) string {
	for n := 1; ; n++ {
		if id := fmt.Sprintf("%s-%d", provider, n); !ids[id] {
			return id
		}
	}
}

// resolveTarget finds the config file and the account the login writes.
func resolveTarget(opts *Options) (*target, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	tg := &target{ids: map[string]bool{}}
	explicit := opts.ConfigPath
	if explicit == "" {
		explicit = getenv("CCRELAY_CONFIG")
	}
	if explicit != "" {
		// A named file that does not exist yet is created, like ./config.toml.
		tg.path = explicit
	} else {
		path, err := config.Find("", getenv)
		switch {
		case errors.Is(err, config.ErrNotFound):
			tg.path, tg.defaulted = "config.toml", true
		case err != nil:
			return nil, err
		default:
			tg.path = path
		}
	}

	data, err := os.ReadFile(tg.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(filepath.Dir(tg.path)); err != nil {
			return nil, fmt.Errorf("config file %s: its directory does not exist", tg.path)
		}
	case err != nil:
		return nil, fmt.Errorf("read config: %w", err)
	default:
		tg.exists = true
		accounts, err := decodeAccounts(tg.path, data)
		if err != nil {
			return nil, err
		}
		for i := range accounts {
			a := &accounts[i]
			tg.ids[a.ID] = true
			if opts.AccountID != "" && a.ID == opts.AccountID {
				if tg.existing != nil {
					return nil, fmt.Errorf("%s: account id %q appears more than once; fix the file first", tg.path, a.ID)
				}
				tg.existing = a
			}
		}
	}

	tg.id = opts.AccountID
	if tg.id == "" {
		tg.id = nextID(opts.Provider, tg.ids)
	}
	return tg, nil
}

// decodeAccounts reads the accounts of a config file leniently, and refuses
// early what the text editor cannot edit, before the user signs in for
// nothing.
func decodeAccounts(path string, data []byte) ([]fileAccount, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s; fix the config first", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	switch raw["accounts"].(type) {
	case nil, []map[string]any:
	default:
		return nil, fmt.Errorf("%s: accounts is not written as [[accounts]] tables, which is all login can edit; rewrite it that way or add the account by hand", path)
	}
	var doc struct {
		Accounts []fileAccount `toml:"accounts"`
	}
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, fmt.Errorf("%s: accounts: %w", path, err)
	}
	return doc.Accounts, nil
}

func describeType(t string) string {
	if t == "" {
		return "untyped"
	}
	return t
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// shellQuote quotes a path for a command line the user copies.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
