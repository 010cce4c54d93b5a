package cluster

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// reqRecord is a request recorded at at by key on account (a failover from
// acct-x when failover), ending with status.
func reqRecord(id string, at time.Time, key, account, model string, status int, failover bool) usage.Record {
	r := usage.Record{Time: at, RequestID: id, KeyHash: "h-" + key, KeyName: key, AccountID: account, Platform: "claude",
		Model: model, Status: status, Attempts: 1, Latency: 300 * time.Millisecond}
	if failover {
		r.Attempts = 2
		r.Request.Add(0, usage.Attempt{Account: "acct-x", Status: 401, Verdict: "unavailable", Reason: "unauthorized (401)", End: 50 * time.Millisecond})
		r.Request.Add(1, usage.Attempt{Account: account, Status: status, Verdict: "ok", End: 300 * time.Millisecond})
	} else {
		r.Request.Add(0, usage.Attempt{Account: account, Status: status, Verdict: "ok", End: 300 * time.Millisecond})
	}
	return r
}

// Whether reqRecord's request failed over.
const (
	direct     = false
	failedOver = true
)

func waitWritten(t *testing.T, s *RequestShare, n int64) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d rows written", n), func() bool { return s.Written() >= n })
}

func ids(rows []store.RequestRow) string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return strings.Join(out, " ")
}

// Two relays append their rows; either one lists both's, newest first, with
// the filters of the admin API, pages that continue where the last ended,
// and each row naming the relay that served it.
func TestClusterRequestLogBothRelays(t *testing.T) {
	rd := clustertest.Start(t)
	cfg := clusterCfg(rd, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	sa, sb := a.ShareRequests(), b.ShareRequests()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	// Appended in order (each relay's rows after the previous ones are
	// written), so the stream's order is the ids' order.
	steps := []struct {
		s   *RequestShare
		rec usage.Record
	}{
		{sa, reqRecord("r1", base, "alice", "acct-a", "m1", 200, direct)},
		{sb, reqRecord("r2", base.Add(time.Minute), "bob", "acct-b", "m2", 200, direct)},
		{sa, reqRecord("r3", base.Add(2*time.Minute), "alice", "acct-b", "m1", 529, direct)},
		{sb, reqRecord("r4", base.Add(3*time.Minute), "alice", "acct-a", "m2", 200, failedOver)},
		{sa, reqRecord("r5", base.Add(4*time.Minute), "bob", "acct-a", "m1", 429, direct)},
	}
	written := map[*RequestShare]int64{}
	for _, st := range steps {
		st.s.Record(st.rec)
		written[st.s]++
		waitWritten(t, st.s, written[st.s])
	}
	ctx := context.Background()
	list := func(s *RequestShare, q store.RequestQuery) RequestPage {
		t.Helper()
		p, err := s.Requests(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, s := range []*RequestShare{sa, sb} {
		for _, tt := range []struct {
			q    store.RequestQuery
			want string
		}{
			{store.RequestQuery{}, "r5 r4 r3 r2 r1"},
			{store.RequestQuery{Key: "alice"}, "r4 r3 r1"},
			{store.RequestQuery{Account: "acct-x"}, "r4"}, // failed over from
			{store.RequestQuery{Account: "acct-a"}, "r5 r4 r1"},
			{store.RequestQuery{Model: "m2"}, "r4 r2"},
			{store.RequestQuery{Errors: true}, "r5 r3"},
			{store.RequestQuery{Status: 529}, "r3"},
			{store.RequestQuery{From: base.Add(90 * time.Second)}, "r5 r4 r3"},
			{store.RequestQuery{From: base.Add(30 * time.Second), Until: base.Add(150 * time.Second)}, "r3 r2"},
			{store.RequestQuery{Key: "alice", Errors: true}, "r3"},
		} {
			if got := ids(list(s, tt.q).Rows); got != tt.want {
				t.Errorf("%+v: got %q, want %q", tt.q, got, tt.want)
			}
		}
	}
	// Paging: two rows a page, continuing at Next, then following.
	p1 := list(sb, store.RequestQuery{Limit: 2})
	p2 := list(sb, store.RequestQuery{Limit: 2, Before: p1.Next})
	p3 := list(sb, store.RequestQuery{Limit: 2, Before: p2.Next})
	if ids(p1.Rows) != "r5 r4" || ids(p2.Rows) != "r3 r2" || ids(p3.Rows) != "r1" || p3.Next != 0 || p1.Stopped {
		t.Fatalf("pages %q %q %q (next %d)", ids(p1.Rows), ids(p2.Rows), ids(p3.Rows), p3.Next)
	}
	if f := list(sa, store.RequestQuery{After: p2.Rows[0].Seq}); ids(f.Rows) != "r4 r5" {
		t.Fatalf("following after r3: %q, want oldest first \"r4 r5\"", ids(f.Rows))
	}
	// Each row in full, naming its relay.
	rows := list(sa, store.RequestQuery{Key: "alice", Model: "m2"}).Rows
	want := store.RequestRowOf(&steps[3].rec)
	want.Seq, want.Relay = rows[0].Seq, b.ID()
	if len(rows) != 1 || !reflect.DeepEqual(rows[0], want) {
		t.Fatalf("row r4:\n got  %+v\n want %+v", rows, want)
	}
	for _, s := range []*RequestShare{sa, sb} {
		r, err := s.Request(ctx, "r3")
		if err != nil || r.Relay != a.ID() || r.Status != 529 || r.Key != "alice" {
			t.Fatalf("request r3 from %s: %+v, %v", s.Relay(), r, err)
		}
		if _, err := s.Request(ctx, "r9"); !errors.Is(err, store.ErrNoRow) {
			t.Fatalf("request r9: %v, want ErrNoRow", err)
		}
	}
}

// A read stops after requestScanMax entries when the page is not full, and
// says so; its Next continues the scan.
func TestClusterRequestLogScanBound(t *testing.T) {
	rd := clustertest.Start(t)
	c := newMember(t, clusterCfg(rd, 15), false)
	s := c.ShareRequests()
	now := time.Now().Truncate(time.Millisecond)
	s.Record(reqRecord("old-error", now.Add(-time.Minute), "alice", "acct-a", "m", 500, direct))
	waitWritten(t, s, 1)
	n := requestScanMax + 100
	for i := 0; i < n; i++ {
		s.Record(reqRecord(fmt.Sprintf("ok-%d", i), now, "alice", "acct-a", "m", 200, direct))
	}
	waitWritten(t, s, int64(n+1))
	ctx := context.Background()
	p, err := s.Requests(ctx, store.RequestQuery{Errors: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) != 0 || !p.Stopped || p.Next == 0 || p.Scanned != requestScanMax {
		t.Fatalf("first read: %d rows, stopped %v, next %d, scanned %d; want none, stopped after %d", len(p.Rows), p.Stopped, p.Next, p.Scanned, requestScanMax)
	}
	p, err = s.Requests(ctx, store.RequestQuery{Errors: true, Before: p.Next})
	if err != nil {
		t.Fatal(err)
	}
	if ids(p.Rows) != "old-error" || p.Stopped {
		t.Fatalf("continued read: %q stopped %v, want the old error", ids(p.Rows), p.Stopped)
	}
}

// While Redis is down the reads fail with the reason (the admin API then
// answers from the relay's own rows); rows recorded meanwhile wait and are
// appended when it answers again. The stream is capped.
func TestClusterRequestLogOutageAndCap(t *testing.T) {
	rd := clustertest.Start(t)
	c := newMember(t, clusterCfg(rd, 15), false)
	s := c.ShareRequests()
	s.SetLimits(0, 150)
	now := time.Now()
	rd.Stop()
	eventually(t, 10*time.Second, "redis is noticed down", c.Degraded)
	ctx := context.Background()
	if _, err := s.Requests(ctx, store.RequestQuery{}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("list while redis is down: %v, want the outage", err)
	}
	if _, err := s.Request(ctx, "r1"); err == nil || errors.Is(err, store.ErrNoRow) {
		t.Fatalf("detail while redis is down: %v, want the outage", err)
	}
	for i := 0; i < 1000; i++ {
		s.Record(reqRecord(fmt.Sprintf("r%d", i), now, "alice", "acct-a", "m", 200, direct))
	}
	rd.Restart()
	waitWritten(t, s, 1000)
	p, err := s.Requests(ctx, store.RequestQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole nodes of the stream: at least the cap is kept,
	// and far less than what was written.
	if len(p.Rows) < 150 || len(p.Rows) > 500 || p.Rows[0].ID != "r999" {
		t.Fatalf("after the outage: %d rows (newest %q); want the newest kept, about 150", len(p.Rows), p.Rows[0].ID)
	}
	// The id keys of a stream at its cap expire after twice its span (a
	// minute at least), not with request_log_days: they stay bounded.
	if ttl := c.rdb.TTL(ctx, c.requestIDKey("r999")).Val(); ttl <= 0 || ttl > 5*time.Minute {
		t.Fatalf("id key of a capped stream expires in %v, want about a minute", ttl)
	}
	if r, err := s.Request(ctx, "r999"); err != nil || r.ID != "r999" {
		t.Fatalf("the newest row by id: %+v %v", r, err)
	}
}

// Rows older than request_log_days are trimmed from the stream.
func TestClusterRequestLogRetention(t *testing.T) {
	rd := clustertest.Start(t)
	c := newMember(t, clusterCfg(rd, 15), false)
	s := c.ShareRequests()
	for i := 0; i < 300; i++ {
		s.Record(reqRecord(fmt.Sprintf("r%d", i), time.Now(), "alice", "acct-a", "m", 200, direct))
	}
	waitWritten(t, s, 300)
	// A retention shorter than the rows' age: the next append trims them.
	time.Sleep(20 * time.Millisecond) // the rows must be older than the retention below (no assertion is timed)
	s.SetLimits(10*time.Millisecond, 0)
	s.Record(reqRecord("new", time.Now(), "alice", "acct-a", "m", 200, direct))
	waitWritten(t, s, 301)
	p, err := s.Requests(context.Background(), store.RequestQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) >= 300 || p.Rows[0].ID != "new" {
		t.Fatalf("after trimming by age: %d rows, newest %q", len(p.Rows), p.Rows[0].ID)
	}
}

// BenchmarkRequestShareRecord is what the request path pays for the shared
// request log: one append to the queue.
func BenchmarkRequestShareRecord(b *testing.B) {
	s := &RequestShare{wake: make(chan struct{}, 1), maxQueue: maxRequestQueue}
	rec := reqRecord("req_bench", time.Now(), "alice", "acct-a", "m", 200, failedOver)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%maxRequestQueue == 0 {
			s.mu.Lock()
			s.queue = s.queue[:0]
			s.mu.Unlock()
		}
		s.Record(rec)
	}
}
