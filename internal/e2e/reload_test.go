package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/fsutil"
	"github.com/ccrelay/ccrelay/internal/logging"
)

// fileRelay is a relay serving from a config file it watches.
type fileRelay struct {
	*relayUT
	Path string
	HUP  chan os.Signal
}

// startFileRelay writes cfg (without [server]) to a config file, then runs
// a relay on it with hot reload on.
func startFileRelay(t *testing.T, cfg string) *fileRelay {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg+serverTable(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	watchSecrets(c, logs)
	a, err := app.Build(c, logging.New(logs, "debug", "text"))
	if err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	a.EnableReload(func() (*config.Config, error) {
		c, err := config.LoadFile(path)
		if err == nil {
			watchSecrets(c, &syncBuffer{})
		}
		return c, err
	}, hup)
	addr, err := a.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relayUT{t: t, App: a, URL: "http://" + addr.String(), Logs: logs, cfg: cfg}
	t.Cleanup(r.Close)
	return &fileRelay{relayUT: r, Path: path, HUP: hup}
}

func serverTable(dir string) string {
	return fmt.Sprintf("\n[server]\nhost = \"127.0.0.1\"\nport = 3000\ndatabase_path = %q\nfirst_byte_timeout_seconds = 5\nidle_timeout_seconds = 5\nresponse_timeout_seconds = 10\n", filepath.Join(dir, "relay.db"))
}

// rewrite replaces the config file atomically (as the config editor does)
// and waits until the relay applied it.
func (r *fileRelay) rewrite(cfg string) {
	r.t.Helper()
	r.rewriteServer(cfg, "")
}

// rewriteServer is rewrite with more lines in [server].
func (r *fileRelay) rewriteServer(cfg, server string) {
	r.t.Helper()
	gen := r.App.Reloader().Status().Generation
	if err := fsutil.WriteFileAtomic(r.Path, []byte(cfg+serverTable(filepath.Dir(r.Path))+server), 0o600); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st := r.App.Reloader().Status(); st.Generation <= gen && !st.Stale; st = r.App.Reloader().Status() {
		if time.Now().After(deadline) {
			// Say whether the file watcher ever started (it needs an
			// inotify instance; the machine's limit is per user).
			var watch []string
			for _, l := range strings.Split(r.Logs.String(), "\n") {
				if strings.Contains(l, "watch") {
					watch = append(watch, l)
				}
			}
			r.t.Fatalf("config not applied within 30s; the relay's watcher lines: %q", watch)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := r.App.Reloader().Status(); st.Stale {
		r.t.Fatalf("reload refused: %s", st.Error)
	}
}

// servedBy asks once and returns the account that served (from the usage
// record's account id carried in the fake's answer text) or an error.
func servedBy(r *relayUT) (string, error) {
	c := r.anthropicClient()
	msg, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5"))
	if err != nil {
		return "", err
	}
	return msg.Content[0].Text, nil
}

// TestLoginWhileServing adds an account with the real config editor (what
// `ccrelay login claude` does) while the relay serves: the new account
// serves within 2 s.
func TestLoginWhileServing(t *testing.T) {
	oldUp := upstream(t, &fakeupstream.Anthropic{Text: "old"})
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	fake, api := oauthUpstream(t, o)
	fake.Text = "new"
	r := startFileRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("old", oldUp.URL, "sk-ant-old-key-1", 100))
	if who, err := servedBy(r.relayUT); err != nil || who != "old" {
		t.Fatalf("before login: %q, %v", who, err)
	}

	// A stream in flight on the old account while the config changes.
	streamDone := make(chan error, 1)
	go func() {
		c := r.anthropicClient()
		s := c.Messages.NewStreaming(context.Background(), newParams("m"))
		for s.Next() {
		}
		streamDone <- s.Err()
	}()

	err := config.AppendAccount(r.Path, []config.Field{
		{Key: "type", Value: "claude-oauth"}, {Key: "id", Value: "max-new"}, {Key: "refresh_token", Value: o.Issue()},
		{Key: "api_url", Value: api}, {Key: "token_url", Value: tokens.URL}, {Key: "priority", Value: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for i := 0; ; i++ {
		// A new conversation each time: an old one stays on its account.
		who, err := askIn(t, r.relayUT, fmt.Sprintf("poll-%d", i))
		if err == nil && who == "new" {
			break
		}
		if time.Since(written) > 2*time.Second {
			t.Fatalf("the new account does not serve 2 s after the config was written (last: %q, %v)\n%s", who, err, r.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-streamDone; err != nil {
		t.Fatalf("stream in flight during the reload: %v", err)
	}
	if !strings.Contains(r.Logs.String(), "config reloaded") {
		t.Fatal("no reload logged")
	}
}

// TestReloadUnderLoad rewrites the config 20 times (an account removed and
// added back, priorities and model names changed) while streams run: every
// request succeeds and every stream is complete.
func TestReloadUnderLoad(t *testing.T) {
	a := upstream(t, &fakeupstream.Anthropic{Text: "abcdefghij", StreamEvents: 10, EventGap: 2 * time.Millisecond})
	b := upstream(t, &fakeupstream.Anthropic{Text: "abcdefghij", StreamEvents: 10, EventGap: 2 * time.Millisecond})
	head := `api_keys = ["` + relayKey + `"]` + "\n"
	base := head + claudeAPIAccount("a", a.URL, "sk-ant-a-key-1", 100) + claudeAPIAccount("b", b.URL, "sk-ant-b-key-1", 100)
	r := startFileRelay(t, base)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.anthropicClient()
			for ctx.Err() == nil {
				s := c.Messages.NewStreaming(context.Background(), newParams("m"))
				var msg anthropic.Message
				for s.Next() {
					_ = msg.Accumulate(s.Current())
				}
				if err := s.Err(); err != nil || len(msg.Content) == 0 || msg.Content[0].Text != "abcdefghij" || msg.StopReason != "end_turn" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err=%v content=%+v", err, msg.Content))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	variants := []string{
		head + claudeAPIAccount("a", a.URL, "sk-ant-a-key-1", 100),
		base,
		head + claudeAPIAccount("a", a.URL, "sk-ant-a-key-1", 50) + claudeAPIAccount("b", b.URL, "sk-ant-b-key-1", 100),
		head + claudeAPIAccount("b", b.URL, "sk-ant-b-key-1", 100) + claudeAPIAccount("a", a.URL, "sk-ant-a-key-1", 100) + "\n[models]\n\"gpt-4o\" = \"claude-sonnet-4-5\"\n",
	}
	for i := 0; i < 20; i++ {
		before := ok.Load()
		r.rewrite(variants[i%len(variants)])
		// Let some streams straddle the change before the next one.
		waitFor(t, 10*time.Second, "streams after a reload", func() bool { return ok.Load() >= before+3 })
	}
	stop()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d streams failed across 20 reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if g := r.App.Reloader().Status().Generation; g != 21 {
		t.Fatalf("generation %d after 20 changes, want 21", g)
	}
	t.Logf("%d streams, 0 failed, across 20 reloads", ok.Load())
}

// TestInvalidConfigKeepsServing: a config that does not validate is not
// applied; /health says the config is stale, and only the admin API's
// health says why (the file, the line and the problem: issue 31 item 12,
// /health needs no key); the old one keeps serving, and a fixed file clears
// it. A setting that cannot change live is logged as needing a restart.
func TestInvalidConfigKeepsServing(t *testing.T) {
	up := upstream(t, &fakeupstream.Anthropic{Text: "fine"})
	good := `api_keys = ["` + relayKey + `"]` + "\n" + `admin_keys = ["` + e2eAdminKey + `"]` + "\n" + claudeAPIAccount("a", up.URL, "sk-ant-a-key-1", 100)
	r := startFileRelay(t, good)
	gen := r.App.Reloader().Status().Generation
	bad := good + "[[accounts]]\ntype = \"claude-bogus\"\nid = \"x\"\n"
	if err := fsutil.WriteFileAtomic(r.Path, []byte(bad+serverTable(filepath.Dir(r.Path))), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "stale config", func() bool { return r.App.Reloader().Status().Stale })
	if who, err := servedBy(r.relayUT); err != nil || who != "fine" {
		t.Fatalf("old config stopped serving: %q %v", who, err)
	}
	if s, _ := healthField(t, r.relayUT, "config").(string); s != "stale" {
		t.Fatalf("health config = %q, want stale", s)
	}
	resp, err := http.Get(r.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	public, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(public), "config_error") || strings.Contains(string(public), "line 10") ||
		strings.Contains(string(public), "claude-bogus") || strings.Contains(string(public), filepath.Base(r.Path)) {
		t.Fatalf("/health (no key) shows the config's detail: %s", public)
	}
	var h admin.Health
	if code, body := adminCall(t, r.relayUT, "GET", "health", "", &h); code != http.StatusOK || h.Config == nil || !h.Config.Stale ||
		!strings.Contains(h.Config.Reason, "line 10") || !strings.Contains(h.Config.Reason, "claude-bogus") {
		t.Fatalf("admin health: %d %s, want the line and the problem", code, body)
	}
	if !strings.Contains(r.Logs.String(), "config reload refused") || !strings.Contains(r.Logs.String(), "line=10") {
		t.Fatalf("refusal not logged with its line:\n%s", r.Logs.String())
	}
	if g := r.App.Reloader().Status().Generation; g != gen {
		t.Fatalf("generation moved to %d on an invalid config", g)
	}

	// Fixed, with a changed listen port: applied, and the port needs a restart.
	fixed := strings.Replace(good, "[[accounts]]", "[[accounts]]", 1)
	if err := fsutil.WriteFileAtomic(r.Path, []byte(fixed+strings.Replace(serverTable(filepath.Dir(r.Path)), "port = 3000", "port = 3999", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "config applied", func() bool { return r.App.Reloader().Status().Generation > gen })
	if s, _ := healthField(t, r.relayUT, "config").(string); s != "ok" {
		t.Fatalf("health config = %q after a fix", s)
	}
	if st := r.App.Reloader().Status(); len(st.NeedsRestart) != 1 || st.NeedsRestart[0] != "server.port" {
		t.Fatalf("needs restart = %v", st.NeedsRestart)
	}
	if !strings.Contains(r.Logs.String(), "needs restart") {
		t.Fatal("port change not logged as needing a restart")
	}
}

// TestSIGHUPReloads: SIGHUP reloads (here: removes an account, whose sticky
// conversation moves to the other at its next turn).
func TestSIGHUPReloads(t *testing.T) {
	a := upstream(t, &fakeupstream.Anthropic{Text: "a"})
	b := upstream(t, &fakeupstream.Anthropic{Text: "b"})
	head := `api_keys = ["` + relayKey + `"]` + "\n"
	r := startFileRelay(t, head+claudeAPIAccount("a", a.URL, "sk-ant-a-key-1", 200)+claudeAPIAccount("b", b.URL, "sk-ant-b-key-1", 100))
	first, _ := askIn(t, r.relayUT, "conv-1")
	if first != "a" {
		t.Fatalf("first turn on %q", first)
	}
	// Written in place without a rename, then SIGHUP: the file watch may
	// see it too, and either way one reload applies it.
	gen := r.App.Reloader().Status().Generation
	if err := os.WriteFile(r.Path, []byte(head+claudeAPIAccount("b", b.URL, "sk-ant-b-key-1", 100)+serverTable(filepath.Dir(r.Path))), 0o600); err != nil {
		t.Fatal(err)
	}
	r.HUP <- os.Interrupt
	waitFor(t, 10*time.Second, "reload", func() bool { return r.App.Reloader().Status().Generation > gen })
	if next, err := askIn(t, r.relayUT, "conv-1"); err != nil || next != "b" {
		t.Fatalf("next turn of a conversation on a removed account: %q, %v", next, err)
	}
	if b, ok := r.App.Sched.Session(sessionKeyOf(t, r.relayUT)); ok && b.AccountID != "b" {
		t.Fatalf("binding not moved: %+v", b)
	}
}

// sessionKeyOf returns the one live session key.
func sessionKeyOf(t *testing.T, r *relayUT) string {
	t.Helper()
	ss := r.App.Sched.Sessions()
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	return ss[0].Key
}

var _ = http.StatusOK

// write_timeout_seconds reloads live: after the file changes, a client that
// stops reading is dropped after the new timeout (the default is 60 s).
func TestWriteTimeoutReloadsLive(t *testing.T) {
	up, cancelled := endlessStream(t)
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + claudeAPIAccount("a", up, "k", 100)
	r := startFileRelay(t, cfg)
	r.rewriteServer(cfg, "write_timeout_seconds = 1\n")
	if st := r.App.Reloader().Status(); len(st.NeedsRestart) != 0 {
		t.Fatalf("needs restart: %v", st.NeedsRestart)
	}
	askWithoutReading(t, r.relayUT, `{"model":"m","stream":true,"max_tokens":10,"messages":[]}`)
	// The request is recorded once the relay's blocked write fails (the
	// idle timeout may cancel the upstream call earlier; that does not
	// free the write).
	waitFor(t, 30*time.Second, "the request to be recorded", func() bool {
		rows, err := r.App.DB.UsageRows(context.Background(), time.Time{})
		return err == nil && len(rows) == 1
	})
	if rows := r.usageRows(1); rows[0].Status != 499 {
		t.Fatalf("usage %+v", rows[0])
	}
	if !cancelled.Load() {
		t.Fatal("the upstream call went on")
	}
}
