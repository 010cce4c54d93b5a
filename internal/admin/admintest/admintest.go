// Package admintest runs a real admin API over a real scheduler and state
// database on a loopback httptest server, for the tests of the commands'
// --server mode.
package admintest

import (
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Key is the admin key the server accepts; RelayKey a relay key it refuses.
const (
	Key      = "admintest-admin-key-0123456789"
	RelayKey = "admintest-relay-key-0123456789"
)

// Server is a running admin API.
type Server struct {
	URL    string
	Sched  *scheduler.Scheduler
	DB     *store.DB
	DBPath string
}

// Start serves the admin API over accounts (claude-api, platform claude, in
// this order) and a fresh database; the caller adds state through Sched and DB.
func Start(t *testing.T, accountIDs ...string) *Server {
	t.Helper()
	return StartKeys(t, nil, accountIDs...)
}

// StartKeys is Start with the named relay keys of keys (GET /admin/v1/keys
// lists them with their limits, counts and budgets); nil: the api_keys only.
func StartKeys(t *testing.T, keys admin.KeySource, accountIDs ...string) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var accts []*scheduler.Account
	for i, id := range accountIDs {
		accts = append(accts, &scheduler.Account{ID: id, Name: id, Type: "claude-api", Platform: "claude", Priority: 100, Enabled: true, Index: i})
	}
	s := scheduler.New(accts, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Hour, RateLimitCooldown: time.Hour, OverloadCooldown: time.Hour, MaxRateLimitHint: time.Hour}, db, nil)
	t.Cleanup(s.Close)
	api := admin.New(admin.Options{
		Auth: admin.NewAuth([]string{Key}, []string{RelayKey}), Sched: s, State: db, Usage: db,
		RelayKeys: []string{RelayKey}, KeyLabel: usage.KeyLabels([]string{RelayKey}), Keys: keys,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Sched: s, DB: db, DBPath: path}
}

// Getenv returns an environment with CCRELAY_ADMIN_KEY set to key.
func Getenv(key string) func(string) string {
	return func(name string) string {
		if name == "CCRELAY_ADMIN_KEY" {
			return key
		}
		return ""
	}
}
