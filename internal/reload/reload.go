// Package reload keeps a running relay's configuration current: it watches
// the config file (and SIGHUP), loads and validates the new text, and applies
// it through hooks in two phases, so that either every part of the new
// config takes effect or none does and the old one keeps serving.
//
// Decisions worth knowing:
//   - The directory is watched, not the file: editors and the atomic config
//     writer replace the file by rename, which ends a watch on the file itself.
//     On Linux the watch does not ask for plain writes (watch_linux.go), so a
//     database in the same directory does not wake it on every write.
//   - Events are debounced (Debounce) and a reload whose config equals the
//     running one does nothing, so an editor's burst of writes is one reload.
//   - A hook's Prepare builds everything that can fail (clients, proxies) and
//     returns a commit that cannot; commits run only after every Prepare
//     succeeded, in registration order.
//   - Settings read once at start (listen address, database, cluster, ...)
//     are compared, and a change is logged as "needs restart"; the rest of
//     the new config is still applied.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
)

// Debounce is how long the watcher waits after a file event for more before
// reloading. An atomic rename is one event; an editor's save can be several.
const Debounce = 150 * time.Millisecond

// Loader reads, overlays (flags, environment) and validates the config.
type Loader func() (*config.Config, error)

// Hook applies one part of a new config. Prepare checks and builds what the
// part needs without changing anything in force, and returns a commit that
// switches to it and must not fail (nil when the part did not change).
// Hooks see the config in force and the new one.
type Hook struct {
	// Name appears in logs, e.g. "accounts".
	Name    string
	Prepare func(old, new *config.Config) (commit func(), err error)
}

// Status is what /health and the admin API show about reloads.
type Status struct {
	// Generation counts applied configs; 1 is the one the relay started on.
	Generation int
	// Stale is true when the file holds a config that could not be applied.
	Stale bool
	// Error says why it could not (problems with their lines); "" when not stale.
	Error string
	// NeedsRestart lists the settings whose change waits for a restart.
	NeedsRestart []string
	// LastAttempt and LastApplied are when a reload last ran and last took effect.
	LastAttempt time.Time
	LastApplied time.Time
}

// Reloader applies config changes to a running relay. It is safe for
// concurrent use; reloads are serialized.
type Reloader struct {
	path  string
	load  Loader
	log   *slog.Logger
	hooks []Hook

	mu      sync.Mutex // serializes Reload
	current atomic.Pointer[config.Config]
	status  atomic.Pointer[Status]

	watchMu sync.Mutex
	watch   *dirWatch // opened by Watch, used and closed by Run
}

// New returns a reloader for the config cfg was loaded from (cfg.Path; ""
// means no file: Run only listens for signals). load is called on each reload.
func New(cfg *config.Config, load Loader, log *slog.Logger) *Reloader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{path: cfg.Path, load: load, log: log}
	r.current.Store(cfg)
	r.status.Store(&Status{Generation: 1, LastApplied: time.Now()})
	return r
}

// SetLoader replaces the loader (e.g. one that also applies flag and
// environment overrides); call before Run or Reload.
func (r *Reloader) SetLoader(load Loader) { r.load = load }

// AddHook registers h; call before Run or Reload. Hooks commit in the order
// they were added.
func (r *Reloader) AddHook(h Hook) { r.hooks = append(r.hooks, h) }

// Current returns the config in force.
func (r *Reloader) Current() *config.Config { return r.current.Load() }

// Status returns the state of the last reload.
func (r *Reloader) Status() Status {
	s := *r.status.Load()
	s.NeedsRestart = append([]string(nil), s.NeedsRestart...)
	return s
}

// ErrUnchanged is returned by Reload when the file holds the config in force.
var ErrUnchanged = errors.New("config unchanged")

// Reload loads the config and applies it. An invalid config is not applied:
// the error (with line numbers) is returned, logged, and kept in Status.
func (r *Reloader) Reload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := *r.status.Load()
	st.LastAttempt = time.Now()
	old := r.current.Load()
	next, err := r.load()
	if err == nil {
		next.Path = old.Path
		if reflect.DeepEqual(old, next) {
			st.Stale, st.Error = false, ""
			r.status.Store(&st)
			return ErrUnchanged
		}
		err = r.apply(old, next)
	}
	if err != nil {
		st.Stale, st.Error = true, err.Error()
		// Logged before the status says stale: whoever sees the status
		// finds the reason in the log.
		defer r.status.Store(&st)
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				r.log.Error("config reload refused: the running config keeps serving", "path", r.path, "line", p.Line, "key", p.Key, "problem", p.Msg)
			}
		} else {
			r.log.Error("config reload refused: the running config keeps serving", "path", r.path, "err", err)
		}
		return err
	}
	restart := NeedsRestart(old, next)
	for _, k := range restart {
		r.log.Warn("config setting changed; it needs restart to take effect", "key", k)
	}
	r.current.Store(next)
	st.Generation++
	st.Stale, st.Error, st.NeedsRestart = false, "", mergeKeys(st.NeedsRestart, restart)
	st.LastApplied = st.LastAttempt
	r.log.Info("config reloaded", "path", r.path, "generation", st.Generation, "accounts", len(next.Accounts))
	r.status.Store(&st)
	return nil
}

func (r *Reloader) apply(old, next *config.Config) error {
	commits := make([]func(), 0, len(r.hooks))
	for _, h := range r.hooks {
		c, err := h.Prepare(old, next)
		if err != nil {
			return fmt.Errorf("apply %s: %w", h.Name, err)
		}
		if c != nil {
			commits = append(commits, c)
		}
	}
	for _, c := range commits {
		c()
	}
	return nil
}

func mergeKeys(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, k := range b {
		found := false
		for _, x := range out {
			found = found || x == k
		}
		if !found {
			out = append(out, k)
		}
	}
	return out
}

// restartKeys are the settings read once at start, with how to read each.
// A part that learns to change live removes its entry (and adds a Hook).
var restartKeys = []struct {
	key string
	get func(c *config.Config) any
}{
	{"server.host", func(c *config.Config) any { return c.Server.Host }},
	{"server.port", func(c *config.Config) any { return c.Server.Port }},
	{"server.database_path", func(c *config.Config) any { return c.Server.DatabasePath }},
	{"server.log_level", func(c *config.Config) any { return c.Server.LogLevel }},
	{"server.log_format", func(c *config.Config) any { return c.Server.LogFormat }},
	{"server.max_body_bytes", func(c *config.Config) any { return c.Server.MaxBodyBytes }},
	{"server.first_byte_timeout_seconds", func(c *config.Config) any { return c.Server.FirstByteTimeoutSeconds }},
	{"server.response_timeout_seconds", func(c *config.Config) any { return c.Server.ResponseTimeoutSeconds }},
	{"server.idle_timeout_seconds", func(c *config.Config) any { return c.Server.IdleTimeoutSeconds }},
	{"server.body_timeout_seconds", func(c *config.Config) any { return c.Server.BodyTimeoutSeconds }},
	{"server.max_attempts", func(c *config.Config) any { return c.Server.MaxAttempts }},
	{"server.usage_retention_days", func(c *config.Config) any { return c.Server.UsageRetentionDays }},
	{"server.request_log_days", func(c *config.Config) any { return c.Server.RequestLogDays }},
	{"server.request_log_max_rows", func(c *config.Config) any { return c.Server.RequestLogMaxRows }},
	{"server.shutdown_timeout_seconds", func(c *config.Config) any { return c.Server.ShutdownTimeoutSeconds }},
	{"trusted_proxies", func(c *config.Config) any { return c.TrustedProxies }},
	// An account's own plan_only follows reloads (each account's is read as
	// it is built); the table's settings are the scheduler's, read once.
	{"scheduler", func(c *config.Config) any { return c.Scheduler }},
	{"cluster", func(c *config.Config) any { return c.Cluster }},
	{"metrics_listen", func(c *config.Config) any { return c.MetricsListen }},
}

// NeedsRestart lists the settings that differ between old and next and take
// effect only at the next start.
func NeedsRestart(old, next *config.Config) []string {
	var out []string
	for _, k := range restartKeys {
		if !reflect.DeepEqual(k.get(old), k.get(next)) {
			out = append(out, k.key)
		}
	}
	return out
}

// Run reloads on changes to the config file and on each value from signals
// (SIGHUP; nil for none) until ctx ends. When the file cannot be watched it
// says so and goes on with the signals.
func (r *Reloader) Run(ctx context.Context, signals <-chan os.Signal) {
	var changed <-chan struct{}
	var errs <-chan error
	if err := r.Watch(); err != nil {
		r.log.Error("cannot watch the config file; SIGHUP still reloads", "path", r.path, "err", err)
	}
	r.watchMu.Lock()
	w := r.watch
	r.watchMu.Unlock()
	if w != nil {
		defer func() {
			r.watchMu.Lock()
			r.watch = nil
			r.watchMu.Unlock()
			w.Close()
		}()
		changed, errs = w.C, w.Errs
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			timer.Reset(Debounce)
		case err := <-errs:
			r.log.Warn("config watcher error; SIGHUP still reloads", "err", err)
		case <-timer.C:
			r.reloadLogged(ctx, "file changed")
		case <-signals:
			r.reloadLogged(ctx, "signal")
		}
	}
}

// Watch starts watching the config file now, so that a change made after
// it returns is seen once Run runs (Run starts the watch itself when Watch
// was not called). Without a file it does nothing.
func (r *Reloader) Watch() error {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.path == "" || r.watch != nil {
		return nil
	}
	// "..data" is the symlink a Kubernetes ConfigMap swaps.
	w, err := watchDir(filepath.Dir(r.path), filepath.Base(r.path), "..data")
	if err != nil {
		return fmt.Errorf("watch config directory: %w", err)
	}
	r.watch = w
	return nil
}

func (r *Reloader) reloadLogged(ctx context.Context, why string) {
	err := r.Reload(ctx)
	if errors.Is(err, ErrUnchanged) {
		r.log.Debug("config reload: nothing changed", "trigger", why)
	}
}
