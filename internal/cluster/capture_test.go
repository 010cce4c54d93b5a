package cluster

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/reqlog"
)

func newCapture(key string, now time.Time, run, keep time.Duration) reqlog.Capture {
	return reqlog.Capture{Key: key, SampleRate: 1, Created: now, Until: now.Add(run), Keep: keep,
		KeepSeconds: int64(keep / time.Second)}
}

func captureByID(t *testing.T, list []reqlog.Capture, id int64) reqlog.Capture {
	t.Helper()
	for _, c := range list {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("capture %d not listed: %+v", id, list)
	return reqlog.Capture{}
}

// A capture started through one relay is listed by the other, with an id
// unique across the relays and above the local databases' ids; stopped
// through the other, it is stopped for both; each relay's count is listed
// by either, summed.
func TestClusterCapturesSharedByRelays(t *testing.T) {
	rd := clustertest.Start(t)
	cfg := clusterCfg(rd, 15)
	a, b := newMember(t, cfg, false), newMember(t, cfg, false)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)

	ca, err := a.AddCapture(ctx, newCapture("alice", now, time.Hour, 90*time.Minute+500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.AddCapture(ctx, newCapture("bob", now, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ca.ID <= CaptureIDBase || cb.ID <= CaptureIDBase || ca.ID == cb.ID {
		t.Fatalf("ids %d and %d: want distinct, above %d", ca.ID, cb.ID, CaptureIDBase)
	}
	onB, err := b.Captures(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(onB) != 2 || onB[0].ID != cb.ID {
		t.Fatalf("B lists %+v; want both, newest first", onB)
	}
	got := captureByID(t, onB, ca.ID)
	if got.Key != "alice" || !got.Active(now) || got.Keep != ca.Keep || !got.Expires().Equal(ca.Expires()) || got.Captured != 0 {
		t.Fatalf("A's capture read on B: %+v; started %+v", got, ca)
	}

	if err := a.ReportCaptured(ctx, []reqlog.Capture{{ID: ca.ID, Captured: 3, Until: ca.Until, Keep: ca.Keep}}); err != nil {
		t.Fatal(err)
	}
	if err := b.ReportCaptured(ctx, []reqlog.Capture{{ID: ca.ID, Captured: 2, Until: ca.Until, Keep: ca.Keep}}); err != nil {
		t.Fatal(err)
	}
	stopAt := now.Add(time.Minute)
	if ok, err := b.StopCapture(ctx, ca.ID, stopAt); err != nil || !ok {
		t.Fatalf("stop A's capture on B: %v %v", ok, err)
	}
	if ok, err := a.StopCapture(ctx, ca.ID, stopAt); err != nil || ok {
		t.Fatalf("stop it again: %v %v; want false", ok, err)
	}
	if ok, err := a.StopCapture(ctx, CaptureIDBase+999, stopAt); err != nil || ok {
		t.Fatalf("stop an unknown capture: %v %v; want false", ok, err)
	}
	onA, err := a.Captures(ctx, stopAt)
	if err != nil {
		t.Fatal(err)
	}
	got = captureByID(t, onA, ca.ID)
	want := map[string]int64{a.ID(): 3, b.ID(): 2}
	if !got.Stopped || got.Active(stopAt) || !got.Until.Equal(stopAt) || got.Captured != 5 || !maps.Equal(got.CapturedBy, want) {
		t.Fatalf("stopped capture on A: %+v; want stopped at %v, captured %v", got, stopAt, want)
	}
	if bob := captureByID(t, onA, cb.ID); !bob.Active(stopAt) || bob.CapturedBy != nil {
		t.Fatalf("B's capture changed: %+v", bob)
	}
}

// A capture whose bodies expired (Until + Keep) is dropped from the
// cluster's list for good, and its counts expire with it.
func TestClusterCapturesExpire(t *testing.T) {
	rd := clustertest.Start(t)
	a := newMember(t, clusterCfg(rd, 15), false)
	ctx := context.Background()
	now := time.Now()
	old, err := a.AddCapture(ctx, newCapture("alice", now, time.Minute, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddCapture(ctx, newCapture("bob", now, time.Hour, time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := now.Add(3 * time.Minute)
	list, err := a.Captures(ctx, later)
	if err != nil || len(list) != 1 || list[0].Key != "bob" {
		t.Fatalf("after alice's expired: %+v %v", list, err)
	}
	// Read at the real time again: the expired one was removed, not hidden.
	if list, err = a.Captures(ctx, now); err != nil || len(list) != 1 {
		t.Fatalf("expired capture still stored: %+v %v", list, err)
	}
	old.Until = now.Add(-2 * time.Hour)
	old.Captured = 1
	if err := a.ReportCaptured(ctx, []reqlog.Capture{old}); err != nil {
		t.Fatal(err)
	}
	if key := "test:capture:" + strconv.FormatInt(old.ID, 10) + ":n"; rd.Exists(key) {
		t.Fatalf("%s kept after its capture's bodies expired", key)
	}
	if !rd.Exists("test:captures") {
		t.Fatal("the captures hash has no entry kept")
	}
}

// While Redis is unreachable the cluster's captures cannot be read or
// changed: the caller (the app) keeps the last set it read.
func TestClusterCapturesRedisDown(t *testing.T) {
	rd := clustertest.Start(t)
	a := newMember(t, clusterCfg(rd, 15), false)
	ctx := context.Background()
	rd.Stop()
	if _, err := a.AddCapture(ctx, newCapture("alice", time.Now(), time.Hour, time.Hour)); err == nil {
		t.Fatal("added a capture with Redis down")
	}
	if _, err := a.Captures(ctx, time.Now()); err == nil {
		t.Fatal("listed captures with Redis down")
	}
}
