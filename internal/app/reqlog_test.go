package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

var errRedisDown = errors.New("redis: connection refused")

// fakeCaptures is a cluster's captures held in memory; down makes every
// call fail as with Redis unreachable.
type fakeCaptures struct {
	mu   sync.Mutex
	down bool
	// known makes setDown report the outage (Degraded) instead; asked counts
	// the calls made to Redis during it.
	known, degraded bool
	asked           int
	list            []reqlog.Capture
	stopped         []int64
	reported        map[int64]int64
	reports         int
}

func (f *fakeCaptures) AddCapture(_ context.Context, c reqlog.Capture) (reqlog.Capture, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countAsked()
	if f.down {
		return c, errRedisDown
	}
	c.ID = cluster.CaptureIDBase + int64(len(f.list)) + 1
	f.list = append(f.list, c)
	return c, nil
}

func (f *fakeCaptures) StopCapture(_ context.Context, id int64, now time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countAsked()
	if f.down {
		return false, errRedisDown
	}
	f.stopped = append(f.stopped, id)
	return true, nil
}

func (f *fakeCaptures) Captures(context.Context, time.Time) ([]reqlog.Capture, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countAsked()
	if f.down {
		return nil, errRedisDown
	}
	return slices.Clone(f.list), nil
}

func (f *fakeCaptures) ReportCaptured(_ context.Context, list []reqlog.Capture) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countAsked()
	if f.down {
		return errRedisDown
	}
	f.reports += len(list)
	for _, c := range list {
		f.reported[c.ID] = c.Captured
	}
	return nil
}

func (f *fakeCaptures) ID() string { return "relay-a" }

// Degraded reports a known outage.
func (f *fakeCaptures) Degraded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.degraded
}

func (f *fakeCaptures) countAsked() {
	if f.degraded {
		f.asked++
	}
}

// setDown starts or ends an outage: the calls fail, or (known) the
// cluster reports it.
func (f *fakeCaptures) setDown(down bool) {
	f.mu.Lock()
	if f.known {
		f.degraded = down
	} else {
		f.down = down
	}
	f.mu.Unlock()
}

// lastSet keeps the set the control last applied.
type lastSet struct{ s *reqlog.Set }

func (l *lastSet) SetCaptures(s *reqlog.Set) { l.s = s }

func (l *lastSet) ids() []int64 {
	var out []int64
	for _, c := range l.s.List() {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

func newCaptureControl(t *testing.T) (*captureControl, *fakeCaptures, *lastSet) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fakeCaptures{reported: map[int64]int64{}}
	set := &lastSet{}
	return &captureControl{db: db, cluster: f, relay: set, now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, f, set
}

func spec(key string) reqlog.Capture {
	now := time.Now()
	return reqlog.Capture{Key: key, SampleRate: 1, Created: now, Until: now.Add(time.Hour), Keep: time.Hour}
}

// In a cluster the relay applies the cluster's captures and its own
// database's (marked local to it); while Redis is unreachable it keeps
// the cluster's set last read, and a capture started then goes to its
// database, local to it. An outage the cluster knows of (Degraded) is the
// same without asking Redis.
func TestCaptureControlClusterAndOutage(t *testing.T) {
	for _, known := range []bool{false, true} {
		t.Run(fmt.Sprintf("known=%v", known), func(t *testing.T) { testCaptureOutage(t, known) })
	}
}

func testCaptureOutage(t *testing.T, known bool) {
	cc, f, set := newCaptureControl(t)
	f.known = known
	ctx := context.Background()
	shared, err := cc.StartCapture(ctx, spec("alice"))
	if err != nil || shared.ID <= cluster.CaptureIDBase || shared.LocalTo != "" {
		t.Fatalf("started %+v %v; want a cluster capture", shared, err)
	}
	own, err := cc.db.AddCapture(ctx, spec("bob")) // `ccrelay capture on` without --server
	if err != nil {
		t.Fatal(err)
	}
	if dbErr, clusterErr := cc.refresh(ctx); dbErr != nil || clusterErr != nil {
		t.Fatal(dbErr, clusterErr)
	}
	if got := set.ids(); !slices.Equal(got, []int64{own.ID, shared.ID}) {
		t.Fatalf("applied %v; want the local %d and the cluster's %d", got, own.ID, shared.ID)
	}
	list, err := cc.Captures(ctx)
	if err != nil || len(list) != 2 || list[0].ID != shared.ID || list[0].LocalTo != "" || list[1].LocalTo != "relay-a" {
		t.Fatalf("listed %+v %v", list, err)
	}

	f.setDown(true)
	if dbErr, clusterErr := cc.refresh(ctx); dbErr != nil || clusterErr == nil {
		t.Fatalf("refresh with Redis down: %v %v", dbErr, clusterErr)
	}
	if got := set.ids(); !slices.Equal(got, []int64{own.ID, shared.ID}) {
		t.Fatalf("applied %v in the outage; want the last set kept", got)
	}
	if _, err := cc.Captures(ctx); err == nil {
		t.Fatalf("listing in the outage: %v", err)
	}
	if _, err := cc.StopCapture(ctx, shared.ID); err == nil {
		t.Fatalf("stopping the cluster's capture in the outage: %v", err)
	}
	during, err := cc.StartCapture(ctx, spec("carol"))
	if err != nil || during.ID >= cluster.CaptureIDBase || during.LocalTo != "relay-a" {
		t.Fatalf("started in the outage: %+v %v; want a local capture", during, err)
	}
	if got := set.ids(); !slices.Contains(got, during.ID) || !slices.Contains(got, shared.ID) {
		t.Fatalf("applied %v; want carol's and the cluster's last read", got)
	}

	if f.asked != 0 {
		t.Fatalf("Redis asked %d times during a known outage", f.asked)
	}
	f.setDown(false)
	f.mu.Lock()
	f.list = nil // stopped elsewhere and expired meanwhile
	f.mu.Unlock()
	if dbErr, clusterErr := cc.refresh(ctx); dbErr != nil || clusterErr != nil {
		t.Fatal(dbErr, clusterErr)
	}
	if got := set.ids(); !slices.Equal(got, []int64{own.ID, during.ID}) {
		t.Fatalf("applied %v after the outage", got)
	}
}

// Ids from cluster.CaptureIDBase up are the cluster's and are stopped
// there; lower ones are the relay's database's.
func TestCaptureControlStopRoutesByID(t *testing.T) {
	cc, f, set := newCaptureControl(t)
	ctx := context.Background()
	own, err := cc.db.AddCapture(ctx, spec("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cc.StopCapture(ctx, own.ID); err != nil || !ok || len(f.stopped) != 0 {
		t.Fatalf("stop local %d: %v %v; cluster stops %v", own.ID, ok, err, f.stopped)
	}
	if !set.s.Empty() {
		t.Fatalf("the stopped local capture is still applied: %+v", set.s.List())
	}
	if ok, err := cc.StopCapture(ctx, cluster.CaptureIDBase+4); err != nil || !ok || !slices.Equal(f.stopped, []int64{cluster.CaptureIDBase + 4}) {
		t.Fatalf("stop a cluster capture: %v %v; cluster stops %v", ok, err, f.stopped)
	}
}

// Each refresh writes this relay's count of each cluster capture when it
// changed, from the bodies its database holds.
func TestCaptureControlReportsCounts(t *testing.T) {
	cc, f, _ := newCaptureControl(t)
	ctx := context.Background()
	c, err := cc.StartCapture(ctx, spec("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if f.reported[c.ID] != 0 || f.reports != 1 {
		t.Fatalf("first report: %v (%d written)", f.reported, f.reports)
	}
	if _, err := cc.refresh(ctx); err != nil || f.reports != 1 {
		t.Fatalf("unchanged count written again: %d writes, %v", f.reports, err)
	}
	now := time.Now()
	rec := usage.Record{Time: now, RequestID: "req_1", KeyName: "alice", Status: 200}
	rec.Bodies = &usage.Bodies{CaptureID: c.ID, Request: []byte(`{}`), Expires: c.Expires()}
	if err := cc.db.InsertUsage(ctx, []usage.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.refresh(ctx); err != nil || f.reported[c.ID] != 1 || f.reports != 2 {
		t.Fatalf("after one capture: %v (%d written), %v", f.reported, f.reports, err)
	}
}
