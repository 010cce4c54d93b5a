package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/pkg/cmd/keys/add"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// `ccrelay keys add` then a request with the printed key: the SDK is
// served, and a model outside the new key's allow-list is refused.
func TestKeysAddThenRequest(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("# team relay\n"+claudeAPIAccount("acct-1", up.URL, "k", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	ios, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Config: func() (*config.Config, error) { return config.LoadFile(path) }}
	cmd := add.NewCmdAdd(f, nil)
	cmd.SetArgs([]string{"dave", "--models", "claude-sonnet-*", "--hash-only"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out.String())
	data, _ := os.ReadFile(path)
	if key == "" || strings.Contains(string(data), key) {
		t.Fatalf("key %q; config:\n%s", key, data)
	}
	r := startRelay(t, string(data))
	if _, err := keyClient(r, key).Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	if _, err := keyClient(r, key).Messages.New(context.Background(), newParams("claude-opus-4-1")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("outside the allow-list: %v", err)
	}
}
