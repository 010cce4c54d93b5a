package e2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
)

// relayIDOf is r's id in the cluster, as its admin health names it.
func relayIDOf(t *testing.T, r *relayUT) string {
	t.Helper()
	var h struct {
		Relay struct {
			ID string `json:"relay_id"`
		} `json:"relay"`
	}
	if st, raw := adminCall(t, r, "GET", "health", "", &h); st != 200 || h.Relay.ID == "" {
		t.Fatalf("admin health: %d %s", st, raw)
	}
	return h.Relay.ID
}

// newestServedBy is the newest of alice's cluster rows that relay served
// (its zero value when none).
func newestServedBy(t *testing.T, r *relayUT, relay string) store.RequestRow {
	t.Helper()
	var p admin.RequestPage
	if st, raw := adminCall(t, r, "GET", "requests?"+url.Values{"key": {"alice"}}.Encode(), "", &p); st != 200 {
		t.Fatalf("list requests: %d %s", st, raw)
	}
	for _, row := range p.Requests {
		if row.Relay == relay {
			return row
		}
	}
	return store.RequestRow{}
}

// untilRowOn sends alice's requests through via, one at a time, until the
// newest one via served is captured (or not, as want says), and returns it.
func untilRowOn(t *testing.T, via *relayUT, viaID string, captured bool) store.RequestRow {
	t.Helper()
	var row store.RequestRow
	waitFor(t, 20*time.Second, fmt.Sprintf("a request of alice's on %s with captured=%v", viaID, captured), func() bool {
		before := newestServedBy(t, via, viaID).ID
		streamAs(t, via, aliceKey)
		// The row is recorded after the answer: wait for it, then judge it.
		waitFor(t, 5*time.Second, "the request's row", func() bool {
			row = newestServedBy(t, via, viaID)
			return row.ID != "" && row.ID != before
		})
		return row.Captured == captured
	})
	return row
}

// listedOn returns capture id as r lists it.
func listedOn(t *testing.T, r *relayUT, id int64) reqlog.Capture {
	t.Helper()
	var l admin.CaptureList
	if st, raw := adminCall(t, r, "GET", "captures", "", &l); st != 200 {
		t.Fatalf("list captures: %d %s", st, raw)
	}
	for _, c := range l.Captures {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("capture %d not listed: %+v", id, l.Captures)
	return reqlog.Capture{}
}

// A capture started through A takes alice's requests served by B (B holds
// the bodies, A's detail says so); either relay lists it with B's count;
// stopped through B, A stops taking alice's requests too.
func TestClusterCaptureStartedOnOneRelayAppliesOnAll(t *testing.T) {
	rd := clustertest.Start(t)
	up := upstream(t, &fakeupstream.Anthropic{Keys: []string{captureAcct}, Text: "captured answer"})
	cfg := fmt.Sprintf("admin_keys = [%q]\n\n[[keys]]\nname = \"alice\"\nkey = %q\n\n", e2eAdminKey, aliceKey) +
		clusterTable(rd, 15) + claudeAPIAccount("acct-1", up.URL, captureAcct, 100)
	rs := startRelays(t, 2, cfg)
	a, b := rs[0], rs[1]
	aID, bID := relayIDOf(t, a), relayIDOf(t, b)

	var c reqlog.Capture
	if st, raw := adminCall(t, a, "POST", "captures", `{"key":"alice","for":"1h"}`, &c); st != 201 || c.LocalTo != "" {
		t.Fatalf("start a capture on A: %d %s", st, raw)
	}
	row := untilRowOn(t, b, bID, true)
	var onB, onA admin.RequestDetailResponse
	if st, raw := adminCall(t, b, "GET", "requests/"+row.ID, "", &onB); st != 200 || onB.Bodies == nil ||
		onB.Bodies.CaptureID != c.ID || onB.BodiesOn != "" {
		t.Fatalf("alice's request on B, captured by %d: %d %s", c.ID, st, raw)
	}
	if st, raw := adminCall(t, a, "GET", "requests/"+row.ID, "", &onA); st != 200 || onA.Bodies != nil || onA.BodiesOn != bID {
		t.Fatalf("alice's request on A: %d %s", st, raw)
	}
	for _, r := range rs {
		waitFor(t, 10*time.Second, "B's count listed", func() bool {
			got := listedOn(t, r, c.ID)
			return got.Active(time.Now()) && got.LocalTo == "" && got.CapturedBy[bID] >= 1 && got.Captured >= got.CapturedBy[bID]
		})
	}

	var stopped admin.CaptureList
	if st, raw := adminCall(t, b, "POST", fmt.Sprintf("captures/%d/stop", c.ID), "", &stopped); st != 200 {
		t.Fatalf("stop A's capture on B: %d %s", st, raw)
	}
	for _, r := range rs {
		if got := listedOn(t, r, c.ID); !got.Stopped {
			t.Fatalf("listed after the stop: %+v", got)
		}
	}
	untilRowOn(t, a, aID, false)
}
