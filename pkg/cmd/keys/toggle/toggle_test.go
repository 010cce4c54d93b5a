package toggle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Each action edits the file and says that a running relay applies it
// within seconds (it reloads its config file), never that it needs a restart.
func TestToggleRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("[[keys]]\nname = \"alice\"\nkey = \"alice-key-0123456789\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() (*config.Config, error) { return config.LoadFile(path) }
	for _, tt := range []struct {
		action  Action
		enabled bool
		removed bool
	}{{Disable, false, false}, {Enable, true, false}, {Remove, false, true}} {
		t.Run(string(tt.action), func(t *testing.T) {
			ios, _, _, errOut := iostreams.Test()
			if err := toggleRun(&Options{IO: ios, Config: load, Action: tt.action, Names: []string{"alice"}}); err != nil {
				t.Fatal(err)
			}
			msg := errOut.String()
			if !strings.Contains(msg, "alice: "+string(tt.action)+"d in "+path) || !strings.Contains(msg, "applies it within seconds") || strings.Contains(msg, "restart") {
				t.Errorf("stderr %q", msg)
			}
			cfg, err := load()
			if err != nil {
				t.Fatal(err)
			}
			if tt.removed != (len(cfg.Keys) == 0) || (!tt.removed && cfg.Keys[0].IsEnabled() != tt.enabled) {
				t.Errorf("keys after %s: %+v", tt.action, cfg.Keys)
			}
		})
	}
}
