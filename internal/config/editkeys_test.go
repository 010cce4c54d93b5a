package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	orig := "# my relay\napi_keys = [\"k1\"] # old key\n\n[server]\nport = 3000\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AppendKey(path, []Field{{"name", "alice"}, {"key", "ccr-secret"}, {"models", []string{"claude-*"}}, {"rpm", 60}, {"daily_usd", 5.0}}); err != nil {
		t.Fatal(err)
	}
	if err := AppendKey(path, []Field{{"name", "bob"}, {"key_sha256", strings.Repeat("ab", 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := AppendKey(path, []Field{{"name", "alice"}, {"key", "x"}}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := SetKeyField(path, "alice", "enabled", false); err != nil {
		t.Fatal(err)
	}
	if err := SetKeyField(path, "alice", "enabled", true); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Keys) != 2 || cfg.Keys[0].Name != "alice" || !cfg.Keys[0].IsEnabled() || cfg.Keys[0].RPM != 60 || cfg.Keys[0].DailyUSD != 5 || cfg.Keys[0].Models[0] != "claude-*" {
		t.Fatalf("keys: %+v", cfg.Keys)
	}
	if err := RemoveKey(path, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveKey(path, "bob"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if got := strings.TrimRight(string(data), "\n"); got != strings.TrimRight(orig, "\n") {
		t.Fatalf("after add and remove the file is\n%s\nwant\n%s", got, orig)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := RemoveKey(path, "carol"); err == nil {
		t.Fatal("removing an unknown key worked")
	}
}
