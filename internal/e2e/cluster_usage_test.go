package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/store"
)

// adminUsage asks a relay's admin API for its usage report.
func adminUsage(t *testing.T, r *relayUT, query string) store.Report {
	t.Helper()
	req, _ := http.NewRequest("GET", r.URL+"/admin/v1/usage?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var rep store.Report
	if resp.StatusCode != 200 || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("GET usage?%s: %d %s", query, resp.StatusCode, b)
	}
	return rep
}

// Two relays on one Redis: traffic through both under two named keys, then
// the admin usage report on either relay (what `stats --server` and the
// dashboard read) shows the cluster's numbers, grouped by key and by
// account, equal to the sums of the two relays' own databases. With Redis
// stopped each answers with its own numbers, marked local, with the reason.
func TestClusterUsageSharedStats(t *testing.T) {
	rd := clustertest.Start(t)
	p := newPool(t)
	cfg := `admin_keys = ["` + adminKey + `"]` + "\n" + clusterTable(rd, 15) +
		claudeAPIAccount("a0", p.urls[0], "k0", 100) + claudeAPIAccount("a1", p.urls[1], "k1", 100) + `
[[keys]]
name = "alice"
key = "alice-key-0123456789"

[[keys]]
name = "bob"
key = "bob-key-0123456789"
`
	rs := startRelays(t, 2, cfg)
	// Uneven traffic: relay 0 gets 9 requests (6 alice, 3 bob), relay 1
	// gets 5 (1 alice, 4 bob), in several conversations.
	plan := []struct {
		relay int
		key   string
		n     int
	}{{0, "alice-key-0123456789", 6}, {0, "bob-key-0123456789", 3}, {1, "alice-key-0123456789", 1}, {1, "bob-key-0123456789", 4}}
	for _, step := range plan {
		for i := 0; i < step.n; i++ {
			c := rs[step.relay].anthropicClient(option.WithAPIKey(step.key), option.WithHeader("X-Claude-Code-Session-Id", fmt.Sprintf("conv-%d-%s-%d", step.relay, step.key[:3], i)))
			if _, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs[0].usageRows(9)
	rs[1].usageRows(5)
	both, err := store.OpenReadOnlyMany([]string{rs[0].DBPath, rs[1].DBPath})
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()

	waitFor(t, 10*time.Second, "the cluster's numbers on both relays", func() bool {
		return adminUsage(t, rs[0], "since=1h").Total.Requests == 14 && adminUsage(t, rs[1], "since=1h").Total.Requests == 14
	})
	for _, by := range []string{store.GroupKey, store.GroupAccount, store.GroupNone} {
		for i, r := range rs {
			rep := adminUsage(t, r, "since=1h&by="+by)
			if rep.Scope != store.ScopeCluster || rep.ScopeReason != "" || rep.Since == nil {
				t.Fatalf("relay %d by %q: scope %q %q since %v", i, by, rep.Scope, rep.ScopeReason, rep.Since)
			}
			want := store.NewReport("", *rep.Since, time.Now(), by)
			if err := both.FillReport(context.Background(), &want, func(h string) string { return h }); err != nil {
				t.Fatal(err)
			}
			if got, exp := sums(rep), sums(want); got != exp {
				t.Fatalf("relay %d by %q:\n got  %s\n want %s (the two databases)", i, by, got, exp)
			}
		}
	}
	if rep := adminUsage(t, rs[1], "since=1h&by=key"); len(rep.Groups) != 2 || rep.Groups[0].Name != "alice" || rep.Groups[0].Requests != 7 || rep.Groups[1].Name != "bob" || rep.Groups[1].Requests != 7 {
		t.Fatalf("by key: %+v", rep.Groups)
	}

	// A relay restarted counts nothing twice: it merges what it records,
	// never its database again.
	rs[0] = rs[0].Restart()
	c := rs[0].anthropicClient(option.WithAPIKey("alice-key-0123456789"))
	if _, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
		t.Fatal(err)
	}
	rs[0].usageRows(10)
	waitFor(t, 10*time.Second, "the request after the restart in the cluster's numbers", func() bool {
		return adminUsage(t, rs[1], "since=1h").Total.Requests == 15
	})
	rep := adminUsage(t, rs[0], "since=1h&by=account")
	want := store.NewReport("", *rep.Since, time.Now(), store.GroupAccount)
	if err := both.FillReport(context.Background(), &want, func(h string) string { return h }); err != nil {
		t.Fatal(err)
	}
	if got, exp := sums(rep), sums(want); got != exp || rep.Total.Requests != 15 {
		t.Fatalf("after a restart:\n got  %s\n want %s", got, exp)
	}

	rd.Stop()
	for i, r := range rs {
		waitFor(t, 5*time.Second, fmt.Sprintf("relay %d reports the outage", i), func() bool { return strings.HasPrefix(clusterHealth(t, r), "degraded: ") })
	}
	for i, own := range []int64{10, 5} {
		rep := adminUsage(t, rs[i], "since=1h&by=key")
		if rep.Scope != store.ScopeLocal || !strings.Contains(rep.ScopeReason, "unreachable") || rep.Total.Requests != own {
			t.Fatalf("relay %d with redis down: scope %q (%q), %d requests, want local and its own %d", i, rep.Scope, rep.ScopeReason, rep.Total.Requests, own)
		}
		if strings.Contains(rep.ScopeReason, rd.URL) || strings.Contains(rep.ScopeReason, fmt.Sprint(rd.Port)) {
			t.Fatalf("the reason names redis's address: %q", rep.ScopeReason)
		}
	}
}

// sums renders a report's numbers per group name, for comparison.
func sums(r store.Report) string {
	var b strings.Builder
	line := func(name string, g store.ReportGroup) {
		fmt.Fprintf(&b, "%s: req %d err %d in %d out %d cw %d cr %d cost %d/%d ok %d lat %d ttfb %d; ", name, g.Requests, g.Errors, g.InputTokens, g.OutputTokens,
			g.CacheCreationTokens, g.CacheReadTokens, g.CostMicros, g.CostUnknown, g.Successes, g.LatencyMsSum, g.TTFBMsSum)
	}
	line("total", r.Total)
	for _, g := range r.Groups {
		line(g.Name, g)
	}
	return b.String()
}
