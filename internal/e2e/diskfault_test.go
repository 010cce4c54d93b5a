package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/testutil"
)

// post sends one Messages request in session and returns the status and body.
func postSession(t *testing.T, r *relayUT, session, model string) (int, string) {
	t.Helper()
	body := `{"model":"` + model + `","max_tokens":1,"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"` + session + `\"}"},"messages":[{"role":"user","content":"hi"}]}`
	resp, err := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func healthField(t *testing.T, r *relayUT, field string) any {
	t.Helper()
	resp, err := http.Get(r.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m[field]
}

// The disk fills up under a running relay: requests keep being served, the
// failure is logged once, usage waits in memory and is all written once
// space comes back.
func TestDiskFullWhileServing(t *testing.T) {
	dir := testutil.Tmpfs(t, "2m")
	if dir == "" {
		return
	}
	p := newPool(t)
	r := startRelayAt(t, p.config(), filepath.Join(dir, "relay.db"))
	if code, body := postSession(t, r, "before", "m"); code != 200 {
		t.Fatalf("before the disk filled: %d %s", code, body)
	}
	r.usageRows(1)

	filler := testutil.FillDisk(t, dir)
	// Long model names (the longest accepted, 256 bytes) make each usage
	// row larger, so the writes need space the file system no longer has.
	model := "claude-" + strings.Repeat("x", 249)
	const n = 150
	for i := range n {
		if code, body := postSession(t, r, "full-"+string(rune('a'+i%26)), model); code != 200 {
			t.Fatalf("request %d on a full disk: %d %s", i, code, body)
		}
	}
	waitFor(t, 5*time.Second, "the usage write to fail", func() bool { return strings.Contains(r.Logs.String(), "usage database write failed") })
	if r.App.Recorder.Pending() == 0 {
		t.Fatal("no usage queued while the disk is full")
	}
	if got := healthField(t, r, "database"); got != "failing" {
		t.Fatalf("/health database = %v while the disk is full", got)
	}
	time.Sleep(2500 * time.Millisecond) // a few more failed retries
	if c := strings.Count(r.Logs.String(), "usage database write failed"); c != 1 {
		t.Fatalf("the write failure was logged %d times, want once", c)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	rows := r.usageRows(1 + n)
	if len(rows) != 1+n {
		t.Fatalf("%d usage rows after the disk recovered, want %d", len(rows), 1+n)
	}
	if !strings.Contains(r.Logs.String(), "usage database writable again") {
		t.Fatal("the recovery was not logged")
	}
	if got := healthField(t, r, "database"); got != "ok" {
		t.Fatalf("/health database = %v after recovery", got)
	}
}

// The database's file system is read-only when the relay starts: it starts
// anyway, reads the saved sessions from the file, serves, keeps usage in
// memory, logs once, and writes everything when the file system is
// writable again.
func TestReadOnlyDatabaseAtStart(t *testing.T) {
	dir := testutil.Tmpfs(t, "4m")
	if dir == "" {
		return
	}
	p := newPool(t)
	dbPath := filepath.Join(dir, "relay.db")
	// A saved session bound to the lowest-priority account: only the saved
	// state can send it there.
	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSession(context.Background(), state.Binding{Key: "saved", AccountID: "a2", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	testutil.Remount(t, dir, true)

	r := startRelayAt(t, p.config(), dbPath)
	logs := r.Logs.String()
	if c := strings.Count(logs, "the database cannot be written; serving anyway"); c != 1 {
		t.Fatalf("start-up logged the read-only database %d times, want once:\n%s", c, logs)
	}
	if !strings.Contains(logs, "read-only file system") {
		t.Fatalf("the reason is not in the log:\n%s", logs)
	}
	if got := healthField(t, r, "database"); got != "unwritable" {
		t.Fatalf("/health database = %v", got)
	}
	if _, body := postSession(t, r, "saved", "m"); !strings.Contains(body, "answer from 2") {
		t.Fatalf("the saved session was not read from the read-only file: %s", body)
	}
	const n = 20
	for i := range n - 1 {
		if code, body := postSession(t, r, "ro-"+string(rune('a'+i)), "m"); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	waitFor(t, 5*time.Second, "usage to be queued", func() bool { return r.App.Recorder.Pending() == n })
	time.Sleep(2500 * time.Millisecond) // a few more failed retries
	if c := strings.Count(r.Logs.String(), "usage database write failed"); c != 1 {
		t.Fatalf("the write failure was logged %d times, want once", c)
	}

	testutil.Remount(t, dir, false)
	rows := r.usageRows(n)
	if len(rows) != n {
		t.Fatalf("%d usage rows once writable, want %d", len(rows), n)
	}
	if got := healthField(t, r, "database"); got != "ok" {
		t.Fatalf("/health database = %v once writable", got)
	}
	// State changes are saved again too: a new session reaches the file.
	postSession(t, r, "after", "m")
	waitFor(t, 5*time.Second, "the new session to be saved", func() bool {
		other, err := store.OpenReadOnly(dbPath)
		if err != nil {
			return false
		}
		defer other.Close()
		bs, _ := other.Sessions(context.Background(), time.Now())
		for _, b := range bs {
			if b.Key == "after" {
				return true
			}
		}
		return false
	})
}
