package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// Sessions returns the bindings that have not expired at now.
func (db *DB) Sessions(ctx context.Context, now time.Time) ([]state.Binding, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT session_hash, account_id, expires_at_ms FROM sticky_sessions WHERE expires_at_ms > ? ORDER BY expires_at_ms`, ms(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []state.Binding
	for rows.Next() {
		var b state.Binding
		var exp int64
		if err := rows.Scan(&b.Key, &b.AccountID, &exp); err != nil {
			db.skipped.Add(1) // a damaged row: skip it, keep the rest
			continue
		}
		b.ExpiresAt = fromMS(exp)
		out = append(out, b)
	}
	return out, rows.Err()
}

// SaveSession upserts a binding.
func (db *DB) SaveSession(ctx context.Context, b state.Binding) error {
	_, err := db.conn().ExecContext(ctx, `INSERT INTO sticky_sessions (session_hash, account_id, expires_at_ms) VALUES (?, ?, ?)
		ON CONFLICT(session_hash) DO UPDATE SET account_id = excluded.account_id, expires_at_ms = excluded.expires_at_ms`, b.Key, b.AccountID, ms(b.ExpiresAt))
	return err
}

// DeleteSessions removes bindings: the one with key, or all of accountID's,
// or (both empty) every binding. It returns how many went.
func (db *DB) DeleteSessions(ctx context.Context, key, accountID string) (int64, error) {
	var res sql.Result
	var err error
	switch {
	case key != "":
		res, err = db.conn().ExecContext(ctx, `DELETE FROM sticky_sessions WHERE session_hash = ?`, key)
	case accountID != "":
		res, err = db.conn().ExecContext(ctx, `DELETE FROM sticky_sessions WHERE account_id = ?`, accountID)
	default:
		res, err = db.conn().ExecContext(ctx, `DELETE FROM sticky_sessions`)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PruneSessions deletes expired bindings.
func (db *DB) PruneSessions(ctx context.Context, now time.Time) error {
	_, err := db.conn().ExecContext(ctx, `DELETE FROM sticky_sessions WHERE expires_at_ms <= ?`, ms(now))
	return err
}

// Cooldowns returns the cooldowns still in force at now.
func (db *DB) Cooldowns(ctx context.Context, now time.Time) ([]state.Cooldown, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT account_id, model, kind, reason, until_ms FROM cooldowns WHERE until_ms > ? ORDER BY account_id, model`, ms(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []state.Cooldown
	for rows.Next() {
		var c state.Cooldown
		var until int64
		if err := rows.Scan(&c.AccountID, &c.Model, &c.Kind, &c.Reason, &until); err != nil {
			db.skipped.Add(1) // a damaged row: skip it, keep the rest
			continue
		}
		c.Until = fromMS(until)
		out = append(out, c)
	}
	return out, rows.Err()
}

// SaveCooldown upserts a cooldown.
func (db *DB) SaveCooldown(ctx context.Context, c state.Cooldown) error {
	_, err := db.conn().ExecContext(ctx, `INSERT INTO cooldowns (account_id, model, kind, reason, until_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(account_id, model) DO UPDATE SET kind = excluded.kind, reason = excluded.reason, until_ms = excluded.until_ms`,
		c.AccountID, c.Model, c.Kind, c.Reason, ms(c.Until))
	return err
}

// DeleteCooldowns clears an account's cooldowns (all models).
func (db *DB) DeleteCooldowns(ctx context.Context, accountID string) (int64, error) {
	res, err := db.conn().ExecContext(ctx, `DELETE FROM cooldowns WHERE account_id = ?`, accountID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteCooldown clears one (account, model) cooldown.
func (db *DB) DeleteCooldown(ctx context.Context, accountID, model string) error {
	_, err := db.conn().ExecContext(ctx, `DELETE FROM cooldowns WHERE account_id = ? AND model = ?`, accountID, model)
	return err
}

// credentialGenerationMigration adds the chain generation to credentials
// (state.Credential.Generation); rows written before it are generation 0.
const credentialGenerationMigration = `ALTER TABLE credentials ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;`

// Credential returns the stored credential of an account, or ErrNoRow.
func (db *DB) Credential(ctx context.Context, accountID string) (state.Credential, error) {
	var c state.Credential
	var exp, upd int64
	err := db.conn().QueryRowContext(ctx, `SELECT account_id, refresh_token, access_token, expires_at_ms, origin_hash, updated_at_ms, generation FROM credentials WHERE account_id = ?`, accountID).
		Scan(&c.AccountID, &c.RefreshToken, &c.AccessToken, &exp, &c.OriginHash, &upd, &c.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNoRow
	}
	c.ExpiresAt, c.UpdatedAt = fromMS(exp), fromMS(upd)
	return c, err
}

// SaveCredential durably upserts an account's credential: when it returns
// nil the row survives an OS crash or a power loss, not only a crash of the
// process. The database runs synchronous=NORMAL in WAL mode, where the last
// commits may roll back after a power loss; that is fine for usage and
// state, but a rotated refresh token is "saved before use" only once it is
// on the disk, so this write runs with synchronous=FULL (the WAL is synced at
// its commit). See durably.
//
// The upsert is conditional: a stored credential of a higher generation (a
// newer login's chain) is kept, and state.ErrSuperseded returned.
func (db *DB) SaveCredential(ctx context.Context, c state.Credential) error {
	return db.durably(ctx, func(conn *sql.Conn) error {
		res, err := conn.ExecContext(ctx, `INSERT INTO credentials (account_id, refresh_token, access_token, expires_at_ms, origin_hash, updated_at_ms, generation) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(account_id) DO UPDATE SET refresh_token = excluded.refresh_token, access_token = excluded.access_token,
		expires_at_ms = excluded.expires_at_ms, origin_hash = excluded.origin_hash, updated_at_ms = excluded.updated_at_ms, generation = excluded.generation
		WHERE credentials.generation <= excluded.generation`,
			c.AccountID, c.RefreshToken, c.AccessToken, ms(c.ExpiresAt), c.OriginHash, ms(c.UpdatedAt), c.Generation)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return state.ErrSuperseded
		}
		return nil
	})
}

// durably runs write on one connection pinned for it with
// synchronous=FULL, then sets the connection back to NORMAL before it returns
// to the pool (PRAGMA synchronous is per connection). A connection that
// cannot be set back is discarded rather than left FULL, so the usage
// writer's commits keep their cost. The whole database at FULL would sync
// the WAL at every usage batch and state change; only credentials need it.
func (db *DB) durably(ctx context.Context, write func(*sql.Conn) error) error {
	conn, err := db.conn().Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return fmt.Errorf("make the write durable (synchronous=FULL): %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, `PRAGMA synchronous = NORMAL`); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if db.durableHook != nil {
		db.durableHook(conn)
	}
	return write(conn)
}

// ProjectID returns the cached Code Assist project of a gemini account ("" if none).
func (db *DB) ProjectID(ctx context.Context, accountID string) (string, error) {
	var p string
	err := db.conn().QueryRowContext(ctx, `SELECT project_id FROM account_meta WHERE account_id = ?`, accountID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return p, err
}

// SaveProjectID caches a gemini account's Code Assist project.
func (db *DB) SaveProjectID(ctx context.Context, accountID, project string) error {
	_, err := db.conn().ExecContext(ctx, `INSERT INTO account_meta (account_id, project_id) VALUES (?, ?)
		ON CONFLICT(account_id) DO UPDATE SET project_id = excluded.project_id`, accountID, project)
	return err
}

// LastUsed returns every account's last use time.
func (db *DB) LastUsed(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT account_id, last_used_ms FROM account_meta WHERE last_used_ms > 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = fromMS(v)
	}
	return out, rows.Err()
}

// SaveLastUsed records an account's last use time.
func (db *DB) SaveLastUsed(ctx context.Context, accountID string, t time.Time) error {
	_, err := db.conn().ExecContext(ctx, `INSERT INTO account_meta (account_id, last_used_ms) VALUES (?, ?)
		ON CONFLICT(account_id) DO UPDATE SET last_used_ms = MAX(last_used_ms, excluded.last_used_ms)`, accountID, ms(t))
	return err
}

// SkippedRows reports (and resets) how many damaged state rows reads skipped.
func (db *DB) SkippedRows() int64 { return db.skipped.Swap(0) }
