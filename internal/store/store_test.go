package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/testutil"
	"github.com/ccrelay/ccrelay/internal/usage"
)

type syncBuf = testutil.SyncBuffer

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "relay.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// A real database file is created, private, migrated; a cgo-less build would fail here.
func TestOpenCreatesPrivateDatabase(t *testing.T) {
	db, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	db.Close()
	db2, err := Open(path) // migrations are idempotent
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
}

func TestStateRoundTrip(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	db.SaveSession(ctx, state.Binding{Key: "k1", AccountID: "a", ExpiresAt: now.Add(time.Hour)})
	db.SaveSession(ctx, state.Binding{Key: "old", AccountID: "a", ExpiresAt: now.Add(-time.Hour)})
	db.SaveSession(ctx, state.Binding{Key: "k1", AccountID: "b", ExpiresAt: now.Add(2 * time.Hour)})
	ss, err := db.Sessions(ctx, now)
	if err != nil || len(ss) != 1 || ss[0].AccountID != "b" {
		t.Fatalf("%+v %v", ss, err)
	}
	db.SaveCooldown(ctx, state.Cooldown{AccountID: "a", Model: "opus", Kind: "quota_exhausted", Until: now.Add(time.Hour)})
	db.SaveCooldown(ctx, state.Cooldown{AccountID: "a", Kind: "rate_limited", Until: now.Add(time.Minute)})
	cs, _ := db.Cooldowns(ctx, now)
	if len(cs) != 2 {
		t.Fatalf("%+v", cs)
	}
	if n, _ := db.DeleteCooldowns(ctx, "a"); n != 2 {
		t.Fatal("delete cooldowns")
	}
	// A damaged row is skipped, the rest load.
	db.conn().Exec(`INSERT INTO sticky_sessions (session_hash, account_id, expires_at_ms) VALUES ('bad', 'a', 'not-a-number')`)
	ss, err = db.Sessions(ctx, time.Time{})
	if err != nil || db.SkippedRows() == 0 {
		t.Fatalf("damaged row: %v %+v", err, ss)
	}
	if _, err := db.Credential(ctx, "none"); err != ErrNoRow {
		t.Fatal(err)
	}
}

// The database locked by another process: requests go on (Record never
// blocks), the failure is logged once, records wait in memory and are written
// when the database is back.
func TestRecorderSurvivesLockedDatabase(t *testing.T) {
	db, path := openTemp(t)
	logs := &syncBuf{}
	rec := NewRecorder(db, slog.New(slog.NewTextHandler(logs, nil)))
	rec.RetryEvery = 100 * time.Millisecond

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, _ := other.Conn(context.Background())
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 500; i++ {
		rec.Record(usage.Record{Time: time.Now(), AccountID: "a", Usage: provider.Usage{InputTokens: 1}, Status: 200})
	}
	if time.Since(start) > time.Second {
		t.Fatal("Record blocked on the locked database")
	}
	deadline := time.Now().Add(15 * time.Second)
	for rec.Healthy() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rec.Healthy() {
		t.Fatal("recorder never noticed the lock")
	}
	time.Sleep(300 * time.Millisecond) // several retries
	conn.ExecContext(context.Background(), "ROLLBACK")
	conn.Close()
	for rec.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rows, _ := db.UsageRows(context.Background(), time.Time{})
	if len(rows) != 500 {
		t.Fatalf("%d rows written, want 500", len(rows))
	}
	if n := strings.Count(logs.String(), "usage database write failed"); n != 1 {
		t.Fatalf("failure logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "writable again") {
		t.Fatal("recovery not logged")
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRecorderFlushOnClose(t *testing.T) {
	db, _ := openTemp(t)
	rec := NewRecorder(db, slog.New(slog.DiscardHandler))
	for i := 0; i < 2000; i++ {
		rec.Record(usage.Record{Time: time.Now(), AccountID: "a", Status: 200})
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := db.UsageRows(context.Background(), time.Time{})
	if len(rows) != 2000 {
		t.Fatalf("%d rows", len(rows))
	}
}

// Records that arrive a few milliseconds apart share one transaction: the
// writer lingers after the first before it writes.
func TestRecorderBatchesRecordsThatArriveTogether(t *testing.T) {
	db, _ := openTemp(t)
	rec := NewRecorder(db, slog.New(slog.DiscardHandler))
	rec.Linger = time.Second
	for range 10 {
		rec.Record(usage.Record{Time: time.Now(), AccountID: "a", Status: 200})
		time.Sleep(5 * time.Millisecond)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := db.UsageRows(context.Background(), time.Time{})
	if len(rows) != 10 {
		t.Fatalf("%d rows, want 10", len(rows))
	}
	if n := rec.Batches(); n != 1 {
		t.Fatalf("10 records 5 ms apart took %d transactions, want 1", n)
	}
}

// The queue's array is reused once emptied: records written in many
// flushes, some queued while a flush runs, each land exactly once and
// intact.
func TestRecorderReusedQueueKeepsEveryRecord(t *testing.T) {
	db, _ := openTemp(t)
	rec := NewRecorder(db, slog.New(slog.DiscardHandler))
	rec.Linger, rec.BatchSize = time.Millisecond, 7
	const waves, per = 6, 40
	var wg sync.WaitGroup
	for w := range waves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				rec.Record(usage.Record{Time: time.Now(), RequestID: fmt.Sprintf("w%d-%d", w, i), AccountID: "a", Status: 200})
				if i%9 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		if w%2 == 1 {
			wg.Wait() // let the queue drain and start over in its array
			for deadline := time.Now().Add(5 * time.Second); rec.Pending() > 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
	}
	wg.Wait()
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := db.UsageRows(context.Background(), time.Time{})
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.RequestID]++
	}
	for w := range waves {
		for i := range per {
			if id := fmt.Sprintf("w%d-%d", w, i); seen[id] != 1 {
				t.Errorf("record %s written %d times", id, seen[id])
			}
		}
	}
	if len(rows) != waves*per {
		t.Fatalf("%d rows, want %d", len(rows), waves*per)
	}
}

func TestOpenOddFileName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay#1?x=%41.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the named path: %v", err)
	}
}

// The database file deleted while the relay runs: a new one is created at
// the same path and usage recorded afterwards lands in it.
func TestRecorderRecreatesDeletedDatabase(t *testing.T) {
	db, path := openTemp(t)
	logs := &syncBuf{}
	rec := newRecorder(db, slog.New(slog.NewTextHandler(logs, nil)), 50*time.Millisecond, time.Hour)
	defer rec.Close(context.Background())
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "was deleted") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not recreated: %v\n%s", err, logs.String())
	}
	rec.Record(usage.Record{Time: time.Now(), AccountID: "after", Status: 200})
	for rec.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	other, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rows, _ := other.UsageRows(context.Background(), time.Time{})
	if len(rows) != 1 || rows[0].AccountID != "after" {
		t.Fatalf("rows in the new file: %+v", rows)
	}
}

// A damaged database file does not stop the relay: OpenServe returns a
// degraded database and the reason; once the operator moves the file away,
// TryWritable creates a new one and writing works.
func TestOpenServeDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenServe(path)
	if err == nil || db == nil || !db.Degraded() {
		t.Fatalf("OpenServe on a damaged file: db=%v degraded=%v err=%v", db != nil, db != nil && db.Degraded(), err)
	}
	defer db.Close()
	if err := db.InsertUsage(context.Background(), []usage.Record{{Time: time.Now(), AccountID: "a", Status: 200}}); err == nil {
		t.Fatal("a write to a damaged database succeeded")
	}
	if ok, _ := db.TryWritable(); ok {
		t.Fatal("TryWritable succeeded on the damaged file")
	}
	if err := os.Rename(path, path+".damaged"); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.TryWritable(); !ok {
		t.Fatalf("TryWritable after the file was moved away: %v", err)
	}
	if db.Degraded() {
		t.Fatal("still degraded")
	}
	if err := db.InsertUsage(context.Background(), []usage.Record{{Time: time.Now(), AccountID: "a", Status: 200}}); err != nil {
		t.Fatal(err)
	}
}

// A rotated refresh token must survive a power loss once saved: the
// credential write runs with synchronous=FULL (the database otherwise runs
// NORMAL, where the last WAL commits may roll back after an OS crash), and
// the connection goes back to the pool at NORMAL.
func TestSaveCredentialIsDurable(t *testing.T) {
	db, _ := openTemp(t)
	db.conn().SetMaxOpenConns(1) // one connection: the one the write used is the one checked after
	syncOf := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		t.Helper()
		var mode int
		if err := q.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return mode
	}
	const normal, full = 1, 2
	if m := syncOf(db.conn()); m != normal {
		t.Fatalf("database opened with synchronous=%d, want NORMAL (1)", m)
	}
	var during []int
	db.durableHook = func(c *sql.Conn) { during = append(during, syncOf(c)) }
	cred := state.Credential{AccountID: "a", RefreshToken: "rt-2", AccessToken: "at-2", ExpiresAt: time.Now().Add(time.Hour), UpdatedAt: time.Now()}
	if err := db.SaveCredential(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 || during[0] != full {
		t.Fatalf("credential written with synchronous=%v, want FULL (2)", during)
	}
	if m := syncOf(db.conn()); m != normal {
		t.Fatalf("the connection went back to the pool with synchronous=%d, want NORMAL (1)", m)
	}
	if got, err := db.Credential(context.Background(), "a"); err != nil || got.RefreshToken != "rt-2" {
		t.Fatalf("read back %+v, %v", got, err)
	}
}

// TestSaveCredentialKeepsANewerGeneration: the save is conditional on the
// chain's generation, so a request still refreshing an old chain cannot
// overwrite a newer login's (issue #31 item 13); the same or a newer
// generation replaces the row.
func TestSaveCredentialKeepsANewerGeneration(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	save := func(rt string, gen int64) error {
		return db.SaveCredential(ctx, state.Credential{AccountID: "a", RefreshToken: rt, OriginHash: rt + "-origin", UpdatedAt: time.UnixMilli(gen), Generation: gen})
	}
	for _, step := range []struct {
		rt     string
		gen    int64
		err    error
		stored string
	}{
		{"old-1", 100, nil, "old-1"},
		{"old-2", 100, nil, "old-2"}, // a refresh of the same chain
		{"new-1", 200, nil, "new-1"}, // a new login
		{"old-3", 100, state.ErrSuperseded, "new-1"},
		{"new-2", 200, nil, "new-2"},
	} {
		if err := save(step.rt, step.gen); err != step.err {
			t.Fatalf("save %s gen %d: %v, want %v", step.rt, step.gen, err, step.err)
		}
		c, err := db.Credential(ctx, "a")
		if err != nil || c.RefreshToken != step.stored {
			t.Fatalf("after %s: stored %+v %v, want %s", step.rt, c, err, step.stored)
		}
	}
	if c, _ := db.Credential(ctx, "a"); c.Generation != 200 || c.OriginHash != "new-2-origin" {
		t.Fatalf("stored %+v", c)
	}
}
