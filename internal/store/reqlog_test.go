package store

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// failoverRecord is a request that a 401 on acct-a sent to acct-b.
func failoverRecord(id string, at time.Time) usage.Record {
	rec := usage.Record{Time: at, RequestID: id, KeyHash: usage.HashKey("relay-key-value"), KeyName: "alice", AccountID: "acct-b",
		Platform: "claude", Model: "claude-sonnet-4-5", Usage: provider.Usage{InputTokens: 10, OutputTokens: 5}, Status: 200,
		Latency: 900 * time.Millisecond, TTFB: 300 * time.Millisecond, Stream: true, Attempts: 2, CostMicros: 1234, CostKnown: true}
	rec.UserAgent, rec.ClientAddr, rec.Route, rec.Dialect = "claude-cli/2.0", netip.MustParseAddr("10.1.2.3"), "/v1/messages", "anthropic"
	rec.ServedModel, rec.QueueWait = "claude-sonnet-4-5-20250929", 40*time.Millisecond
	rec.Request.Add(0, usage.Attempt{Account: "acct-a", Status: 401, Verdict: "unavailable", Reason: "unauthorized (401)", Message: "invalid x-api-key", End: 100 * time.Millisecond})
	rec.Request.Add(1, usage.Attempt{Account: "acct-b", Status: 200, Verdict: "ok", End: 900 * time.Millisecond})
	return rec
}

func TestRequestLogRoundTrip(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	// Served as asked, named so: the log shows no second model.
	plain := usage.Record{Time: now, RequestID: "req_plain", KeyName: "bob", AccountID: "acct-a", Platform: "claude", Model: "m", ServedModel: "m", Status: 200, Attempts: 1}
	plain.Request.Add(0, usage.Attempt{Account: "acct-a", Status: 200, Verdict: "ok"})
	failed := usage.Record{Time: now, RequestID: "req_failed", KeyName: "bob", AccountID: "acct-c", Platform: "claude", Model: "m", Status: 529, Attempts: 1, Error: "upstream 529"}
	failed.Request.Add(0, usage.Attempt{Account: "acct-c", Status: 529, Verdict: "overloaded"})
	if err := db.InsertUsage(ctx, []usage.Record{failoverRecord("req_fo", now), plain, failed}); err != nil {
		t.Fatal(err)
	}
	d, err := db.Request(ctx, "req_fo")
	if err != nil {
		t.Fatal(err)
	}
	r := d.RequestRow
	if r.Key != "alice" || r.Client != "10.1.2.3" || r.UserAgent != "claude-cli/2.0" || r.Route != "/v1/messages" || r.Dialect != "anthropic" ||
		r.ServedModel != "claude-sonnet-4-5-20250929" || r.QueueMs != 40 || r.TTFBMs != 300 || r.LatencyMs != 900 || !r.Stream ||
		r.CostUSD == nil || *r.CostUSD != 0.001234 || r.Account != "acct-b" || d.Bodies != nil {
		t.Fatalf("row: %+v", r)
	}
	if len(r.Attempts) != 2 || r.Attempts[0] != (AttemptRow{Account: "acct-a", Status: 401, Verdict: "unavailable", Reason: "unauthorized (401)", Message: "invalid x-api-key", EndMs: 100}) ||
		r.Attempts[1].Account != "acct-b" || r.Attempts[1].Status != 200 {
		t.Fatalf("attempts: %+v", r.Attempts)
	}
	if p, err := db.Request(ctx, "req_plain"); err != nil || p.ServedModel != "" {
		t.Fatalf("a request served as asked: served model %q (%v), want \"\"", p.ServedModel, err)
	}
	ids := func(q RequestQuery) string {
		t.Helper()
		rows, err := db.Requests(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, r := range rows {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		name string
		q    RequestQuery
		want string
	}{
		{"all newest first", RequestQuery{}, "req_failed,req_plain,req_fo"},
		{"account tried and left", RequestQuery{Account: "acct-a"}, "req_plain,req_fo"},
		{"account served", RequestQuery{Account: "acct-b"}, "req_fo"},
		{"key", RequestQuery{Key: "alice"}, "req_fo"},
		{"errors", RequestQuery{Errors: true}, "req_failed"},
		{"status", RequestQuery{Status: 200}, "req_plain,req_fo"},
		{"served model", RequestQuery{Model: "claude-sonnet-4-5-20250929"}, "req_fo"},
		{"page", RequestQuery{Limit: 2}, "req_failed,req_plain"},
		{"since", RequestQuery{From: now.Add(time.Minute)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(tt.q); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	first, _ := db.Requests(ctx, RequestQuery{Limit: 2})
	if got := ids(RequestQuery{Before: first[1].Seq}); got != "req_fo" {
		t.Fatalf("next page %q", got)
	}
	if got := ids(RequestQuery{After: first[1].Seq}); got != "req_failed" {
		t.Fatalf("follow %q", got)
	}
	if _, err := db.Request(ctx, "req_none"); err != ErrNoRow {
		t.Fatalf("missing: %v", err)
	}
}

func TestRequestLogBodiesAndRetention(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	old := failoverRecord("req_old", now.Add(-8*24*time.Hour))
	old.Bodies = &usage.Bodies{CaptureID: 1, Request: []byte(`{"a":1}`), Response: []byte("event: x\n\n"), Expires: now.Add(time.Hour)}
	fresh := failoverRecord("req_new", now)
	fresh.Bodies = &usage.Bodies{CaptureID: 1, RequestHeader: "User-Agent: x\n", Request: []byte(`{"b":2}`), Response: []byte("data: y\n\n"), ResponseTruncated: true, Expires: now.Add(time.Hour)}
	expired := failoverRecord("req_expired", now)
	expired.Bodies = &usage.Bodies{CaptureID: 2, Request: []byte(`{"c":3}`), Expires: now.Add(-time.Minute)}
	if err := db.InsertUsage(ctx, []usage.Record{old, fresh, expired}); err != nil {
		t.Fatal(err)
	}
	d, err := db.Request(ctx, "req_new")
	if err != nil || d.Bodies == nil || d.Bodies.Request != `{"b":2}` || d.Bodies.Response != "data: y\n\n" || !d.Bodies.ResponseTruncated || d.Bodies.RequestHeader != "User-Agent: x\n" {
		t.Fatalf("bodies: %+v %v", d.Bodies, err)
	}
	if _, err := db.PruneRequestsStep(ctx, now.Add(-7*24*time.Hour), now, 1000, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Request(ctx, "req_old"); err != ErrNoRow {
		t.Fatalf("a row past retention was kept: %v", err)
	}
	var n int
	db.conn().QueryRow(`SELECT COUNT(*) FROM request_bodies WHERE request_id IN ('req_old', 'req_expired')`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d captured bodies kept past their row's retention or their expiry", n)
	}
	if d, err := db.Request(ctx, "req_expired"); err != nil || d.Bodies != nil {
		t.Fatalf("expired bodies still served: %+v %v", d.Bodies, err)
	}
	if d, _ := db.Request(ctx, "req_new"); d.Bodies == nil {
		t.Fatal("bodies within their retention were deleted")
	}
}

func TestRequestLogRowCap(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	var recs []usage.Record
	for i := range 10 {
		recs = append(recs, failoverRecord("req_"+string(rune('a'+i)), now))
	}
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := db.PruneRequestsStep(ctx, now.Add(-time.Hour), now, 4, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	rows, _ := db.Requests(ctx, RequestQuery{})
	if len(rows) != 4 || rows[0].ID != "req_j" || rows[3].ID != "req_g" {
		t.Fatalf("after the cap: %d rows, %+v", len(rows), rows)
	}
}

// RequestRowOf is the row the database reads back (the cluster's shared
// index serves it as the request log of every relay).
func TestRequestRowOfEqualsStored(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	plain := usage.Record{Time: time.Now(), RequestID: "req_plain", KeyHash: usage.HashKey("k2"), AccountID: "acct-a", Platform: "claude", Model: "m", ServedModel: "m", Status: 200, Attempts: 1}
	plain.Request.Add(0, usage.Attempt{Account: "acct-a", Status: 200, Verdict: "ok"})
	recs := []usage.Record{failoverRecord("req_fo", time.Now()), plain}
	if err := db.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		d, err := db.Request(ctx, recs[i].RequestID)
		if err != nil {
			t.Fatal(err)
		}
		d.Seq = 0
		if got := RequestRowOf(&recs[i]); !reflect.DeepEqual(got, d.RequestRow) {
			t.Fatalf("RequestRowOf:\n got  %+v\n want %+v", got, d.RequestRow)
		}
	}
}
