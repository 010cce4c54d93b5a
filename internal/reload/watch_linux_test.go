//go:build linux

package reload

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A database written next to the config file does not wake the watch: the
// kernel is not asked for plain writes, so hundreds of writes (alternating
// between two files, which the kernel could not merge) deliver no event.
func TestWatchIsNotWokenByWritesToOtherFiles(t *testing.T) {
	dir, path, w := watchConfigDir(t)
	var files []*os.File
	for _, n := range []string{"relay.db", "relay.db-wal"} { // an event each: created
		f, err := os.Create(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	for i := range 400 {
		if _, err := files[i%2].Write([]byte("page")); err != nil {
			t.Fatal(err)
		}
	}
	// The config saved in place: its notice comes after any event about
	// the writes above (the kernel keeps them in order).
	if err := os.WriteFile(path, []byte("a = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatal("the config's save was not seen")
	}
	if n := w.events.Load(); n != 3 {
		t.Fatalf("%d events delivered for two database files created, 400 writes to them and one config save; want 3", n)
	}
}
