package login

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/testutil"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ---- flag layer -------------------------------------------------------------

func TestNewCmdLogin(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options // fields compared: Provider, ConfigPath, AccountID, NoBrowser, URLs, client
		wantErr string
		flagErr bool
	}{
		{name: "claude defaults", args: []string{"login", "claude"}, want: Options{Provider: "claude"}},
		{name: "gemini defaults", args: []string{"login", "gemini"}, want: Options{Provider: "gemini"}},
		{name: "codex defaults", args: []string{"login", "codex", "--no-browser"}, want: Options{Provider: "codex", NoBrowser: true}},
		{
			name: "every flag",
			args: []string{"--config", "/tmp/c.toml", "login", "claude", "--account", "claude-9", "--no-browser",
				"--auth-url", "https://auth.example/authorize", "--token-url", "https://auth.example/token",
				"--client-id", "cid", "--client-secret", "csec"},
			want: Options{Provider: "claude", ConfigPath: "/tmp/c.toml", AccountID: "claude-9", NoBrowser: true,
				AuthURL: "https://auth.example/authorize", TokenURL: "https://auth.example/token", ClientID: "cid", ClientSecret: "csec"},
		},
		{name: "short config flag", args: []string{"login", "gemini", "-c", "x.toml"}, want: Options{Provider: "gemini", ConfigPath: "x.toml"}},
		{name: "unknown provider", args: []string{"login", "openai"}, wantErr: `unknown provider "openai"`, flagErr: true},
		{name: "extra argument", args: []string{"login", "claude", "extra"}, wantErr: "unknown command"},
		{name: "account with space", args: []string{"login", "claude", "--account", "a b"}, wantErr: "must not contain spaces", flagErr: true},
		{name: "account with slash", args: []string{"login", "claude", "--account", "a/b"}, wantErr: "must not contain spaces", flagErr: true},
		{name: "token url not http", args: []string{"login", "claude", "--token-url", "ftp://x/token"}, wantErr: "--token-url must be an http", flagErr: true},
		{name: "auth url without host", args: []string{"login", "gemini", "--auth-url", "https:///a"}, wantErr: "--auth-url must be an http", flagErr: true},
		{name: "unknown flag", args: []string{"login", "claude", "--bogus"}, wantErr: "unknown flag", flagErr: true},
		{name: "timeout", args: []string{"login", "claude", "--timeout", "90s"}, want: Options{Provider: "claude", Timeout: 90 * time.Second}},
		{name: "zero timeout", args: []string{"login", "gemini", "--timeout", "0s"}, wantErr: "--timeout must be positive", flagErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			path := ""
			f := &cmdutil.Factory{IOStreams: ios, ConfigPath: &path, Getenv: func(string) string { return "" }}
			var got *Options
			root := testRoot(f, func(o *Options) error { got = o; return nil })
			root.SetArgs(tt.args)
			_, err := root.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				var fe *cmdutil.FlagError
				if tt.flagErr && !errors.As(err, &fe) {
					t.Errorf("err = %T %v, want a FlagError (exit 2)", err, err)
				}
				if got != nil {
					t.Error("runF called despite the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got == nil {
				t.Fatal("runF not called")
			}
			if got.IO != ios || got.Getenv == nil || got.Ctx == nil {
				t.Errorf("IO, Getenv or Ctx not wired: %+v", got)
			}
			w := tt.want
			if got.Provider != w.Provider || got.ConfigPath != w.ConfigPath || got.AccountID != w.AccountID ||
				got.NoBrowser != w.NoBrowser || got.AuthURL != w.AuthURL || got.TokenURL != w.TokenURL ||
				got.ClientID != w.ClientID || got.ClientSecret != w.ClientSecret {
				t.Errorf("options = %+v\nwant      %+v", *got, w)
			}
			if wantTimeout := cmp.Or(w.Timeout, DefaultTimeout); got.Timeout != wantTimeout {
				t.Errorf("timeout = %s, want %s", got.Timeout, wantTimeout)
			}
		})
	}
}

func TestLoginWithoutProviderShowsHelp(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	path := ""
	f := &cmdutil.Factory{IOStreams: ios, ConfigPath: &path, Getenv: func(string) string { return "" }}
	root := testRoot(f, func(*Options) error { t.Error("runF called"); return nil })
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"login"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"claude", "gemini", "codex", "Available Commands"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHelpTexts(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	path := ""
	f := &cmdutil.Factory{IOStreams: ios, ConfigPath: &path}
	cmd := NewCmdLogin(f, nil)
	wants := map[string][]string{
		"claude": {"paste", "SSH", "Anthropic's terms", "0600", "Ctrl-C", "--no-browser"},
		"gemini": {"paste", "SSH", "third-party software", "gemini-api", "consumer", "Ctrl-C"},
		"codex":  {"paste", "SSH", "OpenAI's terms", "1455", "1457", "chatgpt_account_id", "rotates", "openai-responses", "0600"},
	}
	for name, want := range wants {
		sub, _, err := cmd.Find([]string{name})
		if err != nil || sub.Name() != name {
			t.Fatalf("find %s: %v", name, err)
		}
		text := sub.Long + sub.Example
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s help lacks %q", name, w)
			}
		}
	}
}

// testRoot mirrors the persistent --config flag and flag-error handling of
// the real root command.
func testRoot(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	root := &cobra.Command{Use: "ccrelay", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVarP(f.ConfigPath, "config", "c", "", "config file")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.AddCommand(NewCmdLogin(f, runF))
	return root
}

// ---- loginRun against a fake authorization server ---------------------------

const (
	secretAccess  = "at-SECRET-access"
	secretRefresh = "rt-SECRET-refresh"
)

// fakeAS is a fake OAuth server for both providers: /authorize redirects to
// the redirect_uri with a code, /token checks the PKCE verifier and answers
// with tokens (Claude's JSON shape, or Google's form exchange with an
// id_token carrying the email).
type fakeAS struct {
	t        *testing.T
	srv      *httptest.Server
	provider string // "claude" or "gemini"
	clientID string // expected client_id
	email    string // "" = no email in the answer
	fail     bool   // /token answers 400 invalid_grant

	mu         sync.Mutex
	challenges map[string]string // code -> challenge
	exchanges  int
	redirect   string // redirect_uri of the last form exchange
}

func newFakeAS(t *testing.T, provider, clientID string) *fakeAS {
	t.Helper()
	as := &fakeAS{t: t, provider: provider, clientID: clientID, email: provider + "@example.com", challenges: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", as.authorize)
	mux.HandleFunc("POST /token", as.token)
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != as.clientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		as.t.Errorf("authorize: unexpected query %v", q)
	}
	if as.provider == "gemini" && (q.Get("access_type") != "offline" || q.Get("prompt") != "consent") {
		as.t.Errorf("authorize: gemini needs access_type=offline and prompt=consent, got %v", q)
	}
	target, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	as.mu.Lock()
	code := fmt.Sprintf("code-%d", len(as.challenges)+1)
	as.challenges[code] = q.Get("code_challenge")
	as.mu.Unlock()
	target.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	var code, verifier, clientID, redirect string
	if as.provider == "claude" {
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		code, verifier, clientID = body["code"], body["code_verifier"], body["client_id"]
	} else {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		code, verifier, clientID = r.PostForm.Get("code"), r.PostForm.Get("code_verifier"), r.PostForm.Get("client_id")
		redirect = r.PostForm.Get("redirect_uri")
	}
	as.mu.Lock()
	as.exchanges++
	as.redirect = redirect
	challenge, ok := as.challenges[code]
	as.mu.Unlock()
	sum := sha256.Sum256([]byte(verifier))
	w.Header().Set("Content-Type", "application/json")
	if as.fail || !ok || clientID != as.clientID || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"bad code or verifier"}`)
		return
	}
	resp := map[string]any{"access_token": secretAccess, "refresh_token": secretRefresh, "token_type": "Bearer", "expires_in": 3600}
	if as.provider == "codex" {
		// OpenAI's id token: the email and the ChatGPT account.
		enc := base64.RawURLEncoding.EncodeToString
		resp["id_token"] = enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"email":"`+as.email+`","https://api.openai.com/auth":{"chatgpt_account_id":"ws-login-1"}}`)) + ".sig"
	} else if as.email != "" {
		if as.provider == "claude" {
			resp["account"] = map[string]string{"email_address": as.email}
		} else {
			enc := base64.RawURLEncoding.EncodeToString
			resp["id_token"] = enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"email":"`+as.email+`"}`)) + ".sig"
		}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (as *fakeAS) exchangeCount() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.exchanges
}

// fakeBrowser follows the authorization URL like a browser, through the
// provider's redirect to the loopback callback, and records the final page.
type fakeBrowser struct {
	t      *testing.T
	client *http.Client
	mu     sync.Mutex
	opened int
	pages  chan string
}

func newFakeBrowser(t *testing.T) *fakeBrowser {
	return &fakeBrowser{t: t, client: testutil.LoopbackClient(t, true), pages: make(chan string, 1)}
}

func (b *fakeBrowser) open(u string) error {
	b.mu.Lock()
	b.opened++
	b.mu.Unlock()
	resp, err := b.client.Get(u)
	if err != nil {
		b.pages <- "error: " + err.Error()
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.pages <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	return nil
}

func (b *fakeBrowser) openCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opened
}

// syncBuffer is an ErrOut the test reads while the login writes to it.
type syncBuffer = testutil.SyncBuffer

// harness runs loginRun with pipe input and captured output.
type harness struct {
	t       *testing.T
	as      *fakeAS
	browser *fakeBrowser
	opts    *Options
	out     *syncBuffer
	errOut  *syncBuffer
	pw      *io.PipeWriter
}

func newHarness(t *testing.T, provider, cfgPath string) *harness {
	t.Helper()
	spec, err := specFor(provider)
	if err != nil {
		t.Fatal(err)
	}
	as := newFakeAS(t, provider, spec.oauth.ClientID)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // ends the flow's paste reader
	h := &harness{t: t, as: as, browser: newFakeBrowser(t), out: &syncBuffer{}, errOut: &syncBuffer{}, pw: pw}
	h.opts = &Options{
		IO:         &iostreams.IOStreams{In: pr, Out: h.out, ErrOut: h.errOut},
		Getenv:     func(string) string { return "" },
		Ctx:        context.Background(),
		Provider:   provider,
		ConfigPath: cfgPath,
		AuthURL:    as.srv.URL + "/authorize",
		TokenURL:   as.srv.URL + "/token",
		HTTPClient: testutil.LoopbackClient(t, false),
	}
	h.opts.OpenBrowser = h.browser.open
	if provider == ProviderCodex {
		// Codex's client allows 1455 and 1457 only, which may be in use here.
		first, second := freePort(t), freePort(t)
		for second == first {
			second = freePort(t)
		}
		h.opts.loopbackPorts = []int{first, second}
	}
	return h
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// run starts loginRun and returns its result channel.
func (h *harness) run() <-chan error {
	done := make(chan error, 1)
	go func() { done <- loginRun(h.opts) }()
	return done
}

func (h *harness) wait(done <-chan error) error {
	h.t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatalf("loginRun did not return; output:\n%s", h.errOut.String())
		return nil
	}
}

// paste signs in "on another machine" with the printed manual URL and types
// what the provider's code page shows into the prompt.
func (h *harness) paste(asURL bool) {
	h.t.Helper()
	printed := h.errOut.WaitFor(h.t, "Paste the ")
	var manual string
	for _, line := range strings.Split(printed, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, h.as.srv.URL+"/authorize?") {
			u, _ := url.Parse(line)
			// Codex has no code page: the user opens the loopback URL on
			// another machine and pastes the address it ends on.
			if r := u.Query().Get("redirect_uri"); strings.HasPrefix(r, "https://") || h.opts.Provider == ProviderCodex {
				manual = line
			}
		}
	}
	if manual == "" {
		h.t.Fatalf("no manual URL printed:\n%s", printed)
	}
	resp, err := testutil.LoopbackClient(h.t, false).Get(manual)
	if err != nil {
		h.t.Fatalf("visit authorize URL: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		h.t.Fatalf("authorize did not redirect: %v", err)
	}
	var line string
	switch {
	case asURL:
		line = loc.String()
	case h.opts.Provider == "claude":
		line = loc.Query().Get("code") + "#" + loc.Query().Get("state")
	default:
		line = loc.Query().Get("code") // Google's page shows the bare code
	}
	if _, err := fmt.Fprintln(h.pw, line); err != nil {
		h.t.Fatalf("paste: %v", err)
	}
}

// checkNoSecret fails if any captured output holds a token.
func (h *harness) checkNoSecret() {
	h.t.Helper()
	for name, s := range map[string]string{"Out": h.out.String(), "ErrOut": h.errOut.String()} {
		if strings.Contains(s, "SECRET") {
			h.t.Errorf("%s contains a token:\n%s", name, s)
		}
	}
}

func writeConfig(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("config file:\n%s\nwant:\n%s", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %04o, want 0600", fi.Mode().Perm())
	}
	// What login wrote must load under ccrelay's strict config loader.
	if _, err := config.LoadFile(path); err != nil {
		t.Errorf("written config does not load: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != filepath.Base(path) {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

// baseConfig has comments, odd spacing and two accounts, all of which must
// survive byte for byte.
const baseConfig = `# my relay
api_keys = ["relay-key-1"]   # clients use this

[server]
port = 3001

# --- accounts ---
[[accounts]]
type = "claude-api"
id = "claude-1"     # keep this comment
name = "API"
api_key = "sk-ant-api-xxx"

[[accounts]]
type    = "claude-oauth"
id      = "claude-3"
name    = "Old"
refresh_token = "old-token"   # rotated by serve
priority = 50

[accounts.proxy]
type = "socks5"
host = "127.0.0.1"
port = 1080

[[accounts]]
type = "gemini"
id = "g"
refresh_token = "g-old"
client_id = "my-client"
`

func TestLoginAppendsAccount(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		paste    bool // the code arrives by paste (no browser) rather than the loopback callback
		pasteURL bool // paste the whole redirect URL rather than the code
		noEmail  bool
		wantID   string
		wantName string
		wantType string
	}{
		{name: "claude via browser callback", provider: "claude", wantID: "claude-2", wantName: "claude@example.com", wantType: "claude-oauth"},
		{name: "claude via pasted code#state", provider: "claude", paste: true, wantID: "claude-2", wantName: "claude@example.com", wantType: "claude-oauth"},
		{name: "claude via pasted URL, no email", provider: "claude", paste: true, pasteURL: true, noEmail: true, wantID: "claude-2", wantName: "claude-2", wantType: "claude-oauth"},
		{name: "gemini via browser callback", provider: "gemini", wantID: "gemini-1", wantName: "gemini@example.com", wantType: "gemini"},
		{name: "gemini via pasted bare code", provider: "gemini", paste: true, wantID: "gemini-1", wantName: "gemini@example.com", wantType: "gemini"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, baseConfig, 0o644) // too open: login tightens it
			h := newHarness(t, tt.provider, path)
			h.opts.NoBrowser = tt.paste
			h.as.email = map[bool]string{false: tt.provider + "@example.com", true: ""}[tt.noEmail]
			done := h.run()
			if tt.paste {
				h.paste(tt.pasteURL)
			}
			if err := h.wait(done); err != nil {
				t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
			}
			if tt.paste && h.browser.openCount() != 0 {
				t.Error("browser opened despite --no-browser")
			}
			if !tt.paste {
				if page := <-h.browser.pages; !strings.HasPrefix(page, "200 ") {
					t.Errorf("browser ended on %q", page)
				}
			}
			if n := h.as.exchangeCount(); n != 1 {
				t.Errorf("token endpoint called %d times", n)
			}
			// The token URL came from a flag that differs from the default,
			// so the account keeps it for its refreshes.
			want := baseConfig + "\n[[accounts]]\n" +
				fmt.Sprintf("type = %q\nid = %q\nname = %q\nrefresh_token = %q\ntoken_url = %q\n",
					tt.wantType, tt.wantID, tt.wantName, secretRefresh, h.as.srv.URL+"/token")
			checkFile(t, path, want)
			h.checkNoSecret()
			msg := h.errOut.String()
			for _, w := range []string{"Added account \"" + tt.wantID + "\"", path, "applies it within seconds", "next start: ccrelay serve --config", "Note:"} {
				if !strings.Contains(msg, w) {
					t.Errorf("output lacks %q:\n%s", w, msg)
				}
			}
			if !tt.noEmail && !strings.Contains(msg, tt.provider+"@example.com") {
				t.Errorf("output lacks the email:\n%s", msg)
			}
		})
	}
}

func TestLoginUpdatesExistingAccount(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		account  string
		flags    func(o *Options, as *fakeAS)
		clientID string // what the fake server expects
		want     func(as *fakeAS) string
	}{
		{
			name: "claude refresh token and token url in one write", provider: "claude", account: "claude-3",
			// The token URL flag points at the fake server: it is written too,
			// in the same atomic replacement.
			want: func(as *fakeAS) string {
				return strings.Replace(baseConfig, `refresh_token = "old-token"   # rotated by serve`,
					`refresh_token = "`+secretRefresh+`"   # rotated by serve`, 1)
			},
		},
		{
			name: "gemini uses and keeps the account's client id", provider: "gemini", account: "g", clientID: "my-client",
			want: func(as *fakeAS) string {
				return strings.Replace(baseConfig, `refresh_token = "g-old"`, `refresh_token = "`+secretRefresh+`"`, 1)
			},
		},
		{
			name: "client id override is written", provider: "gemini", account: "g", clientID: "other-client",
			flags: func(o *Options, _ *fakeAS) { o.ClientID = "other-client" },
			want: func(as *fakeAS) string {
				return strings.Replace(strings.Replace(baseConfig, `refresh_token = "g-old"`, `refresh_token = "`+secretRefresh+`"`, 1),
					`client_id = "my-client"`, `client_id = "other-client"`, 1)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, baseConfig, 0o600)
			h := newHarness(t, tt.provider, path)
			if tt.clientID != "" {
				h.as.clientID = tt.clientID
			}
			h.opts.AccountID = tt.account
			if tt.flags != nil {
				tt.flags(h.opts, h.as)
			}
			if err := h.wait(h.run()); err != nil {
				t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
			}
			<-h.browser.pages
			want := tt.want(h.as)
			// The token URL flag differs from the default and from the
			// account's (none), so it is written after the id line.
			idLine := fmt.Sprintf("id = %q\n", tt.account)
			if tt.account == "claude-3" {
				idLine = "id      = \"claude-3\"\n"
			}
			want = strings.Replace(want, idLine, idLine+fmt.Sprintf("token_url = %q\n", h.as.srv.URL+"/token"), 1)
			checkFile(t, path, want)
			h.checkNoSecret()
			msg := h.errOut.String()
			for _, w := range []string{"Updated the refresh token of account \"" + tt.account + "\"", "applies it within seconds", "replaces the one the relay saved"} {
				if !strings.Contains(msg, w) {
					t.Errorf("output lacks %q:\n%s", w, msg)
				}
			}
			// A running relay reloads the file: no restart is needed.
			if strings.Contains(msg, "Next: restart") {
				t.Errorf("output asks for a restart:\n%s", msg)
			}
		})
	}
}

func TestLoginUpdateRefreshTokenOnlyIsSingleEdit(t *testing.T) {
	// With the account's own token_url the flow needs no flag, and only the
	// refresh_token value changes.
	h := newHarness(t, "claude", "")
	cfg := strings.Replace(baseConfig, "priority = 50\n", "priority = 50\ntoken_url = \""+h.as.srv.URL+"/token\"\n", 1)
	path := writeConfig(t, cfg, 0o600)
	h.opts.ConfigPath = path
	h.opts.TokenURL = ""
	h.opts.AccountID = "claude-3"
	if err := h.wait(h.run()); err != nil {
		t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
	}
	<-h.browser.pages
	checkFile(t, path, strings.Replace(cfg, `"old-token"`, `"`+secretRefresh+`"`, 1))
	h.checkNoSecret()
}

func TestLoginNewAccountWithGivenID(t *testing.T) {
	path := writeConfig(t, baseConfig, 0o600)
	h := newHarness(t, "claude", path)
	h.opts.AccountID = "work"
	h.opts.ClientID = "custom-client"
	h.as.clientID = "custom-client"
	if err := h.wait(h.run()); err != nil {
		t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
	}
	<-h.browser.pages
	want := baseConfig + "\n[[accounts]]\ntype = \"claude-oauth\"\nid = \"work\"\nname = \"claude@example.com\"\n" +
		"refresh_token = \"" + secretRefresh + "\"\ntoken_url = \"" + h.as.srv.URL + "/token\"\nclient_id = \"custom-client\"\n"
	checkFile(t, path, want)
}

func TestLoginCreatesConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	h := newHarness(t, "gemini", "")
	h.opts.NoBrowser = true
	done := h.run()
	h.paste(false)
	if err := h.wait(done); err != nil {
		t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
	}
	path := filepath.Join(dir, "config.toml")
	want := "[[accounts]]\ntype = \"gemini\"\nid = \"gemini-1\"\nname = \"gemini@example.com\"\n" +
		"refresh_token = \"" + secretRefresh + "\"\ntoken_url = \"" + h.as.srv.URL + "/token\"\n"
	checkFile(t, path, want)
	h.checkNoSecret()
	msg := h.errOut.String()
	for _, w := range []string{"Created " + path + " (mode 0600)", "'ccrelay serve' from this directory", "ccrelay env gemini"} {
		if !strings.Contains(msg, w) {
			t.Errorf("output lacks %q:\n%s", w, msg)
		}
	}
}

func TestLoginFindsConfigInSearchOrder(t *testing.T) {
	xdg := t.TempDir()
	t.Chdir(t.TempDir()) // no ./config.toml
	path := filepath.Join(xdg, "ccrelay", "config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "claude", "")
	h.opts.Getenv = func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return xdg
		}
		return ""
	}
	if err := h.wait(h.run()); err != nil {
		t.Fatalf("loginRun: %v\noutput:\n%s", err, h.errOut.String())
	}
	<-h.browser.pages
	got, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(got), baseConfig+"\n[[accounts]]\ntype = \"claude-oauth\"\nid = \"claude-2\"\n") {
		t.Errorf("account not appended to the XDG config:\n%s", got)
	}
	if _, err := os.Stat("config.toml"); err == nil {
		t.Error("created ./config.toml although a config exists in the search order")
	}
}

func TestLoginCancelLeavesConfigUntouched(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(t *testing.T, cancelCtx context.CancelFunc)
	}{
		{name: "cancelled context", cancel: func(_ *testing.T, c context.CancelFunc) { c() }},
		{name: "SIGINT", cancel: func(t *testing.T, _ context.CancelFunc) {
			if runtime.GOOS == "windows" {
				t.Skip("no SIGINT to self on windows")
			}
			// loginRun listens for SIGINT before it prints the prompt the
			// harness waited for, so the signal cannot kill the test.
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, baseConfig, 0o600)
			h := newHarness(t, "claude", path)
			h.opts.NoBrowser = true
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h.opts.Ctx = ctx
			done := h.run()
			h.errOut.WaitFor(t, "Paste the code")
			tt.cancel(t, cancel)
			err := h.wait(done)
			var ee *cmdutil.ExitError
			if !errors.As(err, &ee) || ee.Code != 130 || !strings.Contains(err.Error(), "was not changed") {
				t.Fatalf("err = %v, want exit 130 saying the config was not changed", err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != baseConfig {
				t.Errorf("config changed:\n%s", got)
			}
			if h.as.exchangeCount() != 0 {
				t.Error("token endpoint called")
			}
		})
	}
}

// TestLoginTimeout: a sign-in nobody finishes ends after --timeout with an
// error (not the exit code of a Ctrl-C) and leaves the config alone.
func TestLoginTimeout(t *testing.T) {
	path := writeConfig(t, baseConfig, 0o600)
	h := newHarness(t, "claude", path)
	h.opts.NoBrowser = true
	h.opts.Timeout = time.Millisecond
	err := h.wait(h.run())
	if err == nil || !strings.Contains(err.Error(), "timed out after 1ms (--timeout)") || !strings.Contains(err.Error(), "was not changed") {
		t.Fatalf("err = %v, want a timeout that leaves the config unchanged", err)
	}
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		t.Errorf("a timeout exits like a Ctrl-C: %v", err)
	}
	checkFile(t, path, baseConfig)
	if h.as.exchangeCount() != 0 {
		t.Error("token endpoint called")
	}
}

// TestLoginConcurrent: two logins into one config at the same time, both
// having picked the same new id before either wrote, both land: the second
// takes the next free id.
func TestLoginConcurrent(t *testing.T) {
	path := writeConfig(t, baseConfig, 0o600)
	a, b := newHarness(t, "claude", path), newHarness(t, "claude", path)
	a.opts.NoBrowser, b.opts.NoBrowser = true, true
	b.as.email = "other@example.com"
	doneA, doneB := a.run(), b.run()
	// Both have read the file and chosen claude-2 once they prompt.
	a.errOut.WaitFor(t, "Paste the code")
	b.errOut.WaitFor(t, "Paste the code")
	a.paste(false)
	b.paste(false)
	if err := a.wait(doneA); err != nil {
		t.Fatalf("first login: %v\n%s", err, a.errOut.String())
	}
	if err := b.wait(doneB); err != nil {
		t.Fatalf("second login: %v\n%s", err, b.errOut.String())
	}
	var doc struct {
		Accounts []fileAccount `toml:"accounts"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toml.Decode(string(data), &doc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, acct := range doc.Accounts {
		ids = append(ids, acct.ID)
	}
	// baseConfig has claude-1, claude-3 and g: the logins add claude-2 and,
	// after finding it taken, claude-4.
	if got := strings.Join(ids, ","); got != "claude-1,claude-3,g,claude-2,claude-4" {
		t.Errorf("accounts = %v, want claude-2 and claude-4 added\n%s", ids, data)
	}
	if !strings.Contains(a.errOut.String()+b.errOut.String(), `Added account "claude-4"`) {
		t.Errorf("the second login does not name the id it used:\n%s\n%s", a.errOut.String(), b.errOut.String())
	}
}

func TestLoginErrorsLeaveConfigUntouched(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		config  string
		wantErr string
		flow    bool // the sign-in starts (the error comes after it)
	}{
		{
			name:    "account of another type",
			setup:   func(h *harness) { h.opts.AccountID = "claude-1" },
			wantErr: `account "claude-1" in`,
		},
		{
			name:    "gemini login into a claude account",
			setup:   func(h *harness) { h.opts.Provider = "gemini"; h.opts.AccountID = "claude-3" },
			wantErr: "is a claude-oauth account; 'ccrelay login gemini' signs in gemini accounts",
		},
		{
			name:    "file does not parse",
			config:  "[server\nport = 1\n",
			wantErr: "fix the config first",
		},
		{
			name:    "inline accounts",
			config:  "accounts = [{type = \"claude-oauth\", id = \"a\", refresh_token = \"x\"}]\n",
			wantErr: "not written as [[accounts]] tables",
		},
		{
			name:    "duplicate id",
			config:  "[[accounts]]\ntype = \"claude-oauth\"\nid = \"a\"\n[[accounts]]\ntype = \"claude-oauth\"\nid = \"a\"\n",
			setup:   func(h *harness) { h.opts.AccountID = "a" },
			wantErr: "appears more than once",
		},
		{
			name:    "token endpoint refuses",
			setup:   func(h *harness) { h.as.fail = true },
			wantErr: "invalid_grant",
			flow:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := baseConfig
			if tt.config != "" {
				content = tt.config
			}
			path := writeConfig(t, content, 0o600)
			h := newHarness(t, "claude", path)
			if tt.setup != nil {
				tt.setup(h)
			}
			err := h.wait(h.run())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error reveals a token: %v", err)
			}
			if tt.flow {
				<-h.browser.pages
			} else if h.browser.openCount() != 0 {
				t.Error("sign-in started although the config could be checked first")
			}
			got, _ := os.ReadFile(path)
			if string(got) != content {
				t.Errorf("config changed:\n%s", got)
			}
			h.checkNoSecret()
		})
	}
}

func TestLoginMissingConfigDirectory(t *testing.T) {
	h := newHarness(t, "claude", filepath.Join(t.TempDir(), "nope", "config.toml"))
	err := h.wait(h.run())
	if err == nil || !strings.Contains(err.Error(), "directory does not exist") {
		t.Fatalf("err = %v", err)
	}
	if h.browser.openCount() != 0 {
		t.Error("sign-in started")
	}
}

func TestSetAccountFieldsKeepsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.toml")
	if err := os.WriteFile(real, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks:", err)
	}
	err := config.SetAccountFields(link, "g", []config.Field{{Key: "refresh_token", Value: "new"}, {Key: "client_id", Value: "c2"}})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced by a file: %v", err)
	}
	got, _ := os.ReadFile(real)
	want := strings.Replace(strings.Replace(baseConfig, `"g-old"`, `"new"`, 1), `"my-client"`, `"c2"`, 1)
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("staging file left behind: %v", entries)
	}
	// A failing edit leaves the file as it was and no staging file behind.
	if err := config.SetAccountFields(link, "missing", []config.Field{{Key: "refresh_token", Value: "x"}, {Key: "client_id", Value: "y"}}); err == nil {
		t.Error("edit of a missing account succeeded")
	}
	if again, _ := os.ReadFile(real); string(again) != want {
		t.Error("failed edit changed the file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("staging file left behind after a failure: %v", entries)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/ccrelay/config.toml": "/etc/ccrelay/config.toml",
		"my config.toml":           "'my config.toml'",
		"it's.toml":                `'it'\''s.toml'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
