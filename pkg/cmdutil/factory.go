// Package cmdutil holds what every command shares: the Factory of lazily
// built dependencies, and error helpers that map to exit codes.
package cmdutil

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/viper"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Factory gives commands their dependencies. Building the command tree
// touches no disk and no network: each dependency is a function called only
// when a command runs.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// Viper holds flag and CCRELAY_* environment overrides (never the global viper).
	Viper *viper.Viper
	// ConfigPath is the --config flag's value ("" = search).
	ConfigPath *string
	// Config loads, overlays and validates the configuration.
	Config func() (*config.Config, error)
	// DB opens the state database named by the config. It returns (nil, nil)
	// when the file does not exist yet (no server has run): read-only
	// commands then show the config alone.
	DB func() (*store.DB, error)
	// Getenv reads the environment (replaceable in tests).
	Getenv func(string) string
	// Version, Commit, Date identify the build.
	Version, Commit, Date string
}

// New returns the production factory.
func New(version, commit, date string) *Factory {
	f := &Factory{IOStreams: iostreams.System(), Viper: config.NewViper(), Getenv: os.Getenv, Version: version, Commit: commit, Date: date}
	path := ""
	f.ConfigPath = &path
	var once sync.Once
	var cfg *config.Config
	var cerr error
	f.Config = func() (*config.Config, error) {
		once.Do(func() { cfg, cerr = LoadConfig(*f.ConfigPath, f.Getenv, f.Viper) })
		return cfg, cerr
	}
	var dbOnce sync.Once
	var db *store.DB
	var dbErr error
	f.DB = func() (*store.DB, error) {
		dbOnce.Do(func() {
			c, err := f.Config()
			if err != nil {
				dbErr = err
				return
			}
			db, dbErr = OpenExistingDB(c.Server.DatabasePath)
		})
		return db, dbErr
	}
	return f
}

// OpenExistingDB opens the database at path, or returns (nil, nil) when no
// file is there.
func OpenExistingDB(path string) (*store.DB, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return store.Open(path)
}

// LoadConfig finds and loads the config (defaults when no file exists and
// none was named), then applies flag and environment overrides.
func LoadConfig(explicit string, getenv func(string) string, v *viper.Viper) (*config.Config, error) {
	path, err := config.Find(explicit, getenv)
	var cfg *config.Config
	switch {
	case errors.Is(err, config.ErrNotFound):
		cfg = config.Default()
	case err != nil:
		return nil, err
	default:
		cfg, err = config.LoadFile(path)
		if err != nil {
			return nil, err
		}
	}
	if err := cfg.ApplyOverrides(v); err != nil {
		return nil, fmt.Errorf("flags and environment: %w", err)
	}
	return cfg, nil
}

// ExitError carries a specific exit code with a message already printed (or none).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *ExitError) Unwrap() error { return e.Err }

// ErrSilent makes main exit 1 without printing anything more.
var ErrSilent = errors.New("silent")

// FlagError is a usage mistake (exit code 2).
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}
