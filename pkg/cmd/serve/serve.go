// Package serve implements `ccrelay serve`.
package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/gcfloor"
	"github.com/ccrelay/ccrelay/internal/logging"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are serve's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	// Signals delivers shutdown signals; nil = SIGINT/SIGTERM of the process.
	Signals <-chan os.Signal
	// Ready, when set, is told the bound address once the relay listens.
	Ready   func(net.Addr)
	Version string
	// Exit ends the process on a second signal (replaceable in tests).
	Exit func(code int)
	// Load reloads the config file at path with the same flag and
	// environment overrides (hot reload).
	Load func(path string) (*config.Config, error)
	// Reloads delivers reload signals; nil = SIGHUP of the process.
	Reloads <-chan os.Signal
}

// NewCmdServe builds the serve command.
func NewCmdServe(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Version: f.Version, Exit: os.Exit,
		Load: func(path string) (*config.Config, error) { return cmdutil.LoadConfig(path, f.Getenv, f.Viper) }}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the relay",
		Long: heredoc.Doc(`
			Run the relay: clients point their base URL at it and each request is served
			by the best upstream account of the config.

			Settings come from the config file (see 'ccrelay config path'), then from
			CCRELAY_* environment variables (CCRELAY_HOST, CCRELAY_PORT, CCRELAY_LOG_LEVEL,
			CCRELAY_LOG_FORMAT, CCRELAY_DATABASE_PATH, CCRELAY_API_KEYS), then from flags.
			With no config file it starts on the defaults with no accounts and answers
			API calls with 503 until you add one.

			The config file is watched: accounts, relay keys (api_keys and [[keys]]),
			prices, model names, session settings, alerts and write_timeout_seconds change
			live when it changes (or on SIGHUP), without dropping requests in flight. A
			config that does not validate is not applied; the old one keeps serving and
			/health says "config":"stale". Settings read once (listen address, database,
			cluster, metrics_listen...) are logged as needing a restart; the full list is
			in docs/operations.md ("Hot reload").

			With admin_keys set, the dashboard is at /dashboard and its URL is logged at
			start (never the key).

			SIGINT or SIGTERM stops accepting, lets in-flight requests and streams finish
			(server.shutdown_timeout_seconds), writes pending usage and exits 0; a second
			signal exits at once.

			CCRELAY_GC_FLOOR_MB=16 keeps the garbage collector's heap goal at 16 MB or
			more (Go's own minimum is 4 MB): less CPU per request for more memory
			(docs/reference.md, "Performance and reliability"). GOGC, when set, takes precedence.

			For profiling, CCRELAY_PPROF_ADDR=127.0.0.1:6060 serves Go's /debug/pprof/ on
			that address (a listener of its own; keep it on loopback).
		`),
		Example: heredoc.Doc(`
			$ ccrelay serve
			$ ccrelay serve --config /etc/ccrelay/config.toml --port 8080
			$ CCRELAY_LOG_FORMAT=json ccrelay serve
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return serveRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.String("host", "", "listen address (default 127.0.0.1; 0.0.0.0 for all interfaces)")
	fl.Int("port", 0, "listen port (default 3000)")
	fl.String("log-level", "", "trace, debug, info, warn or error (default info)")
	fl.String("log-format", "", "text or json (default text)")
	fl.String("database-path", "", "SQLite file for usage and state (default data/relay.db)")
	for flag, key := range map[string]string{"host": "server.host", "port": "server.port", "log-level": "server.log_level", "log-format": "server.log_format", "database-path": "server.database_path"} {
		_ = f.Viper.BindPFlag(key, fl.Lookup(flag))
	}
	return cmd
}

func serveRun(opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	log := logging.New(opts.IO.ErrOut, cfg.Server.LogLevel, cfg.Server.LogFormat)
	logConfig(log, cfg)
	if addr := os.Getenv(pprofEnv); addr != "" {
		defer startPprof(addr, log)()
	}
	floor, err := gcfloor.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if floor > 0 {
		if stop, on := gcfloor.Start(floor, os.Getenv); on {
			defer stop()
			log.Info("garbage collector: heap goal kept at the floor or above", "env", gcfloor.Env, "floor_mb", floor>>20)
		} else {
			log.Warn("GOGC is set, so the heap floor is not used", "env", gcfloor.Env)
		}
	}
	a, err := app.Build(cfg, log)
	if err != nil {
		return err
	}
	a.Version = opts.Version
	if cfg.Path != "" && opts.Load != nil {
		reloads := opts.Reloads
		if reloads == nil {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGHUP)
			defer signal.Stop(ch)
			reloads = ch
		}
		path := cfg.Path
		a.EnableReload(func() (*config.Config, error) { return opts.Load(path) }, reloads)
	}
	addr, err := a.Start("")
	if err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	log.Info("ccrelay listening", "addr", addr.String(), "version", opts.Version)
	logDashboard(log, cfg, addr)
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	sigs := opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	sig := <-sigs
	timeout := config.Seconds(cfg.Server.ShutdownTimeoutSeconds)
	log.Info("shutting down: draining in-flight requests", "signal", fmt.Sprint(sig), "timeout", timeout.String(), "in_flight", a.Server.InFlight())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case s := <-sigs:
			log.Warn("second signal: exiting now", "signal", fmt.Sprint(s))
			opts.Exit(1)
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	err = a.Shutdown(ctx)
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond).String())
	if err != nil && ctx.Err() != nil {
		// The drain ran out of time; connections were closed. Not a failure
		// of the relay, so exit 0 as a clean stop.
		return nil
	}
	return err
}

// logConfig says at start what the config holds and what is probably not
// meant: no file, a file others can read, no account. Relay keys are counted
// whatever their kind (api_keys and [[keys]]); app.Build says how a relay
// without any key serves (protected mode, or everyone).
func logConfig(log *slog.Logger, cfg *config.Config) {
	if cfg.Path == "" {
		log.Warn("no config file found; running on defaults with no accounts",
			"searched", fmt.Sprint(config.SearchPaths(os.Getenv)),
			"next_step", "create one with 'ccrelay config init' (or copy config.example.toml to ./config.toml) and add an [[accounts]] entry, or run 'ccrelay login claude'")
		return
	}
	log.Info("config loaded", "path", cfg.Path, "accounts", len(cfg.Accounts),
		"relay_keys", len(cfg.APIKeys)+len(cfg.Keys), "api_keys", len(cfg.APIKeys), "named_keys", len(cfg.Keys))
	for _, w := range cfg.Warnings {
		log.Warn(cfg.Path + ": " + w.String())
	}
	if fi, err := os.Stat(cfg.Path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the config file holds secrets but others can read it; run: chmod 600 "+cfg.Path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	if len(cfg.Accounts) == 0 {
		log.Warn("no [[accounts]] configured: API calls get 503 until you add one ('ccrelay login claude' or an [[accounts]] entry); this relay applies the change within seconds")
	}
}

// logDashboard says where the dashboard is when admin keys turn it on. The
// key is never logged: the operator finds it in the config's admin_keys.
func logDashboard(log *slog.Logger, cfg *config.Config, addr net.Addr) {
	if len(cfg.AdminKeys) == 0 {
		return
	}
	host, port := cfg.Server.Host, cfg.Server.Port
	if tcp, ok := addr.(*net.TCPAddr); ok {
		host, port = tcp.IP.String(), tcp.Port
	}
	log.Info("dashboard on", "url", cmdutil.DashboardURL(host, port), "sign_in", "with a key from admin_keys in the config")
}
