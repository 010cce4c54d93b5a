package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewKeyFields(t *testing.T) {
	nk := NewKey{Name: "alice", Models: []string{"claude-*"}, Groups: []string{"a"}, RPM: 60, Concurrency: 2, QueueSeconds: 10,
		DailyUSD: 2.5, WeeklyUSD: 10, MonthlyUSD: 30, DailyTokens: 1000, ExpiresAt: "2030-01-01", Timezone: "Europe/Berlin"}
	var got []string
	for _, f := range nk.Fields("ccr-K") {
		got = append(got, f.Key)
	}
	want := "name key models groups expires_at rpm concurrency queue_seconds daily_usd weekly_usd monthly_usd daily_tokens timezone"
	if strings.Join(got, " ") != want {
		t.Fatalf("fields %v, want %s", got, want)
	}
	nk = NewKey{Name: "bob", HashOnly: true}
	fs := nk.Fields("ccr-K")
	if len(fs) != 2 || fs[1].Key != "key_sha256" || fs[1].Value != sha256Hex("ccr-K") {
		t.Fatalf("hash-only fields %v", fs)
	}
}

func TestNewKeyCheck(t *testing.T) {
	cfg, err := Parse([]byte("api_keys = [\"ccr-OLD-0123456789\"]\n[[keys]]\nname = \"ci\"\nkey = \"ccr-CI-0123456789\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		nk   NewKey
		key  string
		want string // "" = valid
	}{
		{"valid", NewKey{Name: "alice", Models: []string{"claude-*"}, Timezone: "Europe/Berlin", ExpiresAt: "2030-01-01"}, "ccr-NEW", ""},
		{"duplicate", NewKey{Name: "ci"}, "ccr-NEW", "already exists"},
		{"no name", NewKey{}, "ccr-NEW", "name: is required"},
		{"bad glob", NewKey{Name: "x", Models: []string{"["}}, "ccr-NEW", "models[0]: is not a valid glob"},
		{"bad zone", NewKey{Name: "x", Timezone: "Nowhere/Else"}, "ccr-NEW", "timezone: unknown time zone"},
		{"negative", NewKey{Name: "x", RPM: -1}, "ccr-NEW", "rpm: must not be negative"},
		{"same key as api_keys", NewKey{Name: "x"}, "ccr-OLD-0123456789", "key: is the same key as api_keys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.nk.Check(cfg, tt.key)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var invalid *InvalidKeyError
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "keys[1]") {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if tt.name == "duplicate" != errors.Is(err, ErrKeyExists) || tt.name != "duplicate" && !errors.As(err, &invalid) {
				t.Fatalf("error kind: %T %v", err, err)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Fatal("the key's value is in the error")
			}
		})
	}
}

func TestAddKey(t *testing.T) {
	if err := AddKey(&Config{}, NewKey{Name: "a"}, "ccr-K"); !errors.Is(err, ErrNoConfigFile) {
		t.Fatalf("no file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	orig := "# keep me\napi_keys = [] # and me\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := AddKey(cfg, NewKey{Name: "a", DailyUSD: 1.5}, "ccr-KEY-0123456789"); err != nil {
		t.Fatal(err)
	}
	// A second writer that read the config before the first wrote it is
	// stopped by the editor, under the lock.
	if err := AddKey(cfg, NewKey{Name: "a"}, "ccr-OTHER-0123456789"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("stale duplicate: %v", err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), orig) || !strings.Contains(string(data), "daily_usd = 1.5") {
		t.Fatalf("file:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := SetKeyField(path, "zed", "enabled", false); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}
