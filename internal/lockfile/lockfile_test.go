package lockfile

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockIsExclusive(t *testing.T) {
	l := &Locker{Dir: t.TempDir()}
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := l.Lock(context.Background(), "acct")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > maxInside.Load() {
				maxInside.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders at once", maxInside.Load())
	}
}

func TestLockHonoursContext(t *testing.T) {
	l := &Locker{Dir: t.TempDir()}
	unlock, err := l.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "a"); err == nil {
		t.Fatal("second lock acquired while held")
	}
	// Another account is independent.
	u2, err := l.Lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

// A lock directory that cannot be created (here: its parent is a file)
// moves the lock to a fallback every process computes the same way, and the
// lock stays exclusive there.
func TestLockFallsBackWhenItsDirectoryIsUnusable(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := &Locker{Dir: filepath.Join(parent, "relay.db.locks")}
	unlock, err := l.Lock(context.Background(), "acct")
	if err != nil {
		t.Fatalf("no lock when the lock directory is unusable: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	other := &Locker{Dir: l.Dir}
	if _, err := other.Lock(ctx, "acct"); err == nil {
		t.Fatal("a second locker took the same fallback lock")
	}
	unlock()
	again, err := other.Lock(context.Background(), "acct")
	if err != nil {
		t.Fatal(err)
	}
	again()
}
