package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// TestOpenReadOnlyWhileWriting reads a database that another connection keeps
// open and writes to, as `ccrelay stats` does beside a running server.
func TestOpenReadOnlyWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir with space", "relay.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	rec := usage.Record{Time: time.Now(), AccountID: "a", Status: 200}
	if err := w.InsertUsage(ctx, []usage.Record{rec}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := w.InsertUsage(ctx, []usage.Record{rec}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Usage(ctx, UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Requests != 2 {
		t.Fatalf("reader sees %+v, want 2 requests", got)
	}
	if _, err := r.conn().ExecContext(ctx, `DELETE FROM usage_stats`); err == nil {
		t.Fatal("a read-only database accepted a write")
	}
}

func TestOpenReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "relay.db")
	_, err := OpenReadOnly(path)
	if !IsNotExist(err) {
		t.Fatalf("err = %v, want not-exist", err)
	}
	if _, serr := os.Stat(filepath.Dir(path)); !os.IsNotExist(serr) {
		t.Fatal("OpenReadOnly created the directory")
	}
}
