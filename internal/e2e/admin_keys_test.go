package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/logging"
)

const (
	e2eAdminKey = "admin-key-e2e-0123456789"
	ciKey       = "ccr-CI-KEY-e2e-0123456789"
)

// startRelayFromFile runs a relay on the config file at path, as `serve
// --config` does, so the admin API can edit the file and reload it.
func startRelayFromFile(t *testing.T, path string) *relayUT {
	t.Helper()
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
	addr, err := a.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relayUT{t: t, App: a, URL: "http://" + addr.String(), DBPath: c.Server.DatabasePath, Logs: logs}
	t.Cleanup(r.Close)
	return r
}

// adminCall sends an admin API request with the admin key and decodes the
// answer into out (when not nil); it returns the status and the raw body.
func adminCall(t *testing.T, r *relayUT, method, path, body string, out any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, r.URL+admin.Prefix+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2eAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// The keys the admin API lists are the config's named keys merged with the
// policy's live counters; a key created or disabled through the API is
// written to the file, reloaded and listed at once, and its value is shown
// in the create answer only.
func TestAdminKeysListCreateDisable(t *testing.T) {
	up := upstream(t, &fakeupstream.Anthropic{})
	path := filepath.Join(t.TempDir(), "config.toml")
	text := fmt.Sprintf("# team relay\nadmin_keys = [%q]\n\n[[keys]]\nname = \"ci\"\nkey = %q\ndaily_usd = 1.0\ndaily_tokens = 100000\nrpm = 30\n\n[[keys]]\nname = \"hashed\"\nkey_sha256 = %q\n\n%s[server]\nhost = \"127.0.0.1\"\ndatabase_path = %q\n",
		e2eAdminKey, ciKey, strings.Repeat("ab", 32), claudeAPIAccount("acct-1", up.URL, "sk-ant-e2e-admin-keys", 100), filepath.Join(t.TempDir(), "relay.db"))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRelayFromFile(t, path)
	if _, err := keyClient(r, ciKey).Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
		t.Fatal(err)
	}
	r.usageRows(1)

	var keys admin.KeysResponse
	adminCall(t, r, "GET", "keys", "", &keys)
	byName := map[string]admin.Key{}
	for _, k := range keys.Keys {
		byName[k.Name] = k
	}
	ci, hashed := byName["ci"], byName["hashed"]
	// The fake answers 12 input, 7 output, 3 cache write and 5 cache read
	// tokens; claude-sonnet-4-5 costs 3, 15, 3.75 and 0.3 dollars per million.
	const cost = 12*3 + 7*15 + 3*3.75 + 5*0.3 // micro-dollars
	if !keys.Named || ci.Source != admin.SourceKeys || ci.Last4 != ciKey[len(ciKey)-4:] || !ci.Enabled || ci.RPM != 30 || ci.LastUsed == nil || ci.InFlight != 0 ||
		ci.Today.Requests != 1 || ci.CostTodayMicros == nil || float64(*ci.CostTodayMicros) < cost-1 || float64(*ci.CostTodayMicros) > cost+1 {
		t.Fatalf("ci: %+v", ci)
	}
	if len(ci.Budgets) != 2 || ci.Budgets[0].Unit != "usd" || ci.Budgets[0].Limit != 1 || ci.Budgets[0].Used*1e6 < cost-1 || ci.Budgets[0].Used*1e6 > cost+1 ||
		ci.Budgets[0].ResetsAt == nil || ci.Budgets[1].Unit != "tokens" || ci.Budgets[1].Used != 27 {
		t.Fatalf("ci budgets: %+v", ci.Budgets)
	}
	if hashed.Source != admin.SourceKeys || hashed.Last4 != "" || len(hashed.Budgets) != 0 {
		t.Fatalf("hashed: %+v", hashed)
	}

	var created admin.CreateKeyResponse
	code, body := adminCall(t, r, "POST", "keys", `{"name": "dave", "models": ["claude-sonnet-*"], "daily_usd": 5, "hash_only": true}`, &created)
	if code != http.StatusCreated || !created.Applied || !strings.HasPrefix(created.Key, "ccr-") {
		t.Fatalf("create: %d %s", code, body)
	}
	secretsMu.Lock()
	secrets[created.Key] = true
	secretsMu.Unlock()
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# team relay\n") || bytes.Contains(data, []byte(created.Key)) {
		t.Fatalf("config after create:\n%s", data)
	}
	code, body = adminCall(t, r, "GET", "keys", "", &keys)
	if strings.Contains(body, created.Key) || strings.Contains(body, ciKey) {
		t.Fatal("a key's value is in the listing")
	}
	found := false
	for _, k := range keys.Keys {
		if k.Name == "dave" {
			found = k.Enabled && k.Last4 == "" && len(k.Budgets) == 1 && k.Budgets[0].Limit == 5 && k.Budgets[0].Used == 0
		}
	}
	if code != 200 || !found {
		t.Fatalf("the new key is not listed as created: %s", body)
	}
	// The created key serves at once (the reload the API triggered applied it).
	if _, err := keyClient(r, created.Key).Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
		t.Fatalf("a request with the created key: %v", err)
	}
	if code, body := adminCall(t, r, "POST", "keys", `{"name": "dave"}`, nil); code != http.StatusConflict || !strings.Contains(body, "already exists") {
		t.Fatalf("duplicate: %d %s", code, body)
	}

	var state admin.KeyStateResponse
	if code, body := adminCall(t, r, "POST", "keys/dave/disable", "", &state); code != 200 || state.Enabled || !state.Applied {
		t.Fatalf("disable: %d %s", code, body)
	}
	adminCall(t, r, "GET", "keys", "", &keys)
	for _, k := range keys.Keys {
		if k.Name == "dave" && k.Enabled {
			t.Fatal("dave is listed enabled after disable")
		}
	}
	// ... and the disabled key is refused in Anthropic's shape.
	if _, err := keyClient(r, created.Key).Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("a request with the disabled key: %v", err)
	}
	if !strings.Contains(r.Logs.String(), "relay key created through the admin API") {
		t.Fatal("the creation is not in the log")
	}
}

// Wrong admin keys from one address are braked like wrong relay keys: the
// relay wires one brake into the admin API, the dashboard's sign-in and
// /metrics. Past the limit a wrong key gets 429 everywhere, while the right
// key is served everywhere (issue 31 item 7: one guesser behind a shared
// address locks no one out). The relay API's own brake does the same.
func TestAdminKeyGuessingIsBraked(t *testing.T) {
	up := upstream(t, &fakeupstream.Anthropic{Text: "fine"})
	r := startRelay(t, fmt.Sprintf("admin_keys = [%q]\napi_keys = [%q]\n%s", e2eAdminKey, relayKey, claudeAPIAccount("a", up.URL, "sk-ant-e2e-brake", 100)))
	last := 0
	for i := range 21 {
		last = adminGet(t, r.URL, admin.Prefix+"health", "Authorization", fmt.Sprintf("Bearer guess-%02d-0123456789", i))
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("the 21st wrong admin key: %d, want 429", last)
	}
	if code := adminGet(t, r.URL, admin.Prefix+"health", "Authorization", "Bearer "+e2eAdminKey); code != http.StatusOK {
		t.Fatalf("the right admin key from the braked address: %d, want 200", code)
	}
	resp, page := signIn(t, r.URL, "guess-99-0123456789")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many wrong admin keys") {
		t.Fatalf("dashboard sign-in with a wrong key from the braked address: %d", resp.StatusCode)
	}
	if resp, _ := signIn(t, r.URL, e2eAdminKey); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("dashboard sign-in with the right key from the braked address: %d", resp.StatusCode)
	}
	// /metrics, behind the same admin keys, shares the brake.
	req, _ := http.NewRequest("GET", r.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer guess-98-0123456789")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("/metrics with a wrong key from the braked address: %d", res.StatusCode)
	}
	if code := adminGet(t, r.URL, "/metrics", "Authorization", "Bearer "+e2eAdminKey); code != http.StatusOK {
		t.Fatalf("/metrics with the right key from the braked address: %d", code)
	}

	// The relay API: 20 wrong relay keys, then a wrong one is 429 and the
	// right one (through the Anthropic SDK) is served.
	for i := range 21 {
		_, err := keyClient(r, fmt.Sprintf("relay-guess-%02d-0123456789", i)).Messages.New(context.Background(), newParams("claude-sonnet-4-5"))
		if err == nil {
			t.Fatalf("wrong relay key %d served", i)
		}
		if want := map[bool]string{true: "429", false: "401"}[i == 20]; !strings.Contains(err.Error(), want) {
			t.Fatalf("wrong relay key %d: %v, want %s", i, err, want)
		}
	}
	if who, err := servedBy(r); err != nil || who != "fine" {
		t.Fatalf("the right relay key from the braked address: %q %v", who, err)
	}
}
