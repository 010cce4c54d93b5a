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
	sum := sha256.Sum256([]byte(accountID))
	name := hex.EncodeToString(sum[:8]) + ".lock"
	f, err := openLockFile(l.Dir, name)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
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

// openLockFile opens dir/name, creating both. flock needs no write access,
// so an existing lock file on a file system that turned read-only still
// serves. When the directory cannot hold one at all (read-only, full), the
// lock moves to a directory under the system's temporary directory named
// after dir: every process that fails the same way meets there, so OAuth
// refreshes stay serialised and keep the relay's accounts alive.
func openLockFile(dir, name string) (*os.File, error) {
	path := filepath.Join(dir, name)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			return f, nil
		}
	}
	if f, rerr := os.Open(path); rerr == nil {
		return f, nil
	}
	sum := sha256.Sum256([]byte(dir))
	alt := filepath.Join(os.TempDir(), "ccrelay-locks-"+hex.EncodeToString(sum[:8]))
	if merr := os.MkdirAll(alt, 0o700); merr != nil {
		return nil, fmt.Errorf("lock directory %s: %w (fallback %s: %v)", dir, err, alt, merr)
	}
	f, aerr := os.OpenFile(filepath.Join(alt, name), os.O_RDWR|os.O_CREATE, 0o600)
	if aerr != nil {
		return nil, fmt.Errorf("open lock file in %s: %w (fallback %s: %v)", dir, err, alt, aerr)
	}
	return f, nil
}
