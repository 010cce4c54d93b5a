package initcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// TestExampleInSync fails when config.example.toml changed without the
// embedded copy being refreshed.
func TestExampleInSync(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, Example) {
		t.Fatalf("%s differs from config.example.toml: run `go run ./cmd/gen-docs` from the repository root", ExampleFile)
	}
}

func TestStarter(t *testing.T) {
	key, admin := NewRelayKey(), NewAdminKey()
	out, err := Starter(Example, key, admin)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(out)
	if err != nil {
		t.Fatalf("starter does not load: %v\n%s", err, out)
	}
	if len(cfg.APIKeys) != 1 || cfg.APIKeys[0] != key {
		t.Errorf("api_keys = %v", cfg.APIKeys)
	}
	if len(cfg.AdminKeys) != 1 || cfg.AdminKeys[0] != admin {
		t.Errorf("admin_keys = %v, want the generated admin key", cfg.AdminKeys)
	}
	if len(cfg.Accounts) != 0 {
		t.Errorf("accounts = %d, want the examples commented out", len(cfg.Accounts))
	}
	s := string(out)
	for _, want := range []string{"# [[accounts]]", "# type = \"claude-oauth\"", "# [accounts.proxy]", "[server]", "port = 3000", "[session]"} {
		if !strings.Contains(s, want) {
			t.Errorf("starter lacks %q", want)
		}
	}
	if strings.Contains(s, "change-me-relay-key") || strings.Contains(s, "change-me-admin-key") {
		t.Error("a placeholder key is still there")
	}
	// Every setting of the example is still there, with its comment.
	for _, line := range strings.Split(string(Example), "\n") {
		if strings.HasPrefix(line, "api_keys") || strings.HasPrefix(line, "# admin_keys") {
			continue
		}
		if !strings.Contains(s, line) {
			t.Errorf("starter lost the line %q", line)
		}
	}
}

func TestStarterRejectsUnexpectedExample(t *testing.T) {
	for _, ex := range []string{"[server]\n", "api_keys = []\n", "api_keys = []\n# admin_keys = []\n"} {
		if _, err := Starter([]byte(ex), "k", "admin-key-0123456789"); err == nil {
			t.Errorf("Starter(%q) succeeded", ex)
		}
	}
}

func TestNewRelayKey(t *testing.T) {
	a, b := NewRelayKey(), NewRelayKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	if !regexp.MustCompile(`^ccr-[A-Z2-7]{26}$`).MatchString(a) {
		t.Errorf("key %q", a)
	}
}

func TestNewAdminKey(t *testing.T) {
	a, b := NewAdminKey(), NewAdminKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	// At least 16 characters (config validation), and never a relay key's shape.
	if !regexp.MustCompile(`^ccr-admin-[A-Z2-7]{26}$`).MatchString(a) {
		t.Errorf("key %q", a)
	}
}

func TestInitRun(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	key := func() string { return "ccr-TESTKEY" }
	adminKey := func() string { return "ccr-admin-TESTADMINKEY" }
	run := func(o Options) (string, string, error) {
		ios, _, out, errOut := iostreams.Test()
		o.IO = ios
		o.NewKey = key
		o.NewAdminKey = adminKey
		err := initRun(&o)
		return out.String(), errOut.String(), err
	}

	// Default target: ./config.toml, mode 0600.
	_, errOut, err := run(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "Wrote config.toml (mode 0600)") || strings.Contains(errOut, "ccr-TESTKEY") {
		t.Errorf("stderr = %q", errOut)
	}
	// Where the dashboard is, and where its key is, never the key itself.
	if !strings.Contains(errOut, "http://127.0.0.1:3000/dashboard") || !strings.Contains(errOut, "admin_keys in config.toml") ||
		strings.Contains(errOut, "TESTADMINKEY") {
		t.Errorf("stderr does not point at the dashboard (or shows the admin key): %q", errOut)
	}
	fi, err := os.Stat("config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
	if cfg, err := config.LoadFile("config.toml"); err != nil || cfg.APIKeys[0] != "ccr-TESTKEY" {
		t.Fatalf("written config: %v %v", cfg, err)
	} else if len(cfg.AdminKeys) != 1 || cfg.AdminKeys[0] != "ccr-admin-TESTADMINKEY" {
		t.Fatalf("written config's admin_keys = %v, want the generated admin key", cfg.AdminKeys)
	}

	// Never overwritten without --force.
	if err := os.WriteFile("config.toml", []byte("# mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v", err)
	}
	if data, _ := os.ReadFile("config.toml"); string(data) != "# mine\n" {
		t.Fatal("existing file was changed")
	}
	if _, _, err := run(Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile("config.toml"); !strings.Contains(string(data), "ccr-TESTKEY") {
		t.Fatal("--force did not replace the file")
	}

	// --path into a new directory; the hint names --config.
	target := filepath.Join(dir, "etc", "ccrelay", "config.toml")
	_, errOut, err = run(Options{Path: target})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "ccrelay serve --config "+target) {
		t.Errorf("stderr = %q", errOut)
	}
	if fi, err := os.Stat(filepath.Dir(target)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v", fi, err)
	}

	// The --config flag is the target when --path is absent.
	explicit := filepath.Join(dir, "via-config.toml")
	if _, _, err := run(Options{Explicit: &explicit}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(explicit); err != nil {
		t.Fatal(err)
	}

	// --path - prints instead.
	out, _, err := run(Options{Path: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `api_keys = ["ccr-TESTKEY"]`) || !strings.Contains(out, "\nadmin_keys = [\"ccr-admin-TESTADMINKEY\"]\n") {
		t.Errorf("stdout = %q", out)
	}
}
