// Package e2e runs the real relay (config -> app -> HTTP server) against fake
// upstreams on loopback, with the providers' official Go SDKs as clients.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/logging"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/testutil"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/shared"
)

const relayKey = "relay-key-e2e-0123456789"

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testutil.SyncBuffer

type relayUT struct {
	t      *testing.T
	App    *app.App
	URL    string
	DBPath string
	Logs   *syncBuffer
	cfg    string
	closed bool
}

// startRelay runs a relay on a free loopback port. cfg is TOML without
// [server]; the harness adds host, port and a temp database.
func startRelay(t *testing.T, cfg string) *relayUT {
	t.Helper()
	return startRelayAt(t, cfg, filepath.Join(t.TempDir(), "relay.db"))
}

func startRelayAt(t *testing.T, cfg, dbPath string) *relayUT {
	t.Helper()
	full := cfg
	if !strings.Contains(cfg, "[server]") {
		full = fmt.Sprintf("%s\n[server]\nhost = \"127.0.0.1\"\nport = 3000\ndatabase_path = %q\nlog_level = \"debug\"\nfirst_byte_timeout_seconds = 5\nidle_timeout_seconds = 5\nresponse_timeout_seconds = 10\n", cfg, dbPath)
	}
	c, err := config.Parse([]byte(full))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, full)
	}
	logs := &syncBuffer{}
	watchSecrets(c, logs)
	log := logging.New(logs, "debug", "text")
	a, err := app.Build(c, log)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relayUT{t: t, App: a, URL: "http://" + addr.String(), DBPath: dbPath, Logs: logs, cfg: cfg}
	t.Cleanup(r.Close)
	return r
}

// Close shuts the relay down (drains and flushes usage).
func (r *relayUT) Close() {
	if r.closed {
		return
	}
	r.closed = true
	// `accounts list` output must not hold a secret either.
	if sts, err := shared.Statuses(context.Background(), r.App.Config, r.App.DB, time.Now()); err == nil {
		b, _ := json.Marshal(sts)
		out := &syncBuffer{}
		out.Write(b)
		secretsMu.Lock()
		sinks = append(sinks, out)
		secretsMu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.App.Shutdown(ctx); err != nil {
		r.t.Errorf("shutdown: %v", err)
	}
}

// Restart stops the relay and starts a new one on the same database.
func (r *relayUT) Restart() *relayUT {
	r.Close()
	return startRelayAt(r.t, r.cfg, r.DBPath)
}

// Usage closes nothing: it waits until n usage rows are written, and returns them.
func (r *relayUT) usageRows(n int) []usageRow {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := r.App.DB.UsageRows(context.Background(), time.Time{})
		if err != nil {
			r.t.Fatal(err)
		}
		if len(rows) >= n || time.Now().After(deadline) {
			out := make([]usageRow, len(rows))
			for i, u := range rows {
				out[i] = usageRow{u.AccountID, u.Model, u.Status, u.InputTokens, u.OutputTokens, u.CacheCreationTokens, u.CacheReadTokens, u.Stream, u.KeyHash}
			}
			if len(rows) < n {
				r.t.Fatalf("want %d usage rows, have %d: %+v", n, len(rows), out)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type usageRow struct {
	Account                        string
	Model                          string
	Status                         int
	In, Out, CacheWrite, CacheRead int64
	Stream                         bool
	KeyHash                        string
}

var _ = store.ErrNoRow

func (r *relayUT) anthropicClient(opts ...option.RequestOption) anthropic.Client {
	base := []option.RequestOption{option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey(relayKey), option.WithMaxRetries(0)}
	return anthropic.NewClient(append(base, opts...)...)
}

// upstream starts an httptest server for h.
func upstream(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// serverWith is a [server] table on loopback with a temporary database and
// the given settings ("key = value; key = value").
func serverWith(t *testing.T, settings string) string {
	return "\n[server]\nhost = \"127.0.0.1\"\n" + strings.ReplaceAll(settings, "; ", "\n") + "\ndatabase_path = \"" + t.TempDir() + "/r.db\"\n"
}

func claudeAPIAccount(id, url, key string, priority int) string {
	return fmt.Sprintf("[[accounts]]\ntype = \"claude-api\"\nid = %q\napi_key = %q\napi_url = %q\npriority = %d\n", id, key, url, priority)
}

func storeCommand(kind, account string) store.Command {
	return store.Command{Kind: kind, AccountID: account}
}

// Every secret any test configured, and every log sink of every relay: at
// the end of the package, no sink may contain a secret (see TestMain).
var (
	secretsMu sync.Mutex
	secrets   = map[string]bool{"fake-refresh": true, "fake-access": true}
	sinks     []*syncBuffer
)

func watchSecrets(c *config.Config, logs *syncBuffer) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	add := func(s string) {
		if len(s) >= 8 {
			secrets[s] = true
		}
	}
	for _, k := range c.APIKeys {
		add(k)
	}
	add(c.Cluster.Secret)
	for _, a := range c.Accounts {
		add(a.APIKey)
		add(a.RefreshToken)
		add(a.ClientSecret)
		if a.Proxy != nil {
			add(a.Proxy.Password)
		}
	}
	sinks = append(sinks, logs)
}

// leakedSecrets reports sink lines that contain a configured secret.
func leakedSecrets() []string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	var out []string
	for _, s := range sinks {
		for _, line := range strings.Split(s.String(), "\n") {
			for sec := range secrets {
				if strings.Contains(line, sec) {
					out = append(out, "secret "+sec[:4]+"... in: "+line)
				}
			}
		}
	}
	return out
}

// postStream sends a minimal streaming Messages request without a relay key
// and returns the whole answer (the relay's error events included).
func postStream(t *testing.T, r *relayUT) string {
	t.Helper()
	resp, err := http.Post(r.URL+"/v1/messages", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
