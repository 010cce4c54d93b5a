package env

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// hostile values: every character that means something to a shell.
var hostile = []string{
	`plain-key-123`,
	`it's`,
	`'`,
	`''`,
	`a"b`,
	`$HOME`,
	`$(touch PWNED)`,
	"`touch PWNED`",
	`back\slash\`,
	`\'`,
	`\\'\\`,
	"line1\nline2",
	"trailing newline\n",
	"tab\there",
	"; touch PWNED; #",
	`%PATH% !x {a,b} * ? ~ & | < >`,
	"smart ‘quotes’ ‚ ‛ ok",
	"unicode ✓ \u2028 sep",
	"\r\ncrlf",
}

func TestNewCmdEnvFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{name: "claude", args: []string{"claude"}, want: Options{Client: "claude"}},
		{name: "shell alias", args: []string{"gemini", "--shell", "zsh"}, want: Options{Client: "gemini", Shell: "sh"}},
		{name: "pwsh", args: []string{"claude", "--shell", "pwsh"}, want: Options{Client: "claude", Shell: "powershell"}},
		{name: "write codex", args: []string{"codex", "--write-codex-config"}, want: Options{Client: "codex", WriteCodexConfig: true}},
		{name: "write gemini", args: []string{"gemini", "--write-gemini-settings"}, want: Options{Client: "gemini", WriteGeminiSettings: true}},
		{name: "write gemini for codex", args: []string{"codex", "--write-gemini-settings"}, wantErr: "only applies to 'ccrelay env gemini'"},
		{name: "url", args: []string{"claude", "--url", "https://relay.example.com/"}, want: Options{Client: "claude", URL: "https://relay.example.com/"}},
		{name: "no client", args: nil, wantErr: "name one client"},
		{name: "unknown client", args: []string{"cursor"}, wantErr: "unknown client"},
		{name: "bad shell", args: []string{"claude", "--shell", "tcsh"}, wantErr: "--shell must be"},
		{name: "write codex for claude", args: []string{"claude", "--write-codex-config"}, wantErr: "only applies"},
		{name: "bad url", args: []string{"claude", "--url", "relay:3000"}, wantErr: "--url"},
		{name: "url with query", args: []string{"claude", "--url", "http://h/?key=x"}, wantErr: "no query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }}
			var got *Options
			cmd := NewCmdEnv(f, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(ios.ErrOut)
			cmd.SetErr(ios.ErrOut)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Client != tt.want.Client || got.Shell != tt.want.Shell || got.WriteCodexConfig != tt.want.WriteCodexConfig || got.WriteGeminiSettings != tt.want.WriteGeminiSettings || got.URL != tt.want.URL {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"127.0.0.1", 3000, "http://127.0.0.1:3000"},
		{"0.0.0.0", 3000, "http://127.0.0.1:3000"},
		{"::", 8080, "http://127.0.0.1:8080"},
		{"[::]", 8080, "http://127.0.0.1:8080"},
		{"", 3000, "http://127.0.0.1:3000"},
		{"::1", 3000, "http://[::1]:3000"},
		{"relay.lan", 443, "http://relay.lan:443"},
	}
	for _, tt := range tests {
		if got := baseURL(config.ServerConfig{Host: tt.host, Port: tt.port}); got != tt.want {
			t.Errorf("baseURL(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

func TestDefaultShell(t *testing.T) {
	tests := []struct{ shell, goos, want string }{
		{"/bin/bash", "linux", "sh"},
		{"/usr/bin/zsh", "darwin", "sh"},
		{"/usr/local/bin/fish", "darwin", "fish"},
		{"", "linux", "sh"},
		{"", "windows", "powershell"},
		{"/opt/weird/xonsh", "linux", "sh"},
	}
	for _, tt := range tests {
		got := defaultShell(func(k string) string {
			if k == "SHELL" {
				return tt.shell
			}
			return ""
		}, tt.goos)
		if got != tt.want {
			t.Errorf("defaultShell(%q, %s) = %q, want %q", tt.shell, tt.goos, got, tt.want)
		}
	}
}

// runEnv runs env for client with a config of host, port and keys.
func runEnv(t *testing.T, o Options, cfg *config.Config) (string, string, error) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	o.IO = ios
	o.Config = func() (*config.Config, error) { return cfg, nil }
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.HomeDir == nil {
		o.HomeDir = func() (string, error) { return t.TempDir(), nil }
	}
	err := envRun(&o)
	return out.String(), errOut.String(), err
}

func testConfig(host string, keys ...string) *config.Config {
	cfg := config.Default()
	cfg.Server.Host = host
	cfg.Server.Port = 3999
	cfg.APIKeys = keys
	cfg.Path = "/etc/ccrelay/config.toml"
	return cfg
}

// withKeys adds [[keys]] entries to cfg.
func withKeys(cfg *config.Config, keys ...config.KeyConfig) *config.Config {
	cfg.Keys = keys
	return cfg
}

// evalSh evaluates script in bash and returns the named variables, each
// printed with a NUL after it so that newlines in values survive.
func evalSh(t *testing.T, dir, script string, names ...string) map[string]string {
	t.Helper()
	var b strings.Builder
	b.WriteString("set -eu\n")
	b.WriteString(`eval "$(cat script.sh)"` + "\n")
	for _, n := range names {
		b.WriteString(`printf '%s\0' "$` + n + `"` + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "script.sh"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", b.String())
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s\nscript:\n%s", err, out, script)
	}
	vals := strings.Split(string(out), "\x00")
	got := map[string]string{}
	for i, n := range names {
		if i < len(vals) {
			got[n] = vals[i]
		}
	}
	return got
}

func TestEnvShEval(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to check the sh output")
	}
	type client struct {
		name string
		vars func(base, key string) map[string]string
	}
	cl := []client{
		{"claude", func(base, key string) map[string]string {
			return map[string]string{"ANTHROPIC_BASE_URL": base, "ANTHROPIC_AUTH_TOKEN": key}
		}},
		{"gemini", func(base, key string) map[string]string {
			return map[string]string{"GOOGLE_GEMINI_BASE_URL": base + "/gemini", "GEMINI_API_KEY": key}
		}},
		{"codex", func(base, key string) map[string]string {
			return map[string]string{"CCRELAY_API_KEY": key}
		}},
	}
	for _, c := range cl {
		for i, key := range hostile {
			t.Run(c.name+"/"+strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
				dir := t.TempDir()
				// A hostile host too: it lands in the URL value and in comments.
				host := "0.0.0.0"
				if i%2 == 1 {
					host = "evil\ntouch PWNED\n" + key
				}
				cfg := testConfig(host, key, "second-key")
				out, _, err := runEnv(t, Options{Client: c.name, Shell: "sh"}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				want := c.vars(baseURL(cfg.Server), key)
				var names []string
				for n := range want {
					names = append(names, n)
				}
				got := evalSh(t, dir, out, names...)
				for n, v := range want {
					if got[n] != v {
						t.Errorf("%s = %q, want %q\noutput:\n%s", n, got[n], v, out)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
					t.Fatalf("evaluating the output ran an injected command:\n%s", out)
				}
			})
		}
	}
}

func TestEnvOutput(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		cfg     *config.Config
		want    []string
		notWant []string
	}{
		{
			name: "claude sh", opts: Options{Client: "claude", Shell: "sh"}, cfg: testConfig("0.0.0.0", "k1", "k2"),
			want:    []string{"export ANTHROPIC_BASE_URL='http://127.0.0.1:3999'\n", "export ANTHROPIC_AUTH_TOKEN='k1'\n", "ANTHROPIC_API_KEY", "Bearer", "/etc/ccrelay/config.toml"},
			notWant: []string{"k2", "no-auth"},
		},
		{
			name: "claude no key: protected mode", opts: Options{Client: "claude", Shell: "sh"}, cfg: testConfig("127.0.0.1"),
			want:    []string{"export ANTHROPIC_AUTH_TOKEN='ccrelay-no-auth'\n", "# No relay key: protected mode, the relay serves only clients on its own machine"},
			notWant: []string{"accepts any key", "api_keys is empty"},
		},
		{
			name: "claude no key, allow_unauthenticated", opts: Options{Client: "claude", Shell: "sh"},
			cfg:     func() *config.Config { c := testConfig("0.0.0.0"); c.AllowUnauthenticated = true; return c }(),
			want:    []string{"export ANTHROPIC_AUTH_TOKEN='ccrelay-no-auth'\n", "allow_unauthenticated = true: the relay serves every client without a key"},
			notWant: []string{"protected mode"},
		},
		{
			name: "claude only [[keys]]", opts: Options{Client: "claude", Shell: "sh"},
			cfg: withKeys(testConfig("127.0.0.1"),
				config.KeyConfig{Name: "hashed", KeySHA256: strings.Repeat("ab", 32)},
				config.KeyConfig{Name: "off", Key: "off-key-0123456789", Enabled: new(false)},
				config.KeyConfig{Name: "alice", Key: "alice-key-0123456789"}),
			want:    []string{"export ANTHROPIC_AUTH_TOKEN='alice-key-0123456789'\n", `The key of [[keys]] "alice"`},
			notWant: []string{"ccrelay-no-auth", "protected mode", "api_keys is empty", "accepts any key", "off-key"},
		},
		{
			name: "claude only hash-only [[keys]]", opts: Options{Client: "claude", Shell: "sh"},
			cfg:     withKeys(testConfig("127.0.0.1"), config.KeyConfig{Name: "hashed", KeySHA256: strings.Repeat("ab", 32)}),
			want:    []string{"export ANTHROPIC_AUTH_TOKEN='your-relay-key'\n", "No relay key in clear in the config (1 [[keys]]"},
			notWant: []string{"ccrelay-no-auth", "protected mode", "accepts any key"},
		},
		{
			name: "gemini fish", opts: Options{Client: "gemini", Shell: "fish"}, cfg: testConfig("::", "k1"),
			want:    []string{"set -gx GOOGLE_GEMINI_BASE_URL 'http://127.0.0.1:3999/gemini'\n", "set -gx GEMINI_API_KEY 'k1'\n", `"selectedType": "gemini-api-key"`},
			notWant: []string{"https://"},
		},
		{
			name: "gemini remote http warns", opts: Options{Client: "gemini", Shell: "sh", URL: "http://relay.lan:3000"}, cfg: testConfig("0.0.0.0", "k1"),
			want: []string{"export GOOGLE_GEMINI_BASE_URL='http://relay.lan:3000/gemini'\n", "wants an https:// base URL"},
		},
		{
			name: "codex powershell", opts: Options{Client: "codex", Shell: "powershell"}, cfg: testConfig("127.0.0.1", "k'1"),
			want: []string{
				"$env:CCRELAY_API_KEY = 'k''1'\n",
				"#   model_provider = \"ccrelay\"\n",
				"#   [model_providers.ccrelay]\n",
				"#   name = \"ccrelay\"\n",
				"#   base_url = \"http://127.0.0.1:3999/v1\"\n",
				"#   env_key = \"CCRELAY_API_KEY\"\n",
				"#   wire_api = \"responses\"\n",
				"ignores OPENAI_BASE_URL",
				"--write-codex-config",
			},
		},
		{
			name: "url override", opts: Options{Client: "claude", Shell: "sh", URL: "https://relay.example.com/base/"}, cfg: testConfig("0.0.0.0", "k1"),
			want: []string{"export ANTHROPIC_BASE_URL='https://relay.example.com/base'\n"},
		},
		{
			name: "defaults without a config file", opts: Options{Client: "claude", Shell: "sh"}, cfg: config.Default(),
			want: []string{"from the defaults (no config file)", "http://127.0.0.1:3000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runEnv(t, tt.opts, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			// Every line is a comment or exactly one assignment.
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "export ") && !strings.HasPrefix(l, "set -gx ") && !strings.HasPrefix(l, "$env:") {
					t.Errorf("unexpected line %q", l)
				}
			}
		})
	}
}

func TestEnvNULRefused(t *testing.T) {
	_, _, err := runEnv(t, Options{Client: "claude", Shell: "sh"}, testConfig("127.0.0.1", "a\x00b"))
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnvDefaultShellFromEnvironment(t *testing.T) {
	out, _, err := runEnv(t, Options{Client: "claude", Getenv: func(k string) string {
		if k == "SHELL" {
			return "/usr/bin/fish"
		}
		return ""
	}}, testConfig("127.0.0.1", "k"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "set -gx ANTHROPIC_AUTH_TOKEN 'k'") {
		t.Errorf("not fish output:\n%s", out)
	}
}

func TestEnvWriteCodexConfig(t *testing.T) {
	codexHome := filepath.Join(t.TempDir(), "codex home")
	getenv := func(k string) string {
		if k == "CODEX_HOME" {
			return codexHome
		}
		return ""
	}
	cfg := testConfig("0.0.0.0", "k1")
	out, errOut, err := runEnv(t, Options{Client: "codex", Shell: "sh", WriteCodexConfig: true, Getenv: getenv}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(codexHome, "config.toml")
	if !strings.Contains(errOut, "wrote model_provider") || !strings.Contains(errOut, path) {
		t.Errorf("stderr = %q", errOut)
	}
	if !strings.Contains(out, "export CCRELAY_API_KEY='k1'") || !strings.Contains(out, path) {
		t.Errorf("stdout = %q", out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "model_provider = \"ccrelay\"\n\n[model_providers.ccrelay]\nname = \"ccrelay\"\nbase_url = \"http://127.0.0.1:3999/v1\"\nenv_key = \"CCRELAY_API_KEY\"\nwire_api = \"responses\"\n"
	if string(data) != want {
		t.Errorf("config.toml =\n%s\nwant\n%s", data, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// A second run changes nothing and says so.
	_, errOut, err = runEnv(t, Options{Client: "codex", Shell: "sh", WriteCodexConfig: true, Getenv: getenv}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "left unchanged") {
		t.Errorf("second run: %q", errOut)
	}

	// An existing file keeps its mode and its other content.
	if err := os.WriteFile(path, []byte("model = \"gpt-6\"\nmodel_provider = \"openai\"\n\n[mcp_servers.x]\ncommand = \"x\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = runEnv(t, Options{Client: "codex", Shell: "sh", WriteCodexConfig: true, Getenv: getenv}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, `model_provider was "openai"`) {
		t.Errorf("stderr = %q", errOut)
	}
	data, _ = os.ReadFile(path)
	want = "model = \"gpt-6\"\nmodel_provider = \"ccrelay\"\n\n[mcp_servers.x]\ncommand = \"x\"\n\n[model_providers.ccrelay]\nname = \"ccrelay\"\nbase_url = \"http://127.0.0.1:3999/v1\"\nenv_key = \"CCRELAY_API_KEY\"\nwire_api = \"responses\"\n"
	if string(data) != want {
		t.Errorf("config.toml =\n%s\nwant\n%s", data, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
}

func TestEnvWriteCodexConfigInvalidFile(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".codex", "config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	bad := "model = \n[oops\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runEnv(t, Options{Client: "codex", Shell: "sh", WriteCodexConfig: true, HomeDir: func() (string, error) { return home, nil }}, testConfig("127.0.0.1", "k"))
	if err == nil || !strings.Contains(err.Error(), "not valid TOML") {
		t.Fatalf("err = %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != bad {
		t.Error("an invalid file was modified")
	}
}
