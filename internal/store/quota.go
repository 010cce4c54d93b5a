package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// quotaMigration adds the table of each account's latest rate-limit numbers.
const quotaMigration = `CREATE TABLE IF NOT EXISTS account_quota (
		account_id TEXT PRIMARY KEY,
		seen_at_ms INTEGER NOT NULL,
		snapshot TEXT NOT NULL
	);`

// SaveQuota stores an account's latest quota snapshot unless a newer one is
// stored (two relays on one database).
func (db *DB) SaveQuota(ctx context.Context, accountID string, s quota.Snapshot) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode quota of %q: %w", accountID, err)
	}
	_, err = db.conn().ExecContext(ctx, `INSERT INTO account_quota (account_id, seen_at_ms, snapshot) VALUES (?, ?, ?)
		ON CONFLICT(account_id) DO UPDATE SET seen_at_ms = excluded.seen_at_ms, snapshot = excluded.snapshot
		WHERE excluded.seen_at_ms >= account_quota.seen_at_ms`, accountID, ms(s.SeenAt), string(b))
	return err
}

// Quotas returns every account's latest quota snapshot. Damaged rows are skipped.
func (db *DB) Quotas(ctx context.Context) (map[string]quota.Snapshot, error) {
	rows, err := db.conn().QueryContext(ctx, `SELECT account_id, snapshot FROM account_quota`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]quota.Snapshot{}
	for rows.Next() {
		var id, v string
		var s quota.Snapshot
		if err := rows.Scan(&id, &v); err != nil || json.Unmarshal([]byte(v), &s) != nil || s.SeenAt.IsZero() {
			db.skipped.Add(1)
			continue
		}
		out[id] = s
	}
	return out, rows.Err()
}
