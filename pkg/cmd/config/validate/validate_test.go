package validate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

const good = `api_keys = ["k-0123456789"]

[server]
port = 3001

[[accounts]]
type = "claude-api"
id = "a1"
api_key = "sk-ant-real"
`

func TestValidateRun(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		mode     os.FileMode
		env      map[string]string
		wantCode int // 0 = success
		want     []string
		notWant  []string
	}{
		{
			name: "valid", content: good, mode: 0o600,
			want:    []string{"is valid: 1 account (1 enabled), 1 relay key (api_keys), listening on 127.0.0.1:3001"},
			notWant: []string{"warning"},
		},
		{
			name: "every problem listed", mode: 0o600, wantCode: 1,
			content: "nope = 1\n[server]\nadmin_keys = [\"x\"]\nport = \"80\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\n",
			want:    []string{"3 problems", "line 1: nope: unknown key", "line 3: server.admin_keys", "Move the admin_keys", "line 4: server.port: must be an integer"},
		},
		{
			name: "api_keys inside server is a warning", mode: 0o600,
			content: "[server]\nport = 3001\napi_keys = [\"k-0123456789\"]\n[[accounts]]\ntype = \"claude-api\"\nid = \"a1\"\napi_key = \"sk-ant-real\"\n",
			want:    []string{"warning: line 3: server.api_keys: api_keys belongs at the top level", "is valid: 1 account (1 enabled), 1 relay key"},
			notWant: []string{"problem", "api_keys is empty"},
		},
		{
			name: "api_keys in both places", mode: 0o600, wantCode: 1,
			content: "api_keys = [\"k-0123456789\"]\n[server]\napi_keys = [\"k-9876543210\"]\n",
			want:    []string{"1 problem", "line 3: server.api_keys", "both at the top level and inside [server]"},
		},
		{
			name: "value problems", mode: 0o600, wantCode: 1,
			content: "[server]\nport = 70000\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n",
			want:    []string{"problems", "server.port", "accounts[0].api_key: is required", "duplicate account id"},
		},
		{
			name: "syntax error", content: "api_keys = [\n", mode: 0o600, wantCode: 1,
			want: []string{"1 problem"},
		},
		{
			name: "environment override invalid", content: good, mode: 0o600, wantCode: 1,
			env:  map[string]string{"CCRELAY_PORT": "0"},
			want: []string{"is valid, but with the CCRELAY_* environment overrides", "server.port"},
		},
		{
			name: "warnings do not fail", mode: 0o644,
			content: "api_keys = [\"change-me-relay-key\"]\n[[accounts]]\ntype = \"claude-oauth\"\nid = \"c\"\nenabled = false\nrefresh_token = \"sk-ant-ort01-...\"\n",
			want:    []string{"readable by other users (mode 0644)", "api_keys[0] is the placeholder", "refresh_token looks like the placeholder", "every account is disabled", "is valid: 1 account (0 enabled)"},
		},
		{
			name: "no key on a public address: protected mode", mode: 0o600,
			content: "api_keys = []\n[server]\nhost = \"0.0.0.0\"\n",
			want:    []string{"no relay key: protected mode", "everyone else gets 403", "no [[accounts]]", "no relay key (protected mode"},
			notWant: []string{"anyone who reaches", "every client is accepted", "0 relay keys"},
		},
		{
			name: "no key and allow_unauthenticated on a public address", mode: 0o600,
			content: "allow_unauthenticated = true\n[server]\nhost = \"0.0.0.0\"\n",
			want:    []string{"anyone who reaches port 3000", "no relay key (allow_unauthenticated"},
			notWant: []string{"protected mode"},
		},
		{
			name: "no key on loopback", mode: 0o600,
			content: "[server]\nport = 3001\n",
			want:    []string{"no relay key: protected mode, only clients on this machine are served"},
			notWant: []string{"every client is accepted", "0 relay keys"},
		},
		{
			name: "only [[keys]]", mode: 0o600,
			content: good[len(`api_keys = ["k-0123456789"]`):] + "\n[[keys]]\nname = \"alice\"\nkey = \"alice-key-0123456789\"\n[[keys]]\nname = \"bob\"\nkey_sha256 = \"" + strings.Repeat("ab", 32) + "\"\n",
			want:    []string{"is valid: 1 account (1 enabled), 2 relay keys ([[keys]]), listening on 127.0.0.1:3001"},
			notWant: []string{"warning", "api_keys is empty", "protected mode", "0 relay keys"},
		},
		{
			name: "api_keys and [[keys]]", mode: 0o600,
			content: good + "\n[[keys]]\nname = \"alice\"\nkey = \"alice-key-0123456789\"\n",
			want:    []string{"2 relay keys (1 in api_keys, 1 [[keys]])"},
			notWant: []string{"warning"},
		},
		{
			name: "a [[keys]] placeholder", mode: 0o600,
			content: good + "\n[[keys]]\nname = \"alice\"\nkey = \"ccr-...\"\n",
			want:    []string{"keys[0] (alice): key looks like the placeholder"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(file, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tt.mode); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ios, _, out, _ := iostreams.Test()
			err := validateRun(&Options{IO: ios, Getenv: func(string) string { return "" }, Viper: config.NewViper(), File: file})
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("err = %v\n%s", err, out)
			}
			if tt.wantCode != 0 {
				var ee *cmdutil.ExitError
				if !errors.As(err, &ee) || ee.Code != tt.wantCode || !errors.Is(err, cmdutil.ErrSilent) {
					t.Fatalf("err = %v, want a silent exit %d", err, tt.wantCode)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestValidateFindsTheConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ios, _, out, errOut := iostreams.Test()
	opts := &Options{IO: ios, Getenv: func(k string) string {
		if k == "HOME" {
			return dir
		}
		return ""
	}, Viper: config.NewViper()}
	err := validateRun(opts)
	if err == nil || !strings.Contains(err.Error(), "no config file found") || !strings.Contains(errOut.String(), "Search order") {
		t.Fatalf("err = %v, stderr = %q", err, errOut)
	}
	if err := os.WriteFile("config.toml", []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := validateRun(opts); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "config.toml is valid") {
		t.Errorf("out = %q", out)
	}
}

// TestValidateExampleFile checks the repository's example: valid, with
// warnings about its placeholders.
func TestValidateExampleFile(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	err := validateRun(&Options{IO: ios, Getenv: func(string) string { return "" }, Viper: config.NewViper(), File: filepath.Join("..", "..", "..", "..", "config.example.toml")})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "api_keys[0] is the placeholder") {
		t.Errorf("out = %s", out)
	}
}

func TestNewCmdValidateArgs(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	path := ""
	f := &cmdutil.Factory{IOStreams: ios, ConfigPath: &path, Viper: config.NewViper()}
	var got *Options
	cmd := NewCmdValidate(f, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"x.toml"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.File != "x.toml" {
		t.Errorf("File = %q", got.File)
	}
	cmd = NewCmdValidate(f, func(o *Options) error { return nil })
	cmd.SetArgs([]string{"a", "b"})
	cmd.SetErr(ios.ErrOut)
	if err := cmd.Execute(); err == nil {
		t.Error("two files accepted")
	}
}
