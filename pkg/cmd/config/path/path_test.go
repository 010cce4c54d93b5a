package path

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestPathRun(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	xdg := filepath.Join(dir, "xdg")
	xdgFile := filepath.Join(xdg, "ccrelay", "config.toml")
	envFile := filepath.Join(dir, "from-env.toml")
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(""), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(xdgFile)
	write(envFile)
	write(filepath.Join(dir, "explicit.toml"))

	tests := []struct {
		name      string
		explicit  string
		env       map[string]string
		local     bool // ./config.toml exists
		tty       bool
		wantOut   string
		wantErr   string
		wantInErr []string
	}{
		{name: "xdg", env: map[string]string{"XDG_CONFIG_HOME": xdg}, wantOut: xdgFile + "\n"},
		{name: "local wins over xdg", env: map[string]string{"XDG_CONFIG_HOME": xdg}, local: true, wantOut: "config.toml\n"},
		{name: "env wins", env: map[string]string{"XDG_CONFIG_HOME": xdg, "CCRELAY_CONFIG": envFile}, local: true, wantOut: envFile + "\n"},
		{name: "explicit wins", explicit: "explicit.toml", env: map[string]string{"CCRELAY_CONFIG": envFile}, wantOut: "explicit.toml\n"},
		{name: "explicit missing", explicit: "nope.toml", wantErr: "nope.toml"},
		{name: "env missing", env: map[string]string{"CCRELAY_CONFIG": "gone.toml"}, wantErr: "CCRELAY_CONFIG"},
		{
			name: "tty shows the search order", env: map[string]string{"XDG_CONFIG_HOME": xdg}, local: true, tty: true, wantOut: "config.toml\n",
			wantInErr: []string{"Search order:", "1. config.toml  <- used", xdgFile + "  (exists, not used", "/etc/ccrelay/config.toml"},
		},
		{
			name: "none found", env: map[string]string{"HOME": filepath.Join(dir, "home")}, wantErr: "no config file found",
			wantInErr: []string{"1. config.toml  (not found)", filepath.Join(dir, "home", ".config", "ccrelay", "config.toml")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove("config.toml")
			if tt.local {
				write("config.toml")
			}
			ios, _, out, errOut := iostreams.Test()
			ios.SetStdoutTTY(tt.tty)
			explicit := tt.explicit
			err := pathRun(&Options{IO: ios, Explicit: &explicit, Getenv: func(k string) string { return tt.env[k] }})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tt.wantOut)
			}
			for _, w := range tt.wantInErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}
