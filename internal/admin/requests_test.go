package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// fakeClusterLog is the cluster's request log: rows by request id, the
// query it was asked, and an error while "Redis is down".
type fakeClusterLog struct {
	rows    []store.RequestRow
	next    int64
	stopped bool
	err     error
	asked   *store.RequestQuery
}

func (f *fakeClusterLog) Requests(_ context.Context, q store.RequestQuery) ([]store.RequestRow, int64, bool, error) {
	*f.asked = q
	if f.err != nil {
		return nil, 0, false, f.err
	}
	return f.rows, f.next, f.stopped, nil
}

func (f *fakeClusterLog) Request(_ context.Context, id string) (store.RequestRow, error) {
	if f.err != nil {
		return store.RequestRow{}, f.err
	}
	for _, r := range f.rows {
		if r.ID == id {
			return r, nil
		}
	}
	return store.RequestRow{}, store.ErrNoRow
}

func (f *fakeClusterLog) Relay() string { return "relay-here" }

// localRequests records rows in this relay's database: req_local (only
// here), req_mine (here and in the cluster, with captured bodies).
func localRequests(t *testing.T, db *store.DB) {
	t.Helper()
	now := time.Now()
	local := usage.Record{Time: now, RequestID: "req_local", KeyName: "carol", AccountID: "a", Platform: "claude", Model: "m", Status: 200, Attempts: 1}
	mine := usage.Record{Time: now, RequestID: "req_mine", KeyName: "alice", AccountID: "a", Platform: "claude", Model: "m", Status: 500, Attempts: 1}
	mine.Bodies = &usage.Bodies{CaptureID: 1, Request: []byte(`{"x":1}`), Response: []byte(`{"error":{}}`), Expires: now.Add(time.Hour)}
	if err := db.InsertUsage(context.Background(), []usage.Record{local, mine}); err != nil {
		t.Fatal(err)
	}
}

// The requests list answers from the cluster's log (scope cluster, with the
// filters passed on and the scan's stop said), and from this relay's own
// rows with the reason when the cluster cannot answer.
func TestRequestsFromTheCluster(t *testing.T) {
	var asked store.RequestQuery
	cl := &fakeClusterLog{asked: &asked, next: 77, stopped: true, rows: []store.RequestRow{
		{Seq: 99, ID: "req_other", Key: "alice", Status: 500, Relay: "relay-there", Attempts: []store.AttemptRow{}},
	}}
	f := newFixture(t, func(o *Options) { o.Requests = o.Usage.(*store.DB); o.ClusterRequests = cl })
	localRequests(t, f.db)
	code, b := f.do(t, http.MethodGet, Prefix+"requests?key=alice&errors=true&limit=5&before=123", "")
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, b)
	}
	page := decode[RequestPage](t, b)
	if page.Scope != store.ScopeCluster || page.ScopeReason != "" || !page.ScanStopped || page.Next != 77 ||
		len(page.Requests) != 1 || page.Requests[0].ID != "req_other" || page.Requests[0].Relay != "relay-there" {
		t.Fatalf("page: %s", b)
	}
	if asked.Key != "alice" || !asked.Errors || asked.Limit != 5 || asked.Before != 123 {
		t.Fatalf("the cluster was asked %+v", asked)
	}

	cl.err = errors.New("the cluster's redis is unreachable since 2026-12-07T20:00:00Z")
	code, b = f.do(t, http.MethodGet, Prefix+"requests", "")
	page = decode[RequestPage](t, b)
	if code != http.StatusOK || page.Scope != store.ScopeLocal || !strings.Contains(page.ScopeReason, "unreachable since") ||
		len(page.Requests) != 2 || page.ScanStopped {
		t.Fatalf("while redis is down: %d %s", code, b)
	}
}

// A request's row comes from the cluster; its bodies from this relay when it
// took them, else the answer names the relay that holds them.
func TestRequestDetailFromTheCluster(t *testing.T) {
	var asked store.RequestQuery
	cl := &fakeClusterLog{asked: &asked, rows: []store.RequestRow{
		{ID: "req_other", Key: "alice", Status: 500, Captured: true, Relay: "relay-there", Attempts: []store.AttemptRow{}},
		{ID: "req_mine", Key: "alice", Status: 500, Captured: true, Relay: "relay-here", Attempts: []store.AttemptRow{}},
		{ID: "req_plain", Key: "bob", Status: 200, Relay: "relay-there", Attempts: []store.AttemptRow{}},
	}}
	f := newFixture(t, func(o *Options) { o.Requests = o.Usage.(*store.DB); o.ClusterRequests = cl })
	localRequests(t, f.db)
	get := func(id string) RequestDetailResponse {
		t.Helper()
		code, b := f.do(t, http.MethodGet, Prefix+"requests/"+id, "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", id, code, b)
		}
		return decode[RequestDetailResponse](t, b)
	}
	if d := get("req_other"); d.Scope != store.ScopeCluster || d.BodiesOn != "relay-there" || d.Bodies != nil || d.Relay != "relay-there" || d.ThisRelay != "relay-here" {
		t.Fatalf("bodies on another relay: %+v", d)
	}
	if d := get("req_mine"); d.Scope != store.ScopeCluster || d.BodiesOn != "" || d.Bodies == nil || d.Bodies.Request != `{"x":1}` {
		t.Fatalf("bodies on this relay: %+v", d)
	}
	if d := get("req_plain"); d.Scope != store.ScopeCluster || d.BodiesOn != "" || d.Bodies != nil {
		t.Fatalf("no bodies: %+v", d)
	}
	if d := get("req_local"); d.Scope != store.ScopeLocal || d.ScopeReason != ReasonNotInCluster || d.Key != "carol" {
		t.Fatalf("only in this relay's log: %+v", d)
	}
	if code, b := f.do(t, http.MethodGet, Prefix+"requests/req_nowhere", ""); code != http.StatusNotFound {
		t.Fatalf("unknown request: %d %s", code, b)
	}
	cl.err = errors.New("the cluster's redis is unreachable since 2026-12-07T20:00:00Z")
	if d := get("req_mine"); d.Scope != store.ScopeLocal || !strings.Contains(d.ScopeReason, "unreachable since") || d.Bodies == nil {
		t.Fatalf("while redis is down: %+v", d)
	}
}
