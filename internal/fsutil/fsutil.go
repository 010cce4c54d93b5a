// Package fsutil holds small file-system helpers shared by the packages that
// persist secrets (config edits, rotated OAuth tokens).
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFileAtomic replaces the file at path with data so that readers see
// either the old content or the new content, never a partial write, even if
// the process or the machine dies midway.
//
// The data goes to a temporary file in the same directory (so the final
// rename never crosses a file system), which gets mode perm before any byte is
// written (a secret never sits in a more open file), is fsynced, renamed over
// path, and the directory is fsynced so the rename itself is durable. On any
// error the temporary file is removed and path is left untouched.
//
// If path is a symbolic link, the link's target is replaced and the link is
// kept, so a config file symlinked from a dotfiles repository stays a link.
// The new file is owned by the calling user; perm is applied exactly (the
// umask does not apply).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	target, err := resolveTarget(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(target)

	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
	}()

	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod temporary file for %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temporary file for %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync temporary file for %s: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temporary file for %s: %w", path, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	// The rename has happened: from here on the new content is in place, so
	// a failing directory sync is reported but must not remove anything.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync directory of %s: %w", path, err)
	}
	return nil
}

// resolveTarget follows path when it is a symbolic link, so the rename
// replaces the file the link points to instead of the link itself.
func resolveTarget(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		// A dangling link: create the file it names.
		link, lerr := os.Readlink(path)
		if lerr != nil {
			return "", fmt.Errorf("read link %s: %w", path, lerr)
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		return link, nil
	}
	if err != nil {
		return "", fmt.Errorf("resolve link %s: %w", path, err)
	}
	return target, nil
}

// syncDir makes a completed rename in dir durable. Windows cannot open a
// directory for syncing and does not need it, so it is skipped there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}
