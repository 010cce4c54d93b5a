package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/reload"
)

const newKeyValue = "ccr-NEWKEYFORTESTS0123456789"

// configFile is the config in force and its reload, as the relay's
// reloader does it: read the file again and keep it when it loads.
type configFile struct {
	mu      sync.Mutex
	cfg     *config.Config
	reloads int
	refuse  error
}

func (c *configFile) Current() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

func (c *configFile) Reload(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reloads++
	if c.refuse != nil {
		return c.refuse
	}
	next, err := config.LoadFile(c.cfg.Path)
	if err != nil {
		return err
	}
	c.cfg = next
	return nil
}

const startConfig = "# the team's relay\napi_keys = [\"" + relayKey + "\"] # kept\n\n[[keys]]\nname = \"ci\"\nkey = \"ccr-CIKEY0123456789abcdef\"\n"

func newKeyFixture(t *testing.T, logs *bytes.Buffer) (*fixture, *configFile) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(startConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cf := &configFile{cfg: cfg}
	f := newFixture(t, func(o *Options) {
		o.Config, o.Reload = cf, cf
		o.NewKey = func() string { return newKeyValue }
		if logs != nil {
			o.Log = slog.New(slog.NewTextHandler(logs, nil))
		}
	})
	return f, cf
}

func TestCreateKey(t *testing.T) {
	var logs bytes.Buffer
	f, cf := newKeyFixture(t, &logs)
	code, body := f.do(t, "POST", "/admin/v1/keys", `{"name": "alice", "models": ["claude-sonnet-*"], "groups": ["team-a"], "rpm": 60, "concurrency": 2,
		"daily_usd": 2.5, "weekly_usd": 10, "monthly_usd": 30, "daily_tokens": 500000}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	r := decode[CreateKeyResponse](t, body)
	if r.Name != "alice" || r.Key != newKeyValue || !r.Applied || r.ReloadError != "" || !strings.Contains(r.Note, "only time") {
		t.Fatalf("create answered %+v", r)
	}
	if cf.reloads != 1 {
		t.Fatalf("%d reloads after a create, want 1", cf.reloads)
	}
	// The reloaded config holds the key with every option, and the file
	// kept its comments and stayed 0600.
	k := cf.Current().Keys[1]
	if k.Name != "alice" || k.Key != newKeyValue || k.Models[0] != "claude-sonnet-*" || k.Groups[0] != "team-a" || k.RPM != 60 || k.Concurrency != 2 ||
		k.DailyUSD != 2.5 || k.WeeklyUSD != 10 || k.MonthlyUSD != 30 || k.DailyTokens != 500000 {
		t.Fatalf("the config holds %+v", k)
	}
	data, _ := os.ReadFile(cf.cfg.Path)
	if !strings.HasPrefix(string(data), startConfig) {
		t.Fatalf("the file's old text changed:\n%s", data)
	}
	if fi, _ := os.Stat(cf.cfg.Path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v", fi.Mode().Perm())
	}
	// Shown once: the listing and the logs never hold it.
	_, list := f.do(t, "GET", "/admin/v1/keys", "")
	if strings.Contains(string(list), newKeyValue) || strings.Contains(logs.String(), newKeyValue) {
		t.Fatalf("the new key is shown again:\n%s\n%s", list, logs.String())
	}
	if !strings.Contains(logs.String(), "alice") {
		t.Fatalf("the creation is not logged: %s", logs.String())
	}
}

func TestCreateKeyHashOnly(t *testing.T) {
	f, cf := newKeyFixture(t, nil)
	code, body := f.do(t, "POST", "/admin/v1/keys", `{"name": "bob", "hash_only": true}`)
	r := decode[CreateKeyResponse](t, body)
	if code != http.StatusCreated || r.Key != newKeyValue || !r.HashOnly {
		t.Fatalf("create: %d %s", code, body)
	}
	sum := sha256.Sum256([]byte(newKeyValue))
	data, _ := os.ReadFile(cf.cfg.Path)
	if strings.Contains(string(data), newKeyValue) || !strings.Contains(string(data), hex.EncodeToString(sum[:])) {
		t.Fatalf("hash_only file:\n%s", data)
	}
	pol, err := policy.New(policy.Options{Keys: cf.Current().Keys})
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := pol.Authenticate(newKeyValue); !ok || k.Name != "bob" {
		t.Fatal("the key the answer gave does not match the stored digest")
	}
}

func TestCreateKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		mod  func(*Options)
		code int
		want string
	}{
		{"duplicate name", `{"name": "ci"}`, nil, http.StatusConflict, "already exists"},
		{"no name", `{"rpm": 5}`, nil, http.StatusBadRequest, "name: is required"},
		{"name with a space", `{"name": "a b"}`, nil, http.StatusBadRequest, "name: must be at most 64 characters"},
		{"bad glob", `{"name": "c", "models": ["claude-["]}`, nil, http.StatusBadRequest, "models[0]: is not a valid glob"},
		{"bad zone", `{"name": "c", "timezone": "Mars/Olympus"}`, nil, http.StatusBadRequest, "timezone: unknown time zone"},
		{"bad expiry", `{"name": "c", "expires_at": "soon"}`, nil, http.StatusBadRequest, "expires_at"},
		{"negative budget", `{"name": "c", "daily_usd": -1}`, nil, http.StatusBadRequest, "daily_usd: must not be negative"},
		{"fractional rpm", `{"name": "c", "rpm": 1.5}`, nil, http.StatusBadRequest, "body must be a JSON object"},
		{"unknown option", `{"name": "c", "budget": 5}`, nil, http.StatusBadRequest, `unknown field "budget"`},
		{"not JSON", `name=c`, nil, http.StatusBadRequest, "body must be a JSON object"},
		{"two objects", `{"name": "c"} {"name": "d"}`, nil, http.StatusBadRequest, "one JSON object"},
		{"no config file", `{"name": "c"}`, func(o *Options) { o.Config = &configFile{cfg: &config.Config{}} }, http.StatusConflict, "without a config file"},
		{"not wired", `{"name": "c"}`, func(o *Options) { o.Config = nil }, http.StatusNotImplemented, "not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, cf := newKeyFixture(t, nil)
			if tt.mod != nil {
				o := f.api.o
				tt.mod(&o)
				f.api.o = o
			}
			before, _ := os.ReadFile(cf.cfg.Path)
			code, body := f.do(t, "POST", "/admin/v1/keys", tt.body)
			e := decode[ErrorBody](t, body)
			if code != tt.code || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.want) {
				t.Fatalf("%d %s, want %d with %q", code, body, tt.code, tt.want)
			}
			if after, _ := os.ReadFile(cf.cfg.Path); !bytes.Equal(before, after) || cf.reloads != 0 {
				t.Fatalf("a refused create changed the file or reloaded (%d)", cf.reloads)
			}
		})
	}
}

// A config file the relay refuses to reload still gets the key (it is
// written), and the answer says it is not in force yet.
func TestCreateKeyReloadRefused(t *testing.T) {
	f, cf := newKeyFixture(t, nil)
	cf.refuse = errors.New("accounts[0].type: unknown type")
	code, body := f.do(t, "POST", "/admin/v1/keys", `{"name": "carol"}`)
	r := decode[CreateKeyResponse](t, body)
	if code != http.StatusCreated || r.Applied || !strings.Contains(r.ReloadError, "unknown type") || r.Key != newKeyValue {
		t.Fatalf("create with a refused reload: %d %s", code, body)
	}
	// The file watcher may have reloaded first: that is applied too.
	cf.refuse = reload.ErrUnchanged
	code, body = f.do(t, "POST", "/admin/v1/keys/ci/disable", "")
	if r := decode[KeyStateResponse](t, body); code != 200 || !r.Applied {
		t.Fatalf("disable after the watcher reloaded: %d %s", code, body)
	}
}

func TestSetKeyEnabled(t *testing.T) {
	f, cf := newKeyFixture(t, nil)
	code, body := f.do(t, "POST", "/admin/v1/keys/ci/disable", "")
	r := decode[KeyStateResponse](t, body)
	if code != 200 || r.Name != "ci" || r.Enabled || !r.Applied || cf.Current().Keys[0].IsEnabled() {
		t.Fatalf("disable: %d %s", code, body)
	}
	data, _ := os.ReadFile(cf.cfg.Path)
	if !strings.Contains(string(data), "enabled = false") || !strings.HasPrefix(string(data), "# the team's relay\n") {
		t.Fatalf("file after disable:\n%s", data)
	}
	code, body = f.do(t, "POST", "/admin/v1/keys/ci/enable", "")
	if r := decode[KeyStateResponse](t, body); code != 200 || !r.Enabled || !cf.Current().Keys[0].IsEnabled() || cf.reloads != 2 {
		t.Fatalf("enable: %d %s (reloads %d)", code, body, cf.reloads)
	}
	for path, want := range map[string]int{
		"/admin/v1/keys/nobody/disable":          http.StatusNotFound,
		"/admin/v1/keys/api_keys%5B0%5D/disable": http.StatusBadRequest,
	} {
		code, body := f.do(t, "POST", path, "")
		if e := decode[ErrorBody](t, body); code != want || e.Error.Code != want {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
}

// The dashboard's session acts on keys only with its CSRF token.
func TestKeyActionsNeedCSRF(t *testing.T) {
	f, cf := newKeyFixture(t, nil)
	form := httptest.NewRequest("POST", "/dashboard/login", nil)
	sid, csrf, err := f.auth.SignIn(form, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	cookie := Cookie + "=" + sid
	if code, _ := f.do(t, "POST", "/admin/v1/keys", `{"name": "x"}`, "Cookie", cookie); code != http.StatusForbidden {
		t.Fatalf("create without CSRF: %d", code)
	}
	if code, _ := f.do(t, "POST", "/admin/v1/keys/ci/disable", "", "Cookie", cookie); code != http.StatusForbidden || !cf.Current().Keys[0].IsEnabled() {
		t.Fatalf("disable without CSRF: %d", code)
	}
	if code, body := f.do(t, "POST", "/admin/v1/keys", `{"name": "x"}`, "Cookie", cookie, CSRFHeader, csrf); code != http.StatusCreated {
		t.Fatalf("create with CSRF: %d %s", code, body)
	}
}

// Wrong admin keys are braked per address: past the limit a wrong key gets
// 429 (not 401) until the window has passed, while the right key is served
// all along (one person's guesses behind a shared address lock no one
// out); other addresses are not held up. A relay key is 403, never counted
// as a guess.
func TestAdminKeyBrake(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, nil)
	addr := netip.MustParseAddr("203.0.113.7")
	f.auth.UseBrake(policy.NewBrake(3, clock), func(r *http.Request) netip.Addr {
		if a, err := netip.ParseAddr(r.Header.Get("X-Test-Client")); err == nil {
			return a
		}
		return addr
	})
	// Relay keys, many of them, are not guesses: still 403, and the brake
	// has not moved (the wrong keys below get their 3 tries).
	for i := range 5 {
		if code, body := f.do(t, "GET", "/admin/v1/health", "", "X-Api-Key", relayKey); code != http.StatusForbidden {
			t.Fatalf("relay key %d: %d %s", i, code, body)
		}
	}
	wrong := []string{"Authorization", "Bearer wrong-admin-key-0123456789"}
	for i := range 3 {
		if code, body := f.do(t, "GET", "/admin/v1/health", "", wrong...); code != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d %s", i, code, body)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/admin/v1/health", nil)
	req.Header.Set("Authorization", "Bearer wrong-admin-key-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a wrong key while braked: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	code, body := f.do(t, "GET", "/admin/v1/health", "", "Authorization", "Bearer another-wrong-key-0123456789")
	if e := decode[ErrorBody](t, body); code != http.StatusTooManyRequests || !strings.Contains(e.Error.Message, "too many wrong admin keys") {
		t.Fatalf("braked answer: %d %s", code, body)
	}
	if code, body := f.do(t, "GET", "/admin/v1/health", "", "Authorization", "Bearer "+adminKey); code != http.StatusOK {
		t.Fatalf("the right key while braked: %d %s", code, body)
	}
	if code, body := f.do(t, "GET", "/admin/v1/health", "", "X-Api-Key", relayKey); code != http.StatusForbidden {
		t.Fatalf("a relay key while braked: %d %s", code, body)
	}
	if code, _ := f.do(t, "GET", "/admin/v1/health", "", "Authorization", "Bearer wrong-admin-key-0123456789", "X-Test-Client", "198.51.100.1"); code != http.StatusUnauthorized {
		t.Fatalf("another address: %d", code)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if code, body := f.do(t, "GET", "/admin/v1/health", "", wrong...); code != http.StatusUnauthorized {
		t.Fatalf("a wrong key after the window: %d %s", code, body)
	}
}
