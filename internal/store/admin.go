package store

import (
	"context"
	"time"
)

// Command is a state change made by the CLI (accounts reset, sessions clear)
// that a running server applies to its in-memory state.
type Command struct {
	ID         int64
	Kind       string // "reset_account" | "clear_sessions"
	AccountID  string
	SessionKey string
}

// adminCommandsMigration adds the table of commands the CLI leaves for a
// running server.
const adminCommandsMigration = `CREATE TABLE IF NOT EXISTS admin_commands (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		kind TEXT NOT NULL,
		account_id TEXT NOT NULL DEFAULT '',
		session_key TEXT NOT NULL DEFAULT '',
		created_ms INTEGER NOT NULL
	);`

// AddCommand queues a command for a running server.
func (db *DB) AddCommand(ctx context.Context, c Command) error {
	_, err := db.conn().ExecContext(ctx, `INSERT INTO admin_commands (kind, account_id, session_key, created_ms) VALUES (?, ?, ?, ?)`,
		c.Kind, c.AccountID, c.SessionKey, time.Now().UnixMilli())
	if err == nil {
		// Old commands are only useful to a server that was running when they were made.
		_, _ = db.conn().ExecContext(ctx, `DELETE FROM admin_commands WHERE created_ms < ?`, time.Now().Add(-24*time.Hour).UnixMilli())
	}
	return err
}

// Commands returns the commands after id, oldest first.
func (db *DB) Commands(ctx context.Context, after int64) ([]Command, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT id, kind, account_id, session_key FROM admin_commands WHERE id > ? ORDER BY id`, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Command
	for rows.Next() {
		var c Command
		if err := rows.Scan(&c.ID, &c.Kind, &c.AccountID, &c.SessionKey); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LastCommandID is the newest command id (0 when none).
func (db *DB) LastCommandID(ctx context.Context) (int64, error) {
	var id int64
	err := db.conn().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM admin_commands`).Scan(&id)
	return id, err
}
