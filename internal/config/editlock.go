package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockForEdit takes the exclusive edit lock of the config file at path and
// returns the function that releases it. Edits replace the file by rename,
// so the lock cannot be on the file itself (a second process would open the
// new file and lock that): it is on a companion file, ".<name>.lock" next to
// the file (next to its target when path is a symbolic link), mode 0600,
// which exists only while an edit runs. The holder removes it before
// unlocking, so a process that was waiting on the removed file finds, once
// it holds the lock, that the path no longer names its file, and starts
// over on the current one.
//
// The lock is advisory (flock on Unix) and taken by every ccrelay edit of the
// config (login, and anything else built on AppendAccount and
// SetAccountFields), so two of them at once both land instead of the second
// write dropping the first one's account. Where flock is not available the
// lock is a no-op.
func lockForEdit(path string) (unlock func(), err error) {
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	lockPath := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".lock")
	for {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock %s for editing: %w", path, err)
		}
		if err := lockFile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s for editing: %w", path, err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(lockPath)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return func() {
				_ = os.Remove(lockPath)
				_ = unlockFile(f)
				_ = f.Close()
			}, nil
		}
		// The previous holder removed this file while we waited for it.
		_ = unlockFile(f)
		_ = f.Close()
	}
}
