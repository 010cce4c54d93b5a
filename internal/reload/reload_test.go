package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
)

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Hooks commit only when every Prepare succeeded, in order; a failing one
// leaves everything as it was and marks the config stale.
func TestTwoPhaseApply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	writeConfig(t, path, "[models]\na = \"b\"\n")
	r := New(load(t, path), func() (*config.Config, error) { return config.LoadFile(path) }, nil)
	var log []string
	fail := false
	r.AddHook(Hook{Name: "one", Prepare: func(old, next *config.Config) (func(), error) {
		log = append(log, "prepare one")
		return func() { log = append(log, "commit one") }, nil
	}})
	r.AddHook(Hook{Name: "two", Prepare: func(old, next *config.Config) (func(), error) {
		log = append(log, "prepare two")
		if fail {
			return nil, errors.New("cannot")
		}
		return func() { log = append(log, "commit two") }, nil
	}})

	if err := r.Reload(context.Background()); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("unchanged file: %v", err)
	}
	writeConfig(t, path, "[models]\na = \"c\"\n")
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(log, ", "); got != "prepare one, prepare two, commit one, commit two" {
		t.Fatalf("order: %s", got)
	}
	if r.Current().Models["a"] != "c" || r.Status().Generation != 2 {
		t.Fatalf("current %v, status %+v", r.Current().Models, r.Status())
	}

	log, fail = nil, true
	writeConfig(t, path, "[models]\na = \"d\"\n")
	err := r.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "apply two: cannot") {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(log, ", "); got != "prepare one, prepare two" {
		t.Fatalf("a commit ran after a failed prepare: %s", got)
	}
	if st := r.Status(); !st.Stale || r.Current().Models["a"] != "c" || st.Generation != 2 {
		t.Fatalf("status %+v, current %v", st, r.Current().Models)
	}
}

// An invalid file is refused with its line; the status says so until a
// good file is applied.
func TestInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	writeConfig(t, path, "[server]\nport = 3000\n")
	r := New(load(t, path), func() (*config.Config, error) { return config.LoadFile(path) }, nil)
	writeConfig(t, path, "[server]\nport = 3000\nbogus = 1\n")
	err := r.Reload(context.Background())
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Problems[0].Line != 3 {
		t.Fatalf("err = %v", err)
	}
	if st := r.Status(); !st.Stale || !strings.Contains(st.Error, "line 3") {
		t.Fatalf("status %+v", st)
	}
	writeConfig(t, path, "[server]\nport = 3001\n")
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Stale || st.Error != "" || len(st.NeedsRestart) != 1 || st.NeedsRestart[0] != "server.port" {
		t.Fatalf("status %+v", st)
	}
}

func TestNeedsRestart(t *testing.T) {
	a, b := config.Default(), config.Default()
	b.Server.DatabasePath = "other.db"
	b.Cluster.RedisURL = "redis://127.0.0.1:6379"
	b.Models = map[string]string{"x": "y"}
	b.Session.StickyTTLSeconds = 10
	b.APIKeys = []string{"a-new-relay-key"}   // live since the keys hook
	b.AllowUnauthenticated = true             // live since the allow_unauthenticated hook
	b.Server.BodyTimeoutSeconds = 5           // the relay reads it once
	b.Server.WriteTimeoutSeconds = 5          // live since the write-timeout hook
	b.AdminKeys = []string{"a-new-admin-key"} // read on every request
	b.Server.UsageRetentionDays = 3           // the rest are read once at start
	b.Server.RequestLogDays = 3
	b.Server.ShutdownTimeoutSeconds = 3
	b.TrustedProxies = []string{"10.0.0.1"}
	b.Scheduler.SoftLimit = 0.5
	if got := strings.Join(NeedsRestart(a, b), ","); got != "server.database_path,server.body_timeout_seconds,server.usage_retention_days,server.request_log_days,server.shutdown_timeout_seconds,trusted_proxies,scheduler,cluster" {
		t.Fatalf("needs restart: %s", got)
	}
}

// modelsReloader writes a config with models.a = "1" in a new directory
// and returns a reloader for it whose hook sends each applied models.a.
func modelsReloader(t *testing.T) (dir, path string, r *Reloader, applied chan string) {
	dir = t.TempDir()
	path = filepath.Join(dir, "config.toml")
	writeConfig(t, path, "[models]\na = \"1\"\n")
	r = New(load(t, path), func() (*config.Config, error) { return config.LoadFile(path) }, nil)
	applied = make(chan string, 10)
	r.AddHook(Hook{Name: "models", Prepare: func(old, next *config.Config) (func(), error) {
		return func() { applied <- next.Models["a"] }, nil
	}})
	return dir, path, r, applied
}

// Run reloads when the file is replaced by rename (the atomic writer) and
// on a signal.
func TestRunWatchesRenames(t *testing.T) {
	dir, path, r, applied := modelsReloader(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { r.Run(ctx, sig); close(done) }()
	defer func() { cancel(); <-done }()

	// A signal with the file unchanged: once it was handled, the watch is up.
	sig <- os.Interrupt
	for r.Status().LastAttempt.IsZero() {
		time.Sleep(time.Millisecond)
	}
	tmp := filepath.Join(dir, ".config.toml.tmp")
	writeConfig(t, tmp, "[models]\na = \"2\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if v := <-applied; v != "2" {
		t.Fatalf("applied %q", v)
	}
	// Another change to another file in the directory does not reload.
	writeConfig(t, filepath.Join(dir, "other.toml"), "x = 1\n")
	writeConfig(t, tmp, "[models]\na = \"3\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if v := <-applied; v != "3" {
		t.Fatalf("applied %q", v)
	}
}

// A change written after Watch returned and before Run started is applied
// (the app calls Watch before Start returns, so an edit made right after
// start is not missed).
func TestChangeBetweenWatchAndRunIsApplied(t *testing.T) {
	dir, path, r, applied := modelsReloader(t)
	if err := r.Watch(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".config.toml.tmp")
	writeConfig(t, tmp, "[models]\na = \"2\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case v := <-applied:
		if v != "2" {
			t.Fatalf("applied %q", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the change made before Run was not applied")
	}
}
