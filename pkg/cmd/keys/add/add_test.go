package add

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestAddFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdAdd(&cmdutil.Factory{IOStreams: ios}, func(o *Options) error { got = o; return nil })
	args := strings.Fields("alice --models claude-sonnet-*,gpt-5* --groups team-a --rpm 60 --concurrency 2 --daily-usd 2.5 --hash-only")
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Name != "alice" || len(got.Models) != 2 || got.Groups[0] != "team-a" || got.RPM != 60 || got.Concurrency != 2 || got.DailyUSD != 2.5 || !got.HashOnly {
		t.Fatalf("%+v", got)
	}
}

// keys add writes an entry the relay authenticates: the printed key is the
// one the config's digest matches, and --hash-only leaves no key in the file.
func TestAddRun(t *testing.T) {
	for _, hashOnly := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte("# comment kept\napi_keys = []\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ios, _, out, errOut := iostreams.Test()
		opts := &Options{IO: ios, Config: func() (*config.Config, error) { return config.LoadFile(path) },
			NewKey: func() string { return "ccr-TESTKEY" }, Name: "bob", Models: []string{"claude-*"}, DailyUSD: 3, HashOnly: hashOnly}
		if err := addRun(opts); err != nil {
			t.Fatal(err)
		}
		if out.String() != "ccr-TESTKEY\n" {
			t.Fatalf("stdout %q", out)
		}
		// A running relay reloads its file: the key applies within seconds.
		if msg := errOut.String(); !strings.Contains(msg, "applies it within seconds") || strings.Contains(msg, "restart") || strings.Contains(msg, "ccr-TESTKEY") {
			t.Fatalf("stderr %q", msg)
		}
		data, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(data), "# comment kept\n") || strings.Contains(string(data), "ccr-TESTKEY") == hashOnly {
			t.Fatalf("hash-only=%v file:\n%s", hashOnly, data)
		}
		cfg, err := config.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pol, err := policy.New(policy.Options{Keys: cfg.Keys})
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := pol.Authenticate("ccr-TESTKEY"); !ok || k.Name != "bob" {
			t.Fatalf("the new key does not authenticate: %v", ok)
		}
		if err := addRun(opts); err == nil {
			t.Fatal("a second key with the same name was added")
		}
	}
}
