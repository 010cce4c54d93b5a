package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/pkg/cmd/accounts/shared"
)

// claudeQuotaFake is a Claude upstream that reports the given 5h and 7d
// utilization on every answer (200s and streams alike).
func claudeQuotaFake(t *testing.T, text string, u5h, u7d float64, overage string) (*fakeupstream.Anthropic, string) {
	now := time.Now()
	q := fakeupstream.ClaudeQuota{Overage: overage, Windows: []fakeupstream.ClaudeWindow{
		{Name: "5h", Utilization: u5h, Reset: now.Add(4 * time.Hour)},
		{Name: "7d", Utilization: u7d, Reset: now.Add(5 * 24 * time.Hour)},
	}}
	f := &fakeupstream.Anthropic{Text: text, Headers: func(int) map[string]string { return q.Headers() }}
	return f, upstream(t, f).URL
}

// newConversations sends n first turns of distinct conversations, every
// other one streamed, and counts the answers per upstream.
func newConversations(t *testing.T, r *relayUT, n int, prefix string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		c := r.anthropicClient(option.WithHeader("X-Claude-Code-Session-Id", fmt.Sprintf("%s-%d", prefix, i)))
		if i%2 == 1 {
			s := c.Messages.NewStreaming(context.Background(), newParams("claude-opus-4-8"))
			text := ""
			for s.Next() {
				if ev := s.Current(); ev.Type == "content_block_delta" {
					text += ev.Delta.Text
				}
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			got[text]++
			continue
		}
		msg, err := c.Messages.New(context.Background(), newParams("claude-opus-4-8"))
		if err != nil {
			t.Fatal(err)
		}
		got[msg.Content[0].Text]++
	}
	return got
}

// Two accounts at 80% and 10% of their 5h window: new conversations go to
// the emptier one (the first goes by last use: nothing is known yet). The
// numbers show in accounts list and survive a restart, so the restarted relay
// steers from its first request.
func TestQuotaSteersNewConversationsAndSurvivesRestart(t *testing.T) {
	_, busyURL := claudeQuotaFake(t, "busy", 0.8, 0.3, "")
	_, idleURL := claudeQuotaFake(t, "idle", 0.1, 0.05, "")
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + claudeAPIAccount("busy", busyURL, "k0", 100) + claudeAPIAccount("idle", idleURL, "k1", 100)
	r := startRelay(t, cfg)

	const n = 40
	got := newConversations(t, r, n, "conv")
	t.Logf("new conversations: busy (80%%) %d, idle (10%%) %d of %d", got["busy"], got["idle"], n)
	if got["busy"] > 1 || got["idle"] < n-1 {
		t.Fatalf("new conversations %v: want at most the first on the busy account", got)
	}
	snap, ok := r.App.Quota.Snapshot("busy")
	if w, _ := snap.Window("5h"); !ok || w.Utilization != 0.8 || w.Minutes != 300 {
		t.Fatalf("busy's numbers %+v", snap)
	}
	// accounts list reads the database, which the tracker writes in the background.
	var sts []shared.Status
	waitFor(t, 5*time.Second, "accounts list shows both accounts' numbers", func() bool {
		var err error
		sts, err = shared.Statuses(context.Background(), r.App.Config, r.App.DB, time.Now())
		return err == nil && sts[0].Quota != nil && sts[1].Quota != nil && sts[0].Quota.SeenAt.Equal(snap.SeenAt)
	})
	if q := sts[1].Quota; len(q.Windows) != 2 || q.Windows[0].Utilization != 0.1 || q.Windows[0].Stale {
		t.Fatalf("accounts list of idle: %+v", sts[1].Quota)
	}
	if line := sts[0].Quota.Line(time.Now()); line[:19] != "5h ########.. 80% r" {
		t.Fatalf("accounts list line %q", line)
	}

	r2 := r.Restart()
	restored, ok := r2.App.Quota.Snapshot("busy")
	if !ok || !restored.SeenAt.Equal(snap.SeenAt) || len(restored.Windows) != 2 {
		t.Fatalf("after a restart: %+v, want %+v", restored, snap)
	}
	if got := newConversations(t, r2, 4, "after"); got["idle"] != 4 {
		t.Fatalf("after a restart new conversations went %v", got)
	}
}

// plan_only: an account whose answer shows its 5h window spent and extra
// usage in use takes nothing more until the window resets; that answer
// itself was served (and billed as extra usage).
func TestQuotaPlanOnly(t *testing.T) {
	spent, spentURL := claudeQuotaFake(t, "spent", 1.0, 0.5, "allowed")
	_, okURL := claudeQuotaFake(t, "fine", 0.5, 0.2, "")
	cfg := `api_keys = ["` + relayKey + `"]` + "\n[scheduler]\nplan_only = true\n" +
		claudeAPIAccount("spent", spentURL, "k0", 200) + claudeAPIAccount("fine", okURL, "k1", 100)
	r := startRelay(t, cfg)
	got := newConversations(t, r, 6, "p")
	if got["spent"] != 1 || got["fine"] != 5 || len(spent.Requests()) != 1 {
		t.Fatalf("answers %v; the spent account was asked %d times", got, len(spent.Requests()))
	}
	// Without plan_only the higher-priority account keeps serving (past the
	// hard limit only while no other can... here "fine" can, so it serves).
	h := r.App.Quota.Headroom("spent", time.Now())
	if !h.OverageInUse || !h.Until.After(time.Now().Add(3*time.Hour)) {
		t.Fatalf("headroom of spent %+v", h)
	}
}

// An account a reload adds (or changes) gets plan_only like one read at
// start: it used to run without it until the next restart.
func TestQuotaPlanOnlyFollowsReload(t *testing.T) {
	_, fineURL := claudeQuotaFake(t, "fine", 0.5, 0.2, "")
	_, spentURL := claudeQuotaFake(t, "spent", 1.0, 0.5, "allowed")
	head := `api_keys = ["` + relayKey + `"]` + "\n[scheduler]\nplan_only = true\n"
	r := startFileRelay(t, head+claudeAPIAccount("fine", fineURL, "k1", 100))
	r.rewrite(head + claudeAPIAccount("spent", spentURL, "k0", 200) + claudeAPIAccount("fine", fineURL, "k1", 100))
	for _, a := range r.App.Sched.Accounts() {
		if !a.PlanOnly {
			t.Errorf("account %s runs without plan_only after the reload", a.ID)
		}
	}
	got := newConversations(t, r.relayUT, 6, "p")
	if got["spent"] != 1 || got["fine"] != 5 {
		t.Fatalf("answers %v: the spent account added by the reload kept serving past its window", got)
	}
}

// Codex: the x-codex-* headers and the in-stream codex.rate_limits event are
// both read; the event, later, wins.
func TestQuotaCodexHeadersAndEvent(t *testing.T) {
	reset := time.Now().Add(3 * time.Hour)
	fake := &fakeupstream.OpenAI{
		Headers: func(int) map[string]string {
			return fakeupstream.CodexHeaders(fakeupstream.CodexWindow{UsedPercent: 20, Minutes: 300, Reset: reset},
				fakeupstream.CodexWindow{UsedPercent: 3, Minutes: 10080, Reset: reset.Add(72 * time.Hour)}, false)
		},
		Script: func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
			if n == 0 {
				return nil // the first answer: JSON, headers only
			}
			ev := append([]fakeupstream.Event{fakeupstream.CodexRateLimitsEvent(fakeupstream.CodexWindow{UsedPercent: 55, Minutes: 300, Reset: reset},
				fakeupstream.CodexWindow{UsedPercent: 4, Minutes: 10080, Reset: reset.Add(72 * time.Hour)})},
				fakeupstream.ResponseStream("gpt-fake-1", "hi", 2, 0)...)
			return &fakeupstream.Reply{Events: ev}
		},
	}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", up.URL, "sk-oa", 100))
	c := r.openaiClient("/v1")
	if _, err := c.Responses.New(context.Background(), responsesParams("gpt-fake-1")); err != nil {
		t.Fatal(err)
	}
	s, _ := r.App.Quota.Snapshot("oa")
	if w, ok := s.Window("primary"); !ok || w.Utilization != 0.2 || w.Minutes != 300 || w.ResetsAt.Unix() != reset.Unix() || s.Source != quota.SourceCodex {
		t.Fatalf("after headers: %+v", s)
	}
	readResponsesStream(t, c, responsesParams("gpt-fake-1"))
	s, _ = r.App.Quota.Snapshot("oa")
	if w, _ := s.Window("primary"); w.Utilization != 0.55 || s.PlanType != "pro" {
		t.Fatalf("after the codex.rate_limits event: %+v", s)
	}
}

// The numbers one relay reads reach the other through Redis, and the CLI's
// cluster view shows them.
func TestClusterQuotaShared(t *testing.T) {
	rd := clustertest.Start(t)
	_, busyURL := claudeQuotaFake(t, "busy", 0.7, 0.2, "")
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + clusterTable(rd, 15) + claudeAPIAccount("busy", busyURL, "k0", 100)
	rs := startRelays(t, 2, cfg)
	if _, err := ask(t, rs[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "relay B learns A's numbers", func() bool {
		s, ok := rs[1].App.Quota.Snapshot("busy")
		w, _ := s.Window("5h")
		return ok && w.Utilization == 0.7
	})
	sts, err := shared.Statuses(context.Background(), rs[0].App.Config, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if q := sts[0].Quota; q == nil || len(q.Windows) != 2 || q.Windows[0].Utilization != 0.7 {
		t.Fatalf("cluster view %+v", sts[0].Quota)
	}
	// A relay that joins later reads them from Redis at once.
	late := startRelay(t, cfg)
	waitFor(t, 5*time.Second, "a new relay reads the shared numbers", func() bool {
		_, ok := late.App.Quota.Snapshot("busy")
		return ok
	})
}
