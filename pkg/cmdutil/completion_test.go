package cmdutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
)

func completionConfig(t *testing.T, dbPath string) *Factory {
	t.Helper()
	cfg, err := config.Parse([]byte(`
[server]
database_path = "` + dbPath + `"

[[accounts]]
type = "claude-api"
id = "claude-a"
name = "Team key"
api_key = "k"

[[accounts]]
type = "claude-oauth"
id = "claude-b"
enabled = false
refresh_token = "r"

[[accounts]]
type = "gemini-api"
id = "gem"
api_key = "k"
`))
	if err != nil {
		t.Fatal(err)
	}
	return &Factory{Config: func() (*config.Config, error) { return cfg, nil }}
}

func TestCompleteAccountIDs(t *testing.T) {
	f := completionConfig(t, filepath.Join(t.TempDir(), "relay.db"))
	tests := []struct {
		name       string
		args       []string
		toComplete string
		want       []string
	}{
		{name: "all", want: []string{"claude-a\tclaude-api, Team key", "claude-b\tclaude-oauth (disabled)", "gem\tgemini-api"}},
		{name: "prefix", toComplete: "cl", want: []string{"claude-a\tclaude-api, Team key", "claude-b\tclaude-oauth (disabled)"}},
		{name: "already given", args: []string{"claude-a"}, toComplete: "cl", want: []string{"claude-b\tclaude-oauth (disabled)"}},
		{name: "none", toComplete: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dir := CompleteAccountIDs(f)(&cobra.Command{}, tt.args, tt.toComplete)
			if dir != cobra.ShellCompDirectiveNoFileComp {
				t.Errorf("directive = %v", dir)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompleteAccountIDsBadConfig(t *testing.T) {
	f := &Factory{Config: func() (*config.Config, error) { return nil, errors.New("broken") }}
	got, dir := CompleteAccountIDs(f)(&cobra.Command{}, nil, "")
	if len(got) != 0 || dir != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("got %q %v", got, dir)
	}
}

func TestCompleteSessionKeys(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "data", "relay.db")
	f := completionConfig(t, dbPath)
	cmd := &cobra.Command{} // no context, as when called outside Execute

	// No database yet: nothing offered, nothing created.
	if got, _ := CompleteSessionKeys(f)(cmd, nil, ""); len(got) != 0 {
		t.Errorf("got %q without a database", got)
	}
	if _, err := os.Stat(filepath.Dir(dbPath)); !os.IsNotExist(err) {
		t.Fatal("completion created the database directory")
	}

	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	for _, b := range []state.Binding{
		{Key: "abc123", AccountID: "claude-a", ExpiresAt: now.Add(time.Hour)},
		{Key: "abd456", AccountID: "gem", ExpiresAt: now.Add(30 * time.Minute)},
		{Key: "old", AccountID: "gem", ExpiresAt: now.Add(-time.Minute)},
	} {
		if err := db.SaveSession(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	got, dir := CompleteSessionKeys(f)(cmd, nil, "ab")
	if dir != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("directive = %v", dir)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "abd456\tgem, expires in 30m") || !strings.HasPrefix(got[1], "abc123\tclaude-a, expires in 1h0m") {
		t.Errorf("got %q", got)
	}
	if got, _ := CompleteSessionKeys(f)(cmd, []string{"abc123"}, "ab"); len(got) != 1 {
		t.Errorf("an argument already given was offered again: %q", got)
	}
}
