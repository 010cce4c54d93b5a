package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmd/requests"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// failoverRelay is a relay with an admin key whose first account answers
// 401 with a message naming its own key, so the request fails over to the
// second.
func failoverRelay(t *testing.T) (*relayUT, *pool) {
	t.Helper()
	p := newPool(t)
	p.fakes[0].Script = fail(401, nil, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key k0-secret-0123456789"}}`)
	cfg := strings.Replace(p.config(), `api_key = "k0"`, `api_key = "k0-secret-0123456789"`, 1)
	r := startRelay(t, fmt.Sprintf("admin_keys = [%q]\napi_keys = [%q]\n", e2eAdminKey, relayKey)+cfg)
	return r, p
}

// waitRequests polls the admin API until the request log holds n rows for q.
func waitRequests(t *testing.T, r *relayUT, q url.Values, n int) admin.RequestPage {
	t.Helper()
	var page admin.RequestPage
	waitFor(t, 5*time.Second, fmt.Sprintf("%d request log rows for %s", n, q.Encode()), func() bool {
		page = admin.RequestPage{}
		st, _ := adminCall(t, r, "GET", "requests?"+q.Encode(), "", &page)
		return st == 200 && len(page.Requests) >= n
	})
	return page
}

// A request that failed over (401 on a0, 200 on a1) is in the request log
// with both attempts, the 401's reason and the upstream's message without
// the account's key; the account filter finds it under a0 (left) and a1
// (served), and the detail route serves it by the id the client saw.
func TestRequestLogFailoverInAdminAPI(t *testing.T) {
	r, _ := failoverRelay(t)
	if text, err := ask(t, r); err != nil || text != "answer from 1" {
		t.Fatalf("want failover to a1, got %q %v", text, err)
	}
	page := waitRequests(t, r, url.Values{"account": {"a0"}}, 1)
	if page.Scope != store.ScopeLocal || len(page.Requests) != 1 {
		t.Fatalf("page: %+v", page)
	}
	row := page.Requests[0]
	if row.Account != "a1" || row.Status != 200 || len(row.Attempts) != 2 || row.Route != "/v1/messages" || row.Dialect != "anthropic" ||
		row.Model != "claude-opus-4-8" || !strings.HasPrefix(row.UserAgent, "Anthropic/Go") || row.Client != "127.0.0.1" || row.Key == "" {
		t.Fatalf("row: %+v", row)
	}
	a0, a1 := row.Attempts[0], row.Attempts[1]
	if a0.Account != "a0" || a0.Status != 401 || a0.Verdict != "unavailable" || a0.Reason == "" ||
		a0.Message != "invalid x-api-key [redacted]" || a1.Account != "a1" || a1.Status != 200 || a1.Verdict != "ok" {
		t.Fatalf("attempts: %+v", row.Attempts)
	}
	var d admin.RequestDetailResponse
	if st, raw := adminCall(t, r, "GET", "requests/"+row.ID, "", &d); st != 200 || d.ID != row.ID || len(d.Attempts) != 2 {
		t.Fatalf("detail %d: %s", st, raw)
	} else if strings.Contains(raw, "k0-secret-0123456789") || strings.Contains(raw, relayKey) {
		t.Fatalf("a secret in the request log: %s", raw)
	}
	if got := waitRequests(t, r, url.Values{"account": {"a1"}}, 1); got.Requests[0].ID != row.ID {
		t.Fatalf("account a1: %+v", got)
	}
	for _, q := range []url.Values{{"errors": {"true"}}, {"account": {"a2"}}, {"key": {"nobody"}}} {
		var p admin.RequestPage
		if st, raw := adminCall(t, r, "GET", "requests?"+q.Encode(), "", &p); st != 200 || len(p.Requests) != 0 {
			t.Fatalf("%s: %d %s", q.Encode(), st, raw)
		}
	}
	if st, raw := adminCall(t, r, "GET", "requests/req_nope", "", nil); st != 404 || !strings.Contains(raw, "req_nope") {
		t.Fatalf("missing request: %d %s", st, raw)
	}
	if st, raw := adminCall(t, r, "GET", "requests?since=yesterdayish", "", nil); st != 400 || !strings.Contains(raw, "since") {
		t.Fatalf("bad since: %d %s", st, raw)
	}
}

// runRequests runs `ccrelay requests args...` against r's config and
// returns its output.
func runRequests(t *testing.T, r *relayUT, env map[string]string, args ...string) string {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }, Config: func() (*config.Config, error) { return r.App.Config, nil }}
	cmd := requests.NewCmdRequests(f, nil)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("ccrelay requests %v: %v\n%s", args, err, errOut)
	}
	return out.String()
}

// The CLI shows the failover from the local database and through --server:
// the trail "a0 401 > a1" in the list, both attempts with the reason in
// the detail, the same JSON either way.
func TestRequestLogFailoverInCLI(t *testing.T) {
	r, _ := failoverRelay(t)
	if _, err := ask(t, r); err != nil {
		t.Fatal(err)
	}
	id := waitRequests(t, r, url.Values{}, 1).Requests[0].ID
	server := map[string]string{cmdutil.EnvServer: r.URL, cmdutil.EnvAdminKey: e2eAdminKey}
	for name, env := range map[string]map[string]string{"local": nil, "server": server} {
		t.Run(name, func(t *testing.T) {
			list := runRequests(t, r, env, "--account", "a0", "--since", "1h")
			if !strings.Contains(list, id) || !strings.Contains(list, "a0 401 > a1") {
				t.Fatalf("list:\n%s", list)
			}
			detail := runRequests(t, r, env, id)
			for _, want := range []string{"1. a0", "401", "unavailable", "message: invalid x-api-key [redacted]", "2. a1", "200"} {
				if !strings.Contains(detail, want) {
					t.Fatalf("detail lacks %q:\n%s", want, detail)
				}
			}
			var page admin.RequestPage
			if err := json.Unmarshal([]byte(runRequests(t, r, env, "--errors", "--json")), &page); err != nil || len(page.Requests) != 0 {
				t.Fatalf("--errors: %+v %v", page, err)
			}
		})
	}
}
