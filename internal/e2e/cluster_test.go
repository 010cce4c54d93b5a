package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/app"
	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/logging"
	"github.com/ccrelay/ccrelay/internal/testutil"
)

const (
	clusterPrefix = "e2e:"
	// clusterSecret encrypts the tokens the relays store in Redis.
	clusterSecret = "e2e-cluster-secret-0123456789"
)

func clusterTable(r *clustertest.Redis, lease int) string {
	return fmt.Sprintf("[cluster]\nredis_url = %q\nkey_prefix = %q\nlease_seconds = %d\nsecret = %q\n\n", r.URL, clusterPrefix, lease, clusterSecret)
}

// startRelays starts n relays on one config (each with its own database).
func startRelays(t *testing.T, n int, cfg string) []*relayUT {
	t.Helper()
	rs := make([]*relayUT, n)
	for i := range rs {
		rs[i] = startRelay(t, cfg)
	}
	return rs
}

// askIn sends one conversation turn (Claude Code's session header) and
// returns the answer's text.
func askIn(t *testing.T, r *relayUT, conv string) (string, error) {
	t.Helper()
	c := r.anthropicClient(option.WithHeader("X-Claude-Code-Session-Id", conv))
	msg, err := c.Messages.New(context.Background(), newParams("claude-opus-4-8"))
	if err != nil {
		return "", err
	}
	return msg.Content[0].Text, nil
}

func clusterHealth(t *testing.T, r *relayUT) string {
	t.Helper()
	resp, err := http.Get(r.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Cluster string `json:"cluster"`
		RelayID string `json:"relay_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if h.RelayID != "" {
		t.Fatalf("/health, which needs no key, names the relay %q", h.RelayID)
	}
	return h.Cluster
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, what, cond)
}

// A conversation served alternately by every relay keeps its account. The
// three accounts share one priority, so each relay alone would spread new
// conversations by its own least-recently-used order.
func TestClusterStickySessions(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d relays", n), func(t *testing.T) {
			rd := clustertest.Start(t)
			p := newPool(t)
			cfg := `api_keys = ["` + relayKey + `"]` + "\n" + clusterTable(rd, 15) +
				claudeAPIAccount("a0", p.urls[0], "k0", 100) + claudeAPIAccount("a1", p.urls[1], "k1", 100) + claudeAPIAccount("a2", p.urls[2], "k2", 100)
			rs := startRelays(t, n, cfg)
			convs := []string{"conv-1", "conv-2", "conv-3", "conv-4"}
			first := map[string]string{}
			for turn := 0; turn < 3*n; turn++ {
				for ci, conv := range convs {
					r := rs[(turn+ci)%n]
					text, err := askIn(t, r, conv)
					if err != nil {
						t.Fatalf("turn %d of %s: %v", turn, conv, err)
					}
					if first[conv] == "" {
						first[conv] = text
					} else if text != first[conv] {
						t.Fatalf("%s moved from %q to %q on relay %d (turn %d)", conv, first[conv], text, (turn+ci)%n, turn)
					}
				}
			}
			// The shared view lists each conversation once.
			adm, err := cluster.Dial(context.Background(), rs[0].App.Config.Cluster)
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			ss, err := adm.Sessions(context.Background(), time.Now())
			if err != nil || len(ss) != len(convs) {
				t.Fatalf("shared sessions %+v %v", ss, err)
			}
		})
	}
}

// A 429 seen by relay A cools the account on relay B within a second; the
// CLI's view (accounts list) shows it; accounts reset clears it everywhere.
func TestClusterCooldownShared(t *testing.T) {
	rd := clustertest.Start(t)
	p := newPool(t)
	p.fakes[0].Script = fail(429, map[string]string{"retry-after": "120"}, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + clusterTable(rd, 15) + p.config()
	rs := startRelays(t, 2, cfg)
	a, b := rs[0], rs[1]

	if text, err := ask(t, a); err != nil || text != "answer from 1" {
		t.Fatalf("A: %q %v", text, err)
	}
	seen := time.Now()
	if cd := cooldownOf(t, a, "a0"); cd.Kind != "rate_limited" {
		t.Fatalf("A's cooldown %+v", cd)
	}
	waitFor(t, time.Second, "A's cooldown on B", func() bool { return cooldownOf(t, b, "a0").Kind == "rate_limited" })
	t.Logf("cooldown reached B after %v", time.Since(seen))
	for i := 0; i < 3; i++ {
		if text, err := ask(t, b); err != nil || text != "answer from 1" {
			t.Fatalf("B: %q %v", text, err)
		}
	}
	if n := p.fakes[0].Count(); n != 1 {
		t.Fatalf("the cooling account got %d requests; B should not have tried it", n)
	}
	if sts := listedAs(t, b, "cooling_down"); sts[0].ID != "a0" {
		t.Fatalf("accounts list: %+v", sts[0])
	}

	adm, err := cluster.Dial(context.Background(), a.App.Config.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if n, err := adm.ResetAccount(context.Background(), "a0"); n != 1 || err != nil {
		t.Fatalf("reset: %d %v", n, err)
	}
	waitFor(t, time.Second, "reset on both relays", func() bool {
		return cooldownOf(t, a, "a0").Kind == "" && cooldownOf(t, b, "a0").Kind == ""
	})
}

// 200 concurrent requests across three relays on a cold token, then again on
// a revoked one: exactly one refresh each time, and no refresh token is ever
// presented twice (the fake token endpoint rejects and counts reuse).
func TestClusterSingleRefresh(t *testing.T) {
	rd := clustertest.Start(t)
	o := &fakeupstream.OAuth{Delay: 50 * time.Millisecond}
	tokens := upstream(t, o)
	_, api := oauthUpstream(t, o)
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + clusterTable(rd, 15) + oauthAccount("max-1", api, tokens.URL, o.Issue(), 100)
	rs := startRelays(t, 3, cfg)

	burst := func(round int) {
		t.Helper()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", rs[i%3].URL+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`))
				req.Header.Set("X-Api-Key", relayKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Fatalf("round %d: %d of 200 requests failed", round, n)
		}
	}
	burst(1)
	if r, u := o.Refreshes.Load(), o.Reuses.Load(); r != 1 || u != 0 {
		t.Fatalf("cold start: %d refreshes, %d reuses (want 1, 0)", r, u)
	}
	o.Expire() // the provider revokes the access token: every relay sees 401s
	burst(2)
	if r, u := o.Refreshes.Load(), o.Reuses.Load(); r != 2 || u != 0 {
		t.Fatalf("after revocation: %d refreshes, %d reuses (want 2, 0)", r, u)
	}
	// Every relay's local database mirrors the newest chain (a restart during
	// an outage starts from it).
	for i, r := range rs {
		waitFor(t, 2*time.Second, fmt.Sprintf("relay %d mirrors the credential", i), func() bool {
			c, err := r.App.DB.Credential(context.Background(), "max-1")
			return err == nil && strings.HasSuffix(c.RefreshToken, fmt.Sprintf("%04d-abcdefgh", 3))
		})
	}
	// Redis holds the credential sealed with the cluster secret: no token in it.
	c, err := rs[0].App.DB.Credential(context.Background(), "max-1")
	if err != nil {
		t.Fatal(err)
	}
	dump := rd.Dump(t)
	for _, tok := range []string{c.RefreshToken, c.AccessToken, clusterSecret} {
		if strings.Contains(dump, tok) {
			t.Fatalf("redis holds a token or the secret in plain text:\n%s", dump)
		}
	}
}

// TestClusterHelperRelay is not a test: TestClusterLeaseHolderKilled runs the
// test binary with this name to get a relay in a process of its own.
func TestClusterHelperRelay(t *testing.T) {
	cfgPath := os.Getenv("CCRELAY_E2E_HELPER_CONFIG")
	if cfgPath == "" {
		return
	}
	cfg, err := config.LoadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(cfg, logging.New(os.Stderr, "debug", "text"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("CCRELAY_E2E_HELPER_ADDR"), []byte(addr.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

// A relay killed while it holds an account's refresh lease (its token POST
// hangs) blocks the other relays' refresh no longer than the lease time.
func TestClusterLeaseHolderKilled(t *testing.T) {
	rd := clustertest.Start(t)
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	_, api := oauthUpstream(t, o)
	// The doomed relay's token endpoint never answers (and so never consumes
	// the token, as a provider that never received the request would not).
	hang := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going away
		<-r.Context().Done()
	}))
	first := o.Issue()
	const lease = 2
	dir := t.TempDir()
	doomedCfg := `api_keys = ["` + relayKey + `"]` + "\n" + clusterTable(rd, lease) + oauthAccount("max-1", api, hang.URL, first, 100) +
		fmt.Sprintf("[server]\nhost = \"127.0.0.1\"\nport = 3000\ndatabase_path = %q\n", filepath.Join(dir, "doomed.db"))
	cfgPath, addrPath := filepath.Join(dir, "doomed.toml"), filepath.Join(dir, "doomed.addr")
	if err := os.WriteFile(cfgPath, []byte(doomedCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterHelperRelay$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CCRELAY_E2E_HELPER_CONFIG="+cfgPath, "CCRELAY_E2E_HELPER_ADDR="+addrPath)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	var addr []byte
	waitFor(t, 60*time.Second, "the helper relay listens", func() bool {
		addr, _ = os.ReadFile(addrPath)
		return len(addr) > 0
	})

	// A request makes the doomed relay take the lease and hang in the POST.
	go func() {
		req, _ := http.NewRequest("POST", "http://"+string(addr)+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("X-Api-Key", relayKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, 10*time.Second, "the doomed relay holds the lease", func() bool { return rd.Exists(clusterPrefix + "lease:max-1") })
	time.Sleep(lease * time.Second) // it renews the lease while alive
	if !rd.Exists(clusterPrefix + "lease:max-1") {
		t.Fatalf("a live holder lost its lease\n%s", logs.String())
	}
	_ = cmd.Process.Kill()
	<-exited
	killed := time.Now()

	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+clusterTable(rd, lease)+oauthAccount("max-1", api, tokens.URL, first, 100))
	if _, err := ask(t, r); err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	// The lease outlives its holder by at most its time to live (plus the
	// waiter's polling); the refresh's own timeout (30 s) is far beyond.
	if waited := time.Since(killed); waited > (lease+3)*time.Second {
		t.Fatalf("refresh blocked %v by a dead holder's %d s lease", waited, lease)
	}
	if rf, u := o.Refreshes.Load(), o.Reuses.Load(); rf != 1 || u != 0 {
		t.Fatalf("%d refreshes, %d reuses (want 1, 0)", rf, u)
	}
}

// Redis stopped mid-test and restarted (empty): no request fails, /health
// shows the outage, and the relays' views are pushed back into Redis. An
// OAuth token that needs refreshing meanwhile is not refreshed without the
// lease (the request fails over instead), and is refreshed, once, after.
func TestClusterRedisOutage(t *testing.T) {
	rd := clustertest.Start(t)
	o := &fakeupstream.OAuth{ExpiresIn: time.Hour}
	tokens := upstream(t, o)
	_, api := oauthUpstream(t, o)
	p := newPool(t)
	cfg := `api_keys = ["` + relayKey + `"]` + "\n" + clusterTable(rd, 5) +
		"[session]\nerror_cooldown_seconds = 1\n\n" +
		oauthAccount("max-1", api, tokens.URL, o.Issue(), 300) +
		claudeAPIAccount("a1", p.urls[1], "k1", 100) + claudeAPIAccount("a2", p.urls[2], "k2", 100)
	rs := startRelays(t, 2, cfg)
	if text, err := ask(t, rs[0]); err != nil || text != "Hello from fake upstream" {
		t.Fatalf("warm-up: %q %v", text, err)
	}

	// Steady traffic on both relays, several conversations, until told to stop.
	var stop atomic.Bool
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 5000; i++ {
				_, err := askIn(t, rs[(w+i)%2], fmt.Sprintf("conv-%d", w))
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	time.Sleep(300 * time.Millisecond)

	rd.Stop()
	for i, r := range rs {
		waitFor(t, 5*time.Second, fmt.Sprintf("relay %d reports the outage", i), func() bool { return strings.HasPrefix(clusterHealth(t, r), "degraded: ") })
	}
	// The provider revokes the OAuth access token during the outage: the
	// relays may not refresh without the lease, and fail over instead.
	o.Expire()
	before := sent.Load()
	waitFor(t, 10*time.Second, "traffic during the outage", func() bool { return sent.Load() > before+50 })
	time.Sleep(time.Second)
	if n := o.Refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes without the lease", n)
	}

	rd.Restart()
	for i, r := range rs {
		waitFor(t, 10*time.Second, fmt.Sprintf("relay %d recovers", i), func() bool { return clusterHealth(t, r) == "ok" })
	}
	adm, err := cluster.Dial(context.Background(), rs[0].App.Config.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	waitFor(t, 5*time.Second, "the relays' sessions are back in Redis", func() bool {
		ss, _ := adm.Sessions(context.Background(), time.Now())
		have := map[string]bool{}
		for _, b := range ss {
			have[b.Key] = true
		}
		return have["conv-0"] && have["conv-1"] && have["conv-2"] && have["conv-3"]
	})
	// A new conversation picks the OAuth account (highest priority) again:
	// once its back-off (5 s) is over it is refreshed, under the lease, once.
	waitFor(t, 20*time.Second, "the oauth account serves again after the outage", func() bool {
		text, err := askIn(t, rs[1], fmt.Sprintf("new-%d", time.Now().UnixNano()))
		if err != nil {
			t.Fatalf("after the outage: %v", err)
		}
		if text != "Hello from fake upstream" {
			time.Sleep(100 * time.Millisecond)
			return false
		}
		return true
	})
	if n := o.Refreshes.Load(); n != 2 {
		t.Fatalf("%d refreshes in all, want 2", n)
	}
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, sent.Load(), firstErr.Load())
	}
	if u := o.Reuses.Load(); u != 0 {
		t.Fatalf("%d refresh token reuses", u)
	}
	t.Logf("%d requests across the outage, none failed", sent.Load())
}
