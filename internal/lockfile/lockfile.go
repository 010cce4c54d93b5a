// Package lockfile serialises OAuth refreshes of one account across the
// processes of one machine (a running `ccrelay serve`, `ccrelay accounts
// test`, a second relay on the same database) with flock(2) on a file per
// account. Claude refresh tokens are single-use: two processes refreshing at
// once would burn the account's token chain.
package lockfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Locker takes per-account exclusive locks in Dir.
type Locker struct {
	Dir string
}

// ForDatabase returns a Locker keeping its files next to the database.
func ForDatabase(dbPath string) *Locker {
	return &Locker{Dir: dbPath + ".locks"}
}

// Lock blocks until the account's lock is held or ctx ends.
func (l *Locker) Lock(ctx context.Context, accountID string) (func(), error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	sum := sha256.Sum256([]byte(accountID))
	path := filepath.Join(l.Dir, hex.EncodeToString(sum[:8])+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	wait := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}
