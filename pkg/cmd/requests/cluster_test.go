package requests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// A row read from the cluster names its relay; captured bodies kept on
// another relay are named, so the operator asks that one.
func TestDetailNamesTheRelayHoldingTheBodies(t *testing.T) {
	row := store.RequestRow{ID: "req_x", Status: 500, Captured: true, Relay: "host-b-42-0a1b", Attempts: []store.AttemptRow{}}
	var out bytes.Buffer
	d := admin.RequestDetailResponse{RequestDetail: store.RequestDetail{RequestRow: row}, BodiesOn: "host-b-42-0a1b", Scope: store.ScopeCluster}
	if err := writeDetail(&out, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Relay:    host-b-42-0a1b\n", "kept on relay host-b-42-0a1b", "ask that relay with --server"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("detail lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "since deleted") {
		t.Errorf("bodies on another relay shown as deleted:\n%s", out.String())
	}
}

// --server prints why a relay of a cluster answered with its own rows, and
// that a cluster read stopped before filling the page.
func TestListNotesScope(t *testing.T) {
	pages := []admin.RequestPage{
		{Requests: []store.RequestRow{}, Scope: store.ScopeLocal, ScopeReason: "the cluster's numbers are not available (the cluster's redis is unreachable since x): these are this relay's own"},
		{Requests: []store.RequestRow{}, Scope: store.ScopeCluster, ScanStopped: true, Next: 5},
		{Requests: []store.RequestRow{}, Scope: store.ScopeLocal, ScopeReason: admin.ReasonNoCluster},
	}
	wants := []string{"redis is unreachable since x", "read as far as one question may", ""}
	for i, p := range pages {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(p) }))
		ios, _, _, errOut := iostreams.Test()
		env := map[string]string{cmdutil.EnvAdminKey: "k"}
		err := requestsRun(&Options{IO: ios, Now: time.Now, Getenv: func(k string) string { return env[k] }, Server: srv.URL, Limit: 50})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := errOut.String()
		if wants[i] == "" && strings.Contains(got, "Note:") || wants[i] != "" && !strings.Contains(got, wants[i]) {
			t.Errorf("page %d: stderr %q, want %q", i, got, wants[i])
		}
	}
}

// --follow through a relay whose answers change scope (Redis went down)
// starts over at the new scope's newest row instead of reading the old
// scope's cursor there.
func TestFollowAcrossScopes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		call := n
		mu.Unlock()
		after := r.URL.Query().Get("after")
		p := admin.RequestPage{Requests: []store.RequestRow{}, Scope: store.ScopeLocal, ScopeReason: "redis is unreachable"}
		switch {
		case call == 1:
			p = admin.RequestPage{Requests: []store.RequestRow{{Seq: 1 << 40, ID: "c1"}}, Scope: store.ScopeCluster}
		case after == "" && r.URL.Query().Get("limit") == "1":
			p.Requests = []store.RequestRow{{Seq: 7, ID: "l7"}}
		case after == "7":
			p.Requests = []store.RequestRow{{Seq: 8, ID: "l8"}}
		case after == "8" || call > 200:
			cancel() // done, or stuck on a cursor of the other scope
		}
		_ = json.NewEncoder(w).Encode(p)
	}))
	defer srv.Close()
	ios, _, out, errOut := iostreams.Test()
	env := map[string]string{cmdutil.EnvAdminKey: "k"}
	err := requestsRun(&Options{IO: ios, Now: time.Now, Getenv: func(k string) string { return env[k] }, Server: srv.URL, Limit: 50,
		Follow: true, JSON: true, Ctx: ctx, PollEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, `"id":"c1"`) || !strings.Contains(got, `"id":"l8"`) || strings.Contains(got, `"id":"l7"`) ||
		!strings.Contains(errOut.String(), "now answers from its own request log") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", got, errOut)
	}
}
