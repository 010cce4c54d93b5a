package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/fsutil"
	"github.com/ccrelay/ccrelay/internal/reload"
)

// adminGet sends GET path with the headers given (name, value, ...) and
// returns the status.
func adminGet(t *testing.T, base, path string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// signIn posts key to the dashboard's sign-in form (with extra headers) and
// returns the answer, its body read.
func signIn(t *testing.T, base, key string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/dashboard/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// The admin keys a reload puts in force are the ones the admin API, the
// dashboard and /metrics accept from the next request on (issue 31 item
// 1): the replaced key is refused everywhere (401, creating a key too), a
// dashboard session it signed in ends, the new key works, and the reload
// asks for no restart. A named [[keys]] relay key (and one the reload adds)
// is 403 on the admin API and never counts as a wrong admin key (item 7).
func TestAdminKeysFollowReload(t *testing.T) {
	const (
		oldKey   = "admin-key-before-reload-0123"
		newKey   = "admin-key-after-reload-01234"
		namedKey = "ccr-named-relay-key-0123456789"
		addedKey = "ccr-added-relay-key-0123456789"
	)
	secretsMu.Lock()
	for _, k := range []string{oldKey, newKey, namedKey, addedKey} {
		secrets[k] = true
	}
	secretsMu.Unlock()
	up := upstream(t, &fakeupstream.Anthropic{Text: "fine"})
	cfg := func(adminKey, keys string) string {
		return fmt.Sprintf("admin_keys = [%q]\n%s%s", adminKey, keys, claudeAPIAccount("a", up.URL, "sk-ant-admin-reload", 100))
	}
	named := fmt.Sprintf("[[keys]]\nname = \"ci\"\nkey = %q\n\n", namedKey)
	r := startFileRelay(t, cfg(oldKey, named))
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }

	resp, _ := signIn(t, r.URL, oldKey)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in with the admin key: %d", resp.StatusCode)
	}
	session := resp.Cookies()[0]
	cookie := []string{"Cookie", session.Name + "=" + session.Value}
	if code := adminGet(t, r.URL, admin.Prefix+"health", cookie...); code != http.StatusOK {
		t.Fatalf("the session before the reload: %d", code)
	}
	// A named relay key, many times: 403 each, and no brake (the wrong
	// keys below still get 401).
	for i := range 25 {
		if code := adminGet(t, r.URL, admin.Prefix+"health", bearer(namedKey)...); code != http.StatusForbidden {
			t.Fatalf("named relay key %d on the admin API: %d, want 403", i, code)
		}
	}
	if code := adminGet(t, r.URL, "/metrics", bearer(namedKey)...); code != http.StatusForbidden {
		t.Fatalf("named relay key on /metrics: %d, want 403", code)
	}
	if resp, _ := signIn(t, r.URL, namedKey); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("dashboard sign-in with a named relay key: %d", resp.StatusCode)
	}
	if code := adminGet(t, r.URL, admin.Prefix+"health", bearer("wrong-admin-key-0123456789")...); code != http.StatusUnauthorized {
		t.Fatalf("a wrong key after 25 relay keys: %d, want 401 (relay keys fed the brake)", code)
	}

	// The reload replaces the admin key and adds a relay key.
	added := named + fmt.Sprintf("[[keys]]\nname = \"added\"\nkey = %q\n\n", addedKey)
	if err := fsutil.WriteFileAtomic(r.Path, []byte(cfg(newKey, added)+serverTable(filepath.Dir(r.Path))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.App.Reloader().Reload(context.Background()); err != nil && !errors.Is(err, reload.ErrUnchanged) {
		t.Fatalf("reload: %v", err)
	}
	if st := r.App.Reloader().Status(); st.Stale || len(st.NeedsRestart) != 0 {
		t.Fatalf("reload status: %+v (an admin key change needs no restart)", st)
	}
	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"old key, admin API", admin.Prefix + "health", bearer(oldKey), http.StatusUnauthorized},
		{"old key, /metrics", "/metrics", bearer(oldKey), http.StatusUnauthorized},
		{"the old key's session", admin.Prefix + "health", cookie, http.StatusUnauthorized},
		{"new key, admin API", admin.Prefix + "health", bearer(newKey), http.StatusOK},
		{"new key as x-api-key", admin.Prefix + "accounts", []string{"X-Api-Key", newKey}, http.StatusOK},
		{"new key, /metrics", "/metrics", bearer(newKey), http.StatusOK},
		{"the added relay key", admin.Prefix + "health", bearer(addedKey), http.StatusForbidden},
	}
	for _, tt := range tests {
		if code := adminGet(t, r.URL, tt.path, tt.hdr...); code != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.want)
		}
	}
	req, _ := http.NewRequest("POST", r.URL+admin.Prefix+"keys", strings.NewReader(`{"name":"mallory"}`))
	req.Header.Set("Authorization", "Bearer "+oldKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("creating a key with the old admin key: %d, want 401", res.StatusCode)
	}
	// The dashboard page shows the old session the sign-in form again.
	req, _ = http.NewRequest("GET", r.URL+"/dashboard", nil)
	req.AddCookie(session)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(page), `name="csrf-token"`) || !strings.Contains(string(page), `name="key"`) {
		t.Errorf("the old key's session still gets the dashboard:\n%s", page)
	}
	if resp, _ := signIn(t, r.URL, oldKey); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard sign-in with the old key: %d", resp.StatusCode)
	}
	if resp, _ := signIn(t, r.URL, newKey); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("dashboard sign-in with the new key: %d", resp.StatusCode)
	}
}

// The dashboard's sign-in cookie carries Secure when the sign-in came over
// TLS as a trusted proxy's X-Forwarded-Proto says (issue 31 item 11), not
// when an untrusted client says so, and always with server.secure_cookie,
// which a reload turns on.
func TestDashboardCookieSecure(t *testing.T) {
	secure := func(r *relayUT, hdr ...string) bool {
		t.Helper()
		resp, _ := signIn(t, r.URL, e2eAdminKey, hdr...)
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		return resp.Cookies()[0].Secure
	}
	https := []string{"X-Forwarded-Proto", "https"}
	cfg := fmt.Sprintf("admin_keys = [%q]\napi_keys = [%q]\ntrusted_proxies = [\"127.0.0.1\"]\n", e2eAdminKey, relayKey)
	r := startFileRelay(t, cfg)
	if secure(r.relayUT) {
		t.Error("plain HTTP sign-in: Secure")
	}
	if !secure(r.relayUT, https...) {
		t.Error("through a trusted proxy that says https: no Secure")
	}
	if secure(r.relayUT, "X-Forwarded-Proto", "http") {
		t.Error("through a trusted proxy that says http: Secure")
	}
	untrusted := startRelay(t, fmt.Sprintf("admin_keys = [%q]\napi_keys = [%q]\n", e2eAdminKey, relayKey))
	if secure(untrusted, https...) {
		t.Error("X-Forwarded-Proto from a client that is not a trusted proxy was believed")
	}

	if err := fsutil.WriteFileAtomic(r.Path, []byte(cfg+serverTable(filepath.Dir(r.Path))+"secure_cookie = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.App.Reloader().Reload(context.Background()); err != nil && !errors.Is(err, reload.ErrUnchanged) {
		t.Fatalf("reload: %v", err)
	}
	if !secure(r.relayUT) {
		t.Error("secure_cookie = true (reloaded): no Secure")
	}
}
