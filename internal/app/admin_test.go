package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
)

const testAdminKey = "app-admin-key-0123456789"

func buildAndStart(t *testing.T, cfgText string) (*App, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return a, "http://" + addr.String()
}

func call(t *testing.T, method, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAdminRoutesOnlyWithAdminKeys(t *testing.T) {
	db := filepath.Join(t.TempDir(), "relay.db")
	body := fmt.Sprintf("[server]\ndatabase_path = %q\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n", db)
	a, base := buildAndStart(t, "api_keys = [\"relay-key-0123456789\"]\n"+body)
	for _, p := range []string{"/admin/v1/accounts", "/dashboard"} {
		if code := call(t, "GET", base+p, "relay-key-0123456789"); code != http.StatusNotFound {
			t.Errorf("%s without admin_keys: %d, want 404", p, code)
		}
	}
	_ = a.Shutdown(context.Background())
}

// An account disabled through the admin API stays disabled after a restart.
func TestDisabledAccountSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "relay.db")
	cfg := fmt.Sprintf("admin_keys = [%q]\n[server]\ndatabase_path = %q\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"b\"\napi_key = \"k2\"\n", testAdminKey, db)
	a, base := buildAndStart(t, cfg)
	if code := call(t, "GET", base+"/dashboard", ""); code != http.StatusOK {
		t.Fatalf("dashboard sign-in page: %d", code)
	}
	if code := call(t, "POST", base+"/admin/v1/accounts/b/disable", testAdminKey); code != http.StatusOK {
		t.Fatalf("disable: %d", code)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, _ = buildAndStart(t, cfg)
	defer a.Shutdown(context.Background())
	for _, st := range a.Sched.States() {
		if st.Disabled != (st.ID == "b") {
			t.Fatalf("after restart %s disabled = %v", st.ID, st.Disabled)
		}
	}
	if acct, err := a.Sched.Pick("claude", "m", "", []string{"a"}); err == nil {
		t.Fatalf("picked %s, the disabled account", acct.ID)
	}
}
