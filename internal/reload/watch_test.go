package reload

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Every way a config file changes reaches the watch: an in-place save, an
// atomic rename, a removal, a new file, and Kubernetes' "..data" swap.
// Other entries of the directory do not.
func TestWatchSeesEveryWayTheFileChanges(t *testing.T) {
	dir, path, w := watchConfigDir(t)
	tmp := filepath.Join(dir, ".config.toml.tmp")
	for _, c := range []struct {
		name   string
		change func() error
	}{
		{"written in place", func() error { return os.WriteFile(path, []byte("a = 2\n"), 0o600) }},
		{"replaced by rename", func() error {
			if err := os.WriteFile(tmp, []byte("a = 3\n"), 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}},
		{"removed", func() error { return os.Remove(path) }},
		{"created", func() error { return os.WriteFile(path, []byte("a = 4\n"), 0o600) }},
		{"ConfigMap symlink swapped", func() error {
			if err := os.Symlink("..2026_12_03", filepath.Join(dir, "..data_tmp")); err != nil {
				return err
			}
			return os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
		}},
	} {
		drain(w)
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.C:
		case err := <-w.Errs:
			t.Fatalf("%s: %v", c.name, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no change seen", c.name)
		}
	}
	drain(w)
	// Another file: no notice. A marker change afterwards is seen, and
	// events arrive in order, so nothing about the other file is pending.
	if err := os.WriteFile(filepath.Join(dir, "other.toml"), []byte("x = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("a = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	<-w.C
	select {
	case <-w.C:
		t.Fatal("a second notice: the other file's change reached the watch")
	default:
	}
}

// watchConfigDir writes config.toml in a new directory and watches it as
// Run does.
func watchConfigDir(t *testing.T) (dir, path string, w *dirWatch) {
	dir = t.TempDir()
	path = filepath.Join(dir, "config.toml")
	writeConfig(t, path, "a = 1\n")
	w, err := watchDir(dir, "config.toml", "..data")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return dir, path, w
}

// drain takes a pending notice, if any.
func drain(w *dirWatch) {
	select {
	case <-w.C:
	default:
	}
}
