package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Two relays on one Redis: alice's request through A (captured there) and
// bob's through B are both listed by either relay's admin API, scoped
// "cluster", each row naming the relay that served it; B serves alice's
// row and says A holds its bodies (bodies_on), A serves them. With Redis
// stopped B answers with its own rows, scoped "local", with the reason.
func TestClusterRequestLogReadableFromAnyRelay(t *testing.T) {
	rd := clustertest.Start(t)
	up := upstream(t, &fakeupstream.Anthropic{Keys: []string{captureAcct}, Text: "captured answer"})
	cfg := fmt.Sprintf("admin_keys = [%q]\n\n[[keys]]\nname = \"alice\"\nkey = %q\n\n[[keys]]\nname = \"bob\"\nkey = %q\n\n", e2eAdminKey, aliceKey, bobKey) +
		clusterTable(rd, 15) + claudeAPIAccount("acct-1", up.URL, captureAcct, 100)
	rs := startRelays(t, 2, cfg)
	a, b := rs[0], rs[1]
	var c reqlog.Capture
	if st, raw := adminCall(t, a, "POST", "captures", `{"key":"alice","for":"1h"}`, &c); st != 201 {
		t.Fatalf("start a capture on A: %d %s", st, raw)
	}
	streamAs(t, a, aliceKey)
	streamAs(t, b, bobKey)

	var rows map[string]store.RequestRow
	for i, r := range rs {
		page := waitRequests(t, r, url.Values{}, 2)
		if page.Scope != store.ScopeCluster || len(page.Requests) != 2 {
			t.Fatalf("relay %d: %+v", i, page)
		}
		rows = map[string]store.RequestRow{}
		for _, row := range page.Requests {
			rows[row.Key] = row
		}
		if rows["alice"].Relay == "" || rows["bob"].Relay == "" || rows["alice"].Relay == rows["bob"].Relay ||
			!rows["alice"].Captured || rows["bob"].Captured || len(rows["alice"].Attempts) != 1 || rows["alice"].Attempts[0].Account != "acct-1" {
			t.Fatalf("relay %d rows: %+v", i, page.Requests)
		}
	}
	// The admin health names each relay by the id its rows carry, so an
	// operator can tell which relay holds a request's bodies; /health,
	// which needs no key, does not (clusterHealth checks).
	for r, want := range map[*relayUT]string{a: rows["alice"].Relay, b: rows["bob"].Relay} {
		if got := relayIDOf(t, r); got != want {
			t.Fatalf("admin health names %q; its rows name %q", got, want)
		}
		clusterHealth(t, r)
	}
	var only admin.RequestPage
	if st, raw := adminCall(t, b, "GET", "requests?key=alice", "", &only); st != 200 || len(only.Requests) != 1 || only.Requests[0].ID != rows["alice"].ID {
		t.Fatalf("B filtered by alice: %d %s", st, raw)
	}

	alice := rows["alice"].ID
	var onB, onA admin.RequestDetailResponse
	if st, raw := adminCall(t, b, "GET", "requests/"+alice, "", &onB); st != 200 || onB.Scope != store.ScopeCluster ||
		onB.Bodies != nil || onB.BodiesOn != rows["alice"].Relay || onB.ThisRelay != rows["bob"].Relay {
		t.Fatalf("alice's request on B: %d %s", st, raw)
	}
	if st, raw := adminCall(t, a, "GET", "requests/"+alice, "", &onA); st != 200 || onA.Scope != store.ScopeCluster ||
		onA.Bodies == nil || onA.BodiesOn != "" || !strings.Contains(onA.Bodies.Request, "[redacted]") {
		t.Fatalf("alice's request on A: %d %s", st, raw)
	}

	rd.Stop()
	waitFor(t, 10*time.Second, "B answers from its own rows", func() bool {
		var p admin.RequestPage
		st, _ := adminCall(t, b, "GET", "requests", "", &p)
		return st == 200 && p.Scope == store.ScopeLocal && strings.Contains(p.ScopeReason, "unreachable") &&
			len(p.Requests) == 1 && p.Requests[0].Key == "bob"
	})
}
