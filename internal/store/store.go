// Package store is ccrelay's SQLite database: usage records and the relay's
// state (sticky sessions, cooldowns, rotated OAuth credentials). It is the only
// importer of the SQLite driver.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver (cgo)
)

// DB is an open ccrelay database.
type DB struct {
	sqlp atomic.Pointer[sql.DB]
	dsn  string // "" for read-only handles, which are never recreated
	path string
	// degraded: opened by OpenServe without write access; TryWritable
	// switches to a writable handle once it can.
	degraded atomic.Bool
	skipped  atomic.Int64
	// schemas, when set, are the attached databases usage queries sum over
	// (several relays' files, see OpenReadOnlyMany); nil means "main".
	schemas []string
	// durableHook, when set (tests), sees the connection of every durable
	// write just before the write.
	durableHook func(*sql.Conn)
}

var migrations = []string{
	// 1: usage, as the original names its columns, plus ccrelay's request fields.
	`CREATE TABLE IF NOT EXISTS usage_stats (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
		ts_ms INTEGER NOT NULL DEFAULT 0,
		request_id TEXT NOT NULL DEFAULT '',
		client_api_key_hash TEXT NOT NULL DEFAULT 'anonymous',
		account_id TEXT NOT NULL DEFAULT '',
		platform TEXT NOT NULL DEFAULT '',
		model TEXT NOT NULL DEFAULT '',
		input_tokens INTEGER NOT NULL DEFAULT 0,
		output_tokens INTEGER NOT NULL DEFAULT 0,
		cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
		cache_read_tokens INTEGER NOT NULL DEFAULT 0,
		request_count INTEGER NOT NULL DEFAULT 1,
		status INTEGER NOT NULL DEFAULT 0,
		latency_ms INTEGER NOT NULL DEFAULT 0,
		ttfb_ms INTEGER NOT NULL DEFAULT 0,
		stream INTEGER NOT NULL DEFAULT 0,
		attempts INTEGER NOT NULL DEFAULT 1,
		error TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX IF NOT EXISTS idx_usage_ts ON usage_stats(ts_ms);
	CREATE INDEX IF NOT EXISTS idx_usage_account ON usage_stats(account_id, ts_ms);
	CREATE INDEX IF NOT EXISTS idx_usage_key ON usage_stats(client_api_key_hash, ts_ms);`,
	// 2: state.
	`CREATE TABLE IF NOT EXISTS sticky_sessions (
		session_hash TEXT PRIMARY KEY,
		account_id TEXT NOT NULL,
		expires_at_ms INTEGER NOT NULL
	);
	CREATE INDEX IF NOT EXISTS idx_sticky_expires ON sticky_sessions(expires_at_ms);
	CREATE TABLE IF NOT EXISTS cooldowns (
		account_id TEXT NOT NULL,
		model TEXT NOT NULL DEFAULT '',
		kind TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		until_ms INTEGER NOT NULL,
		PRIMARY KEY (account_id, model)
	);
	CREATE TABLE IF NOT EXISTS credentials (
		account_id TEXT PRIMARY KEY,
		refresh_token TEXT NOT NULL,
		access_token TEXT NOT NULL DEFAULT '',
		expires_at_ms INTEGER NOT NULL DEFAULT 0,
		origin_hash TEXT NOT NULL DEFAULT '',
		updated_at_ms INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE IF NOT EXISTS account_meta (
		account_id TEXT PRIMARY KEY,
		project_id TEXT NOT NULL DEFAULT '',
		last_used_ms INTEGER NOT NULL DEFAULT 0
	);`,
	// The order is fixed forever: a database records how many have run.
	// 3: commands the CLI leaves for a running server (admin.go).
	adminCommandsMigration,
	// 4: accounts disabled through the admin API (adminstate.go).
	accountAdminMigration,
	// 5: key names, costs and the usage rollups (rollup.go).
	rollupMigration,
	// 6: each account's latest rate-limit numbers (quota.go).
	quotaMigration,
	// 7: the request log, captured bodies and captures (reqlog.go).
	requestLogMigration,
	// 8: the generation of each stored OAuth chain (state.go).
	credentialGenerationMigration,
	// 9: the model served beside the model asked (served.go).
	servedModelMigration,
}

// Open opens (creating when needed) the database at path, in WAL mode, runs
// the migrations and makes the file private (it holds OAuth tokens).
func Open(path string) (*DB, error) { return openUpTo(path, len(migrations)) }

// openUpTo is Open running only the first n migrations (n < len(migrations)
// writes an older schema, for comparisons).
func openUpTo(path string, n int) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	// Opening the file first gives a clear reason ("read-only file system",
	// "permission denied") where SQLite would only say it cannot open it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database %s for writing: %w", path, err)
	}
	f.Close()
	dsn := serveDSN(path)
	sdb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(4)
	db := &DB{path: path, dsn: dsn}
	db.sqlp.Store(sdb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.migrate(ctx, n); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			_ = os.Chmod(p, 0o600)
		}
	}
	return db, nil
}

// OpenServe opens the relay's database. When it cannot be opened for
// writing (a read-only or full file system, a directory it may not write),
// the relay must still serve: OpenServe then returns a degraded DB that
// reads what it can (the existing file, read-only, so sessions and rotated
// credentials still load) together with the reason. Writes fail until
// TryWritable succeeds; the usage recorder keeps records queued and calls
// it before each retry.
func OpenServe(path string) (*DB, error) {
	db, err := Open(path)
	if err == nil {
		return db, nil
	}
	deg := &DB{path: path, dsn: serveDSN(path)}
	deg.degraded.Store(true)
	deg.sqlp.Store(readableHandle(path))
	return deg, err
}

// readableHandle opens path for reading however the file system allows. A
// WAL database needs its -shm file, which a read-only file system cannot
// create; there the file is opened as immutable (nobody can change it
// while the file system stays read-only). When nothing can be read, the
// handle's every call fails.
func readableHandle(path string) *sql.DB {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	for _, q := range []string{"?mode=ro&_busy_timeout=5000", "?mode=ro&immutable=1"} {
		sdb, err := sql.Open("sqlite3", u.String()+q)
		if err != nil {
			continue
		}
		var n int
		if err := sdb.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&n); err == nil {
			return sdb
		}
		sdb.Close()
	}
	sdb, _ := sql.Open("sqlite3", u.String()+"?mode=ro")
	return sdb
}

// Degraded reports whether the database is open without write access (see
// OpenServe).
func (db *DB) Degraded() bool { return db.degraded.Load() }

// TryWritable reopens a degraded database for writing (creating and
// migrating it as Open does). It reports whether the database is writable
// now.
func (db *DB) TryWritable() (bool, error) {
	if !db.degraded.Load() {
		return true, nil
	}
	fresh, err := Open(db.path)
	if err != nil {
		return false, err
	}
	old := db.sqlp.Swap(fresh.conn())
	db.degraded.Store(false)
	old.Close()
	return true, nil
}

// serveDSN is the writable handle's DSN. _auto_vacuum takes effect on a new
// file (set before its first table) and is a no-op on an existing one, which
// only a VACUUM switches (see EnableIncrementalVacuum).
func serveDSN(path string) string {
	// The path is a URI component: escape it so '#', '?' or '%' in a file
	// name cannot open a different file.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?_auto_vacuum=incremental&_journal_mode=WAL&_busy_timeout=5000&_synchronous=NORMAL&_foreign_keys=on&_txlock=immediate"
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Close closes the database.
func (db *DB) Close() error { return db.conn().Close() }

func (db *DB) conn() *sql.DB { return db.sqlp.Load() }

// RecreateIfDeleted checks that the database file still exists. When it was
// deleted while the relay runs (SQLite would keep writing to the unlinked
// file, and everything written would vanish at the next start), it creates a
// new file at the same path, migrates it and switches to it. It reports
// whether it did.
func (db *DB) RecreateIfDeleted(ctx context.Context) (bool, error) {
	if db.dsn == "" || db.degraded.Load() {
		return false, nil
	}
	if _, err := os.Stat(db.path); !errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if dir := filepath.Dir(db.path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
	}
	if f, err := os.OpenFile(db.path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	sdb, err := sql.Open("sqlite3", db.dsn)
	if err != nil {
		return false, err
	}
	sdb.SetMaxOpenConns(4)
	fresh := &DB{path: db.path, dsn: db.dsn}
	fresh.sqlp.Store(sdb)
	if err := fresh.migrate(ctx, len(migrations)); err != nil {
		sdb.Close()
		return false, fmt.Errorf("migrate recreated database: %w", err)
	}
	old := db.sqlp.Swap(sdb)
	old.Close()
	return true, nil
}

func (db *DB) migrate(ctx context.Context, upTo int) error {
	if _, err := db.conn().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at DATETIME DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		return err
	}
	for i, m := range migrations[:upTo] {
		id := i + 1
		var n int
		if err := db.conn().QueryRowContext(ctx, `SELECT COUNT(*) FROM _migrations WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		tx, err := db.conn().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO _migrations (id) VALUES (?)`, id); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoRow is returned when a looked-up row does not exist.
var ErrNoRow = errors.New("not found")
