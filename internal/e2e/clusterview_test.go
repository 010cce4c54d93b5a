package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	keyslist "github.com/ccrelay/ccrelay/pkg/cmd/keys/list"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// lineOf is the line of out that starts with prefix, its columns joined by
// one space ("" when none).
func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return " " + strings.Join(strings.Fields(l), " ") + " "
		}
	}
	return ""
}

// TestAllowUnauthenticatedReloadsLive: a relay without keys refuses a
// client from another machine (protected mode); setting
// allow_unauthenticated = true in the file serves it at once, with no
// restart, and taking it out refuses it again.
func TestAllowUnauthenticatedReloadsLive(t *testing.T) {
	up := upstream(t, &fakeupstream.Anthropic{Text: "hi"})
	accounts := claudeAPIAccount("a", up.URL, "sk-ant-api-allow-unauth", 100)
	// The relay believes X-Forwarded-For from loopback, so the request
	// comes from 203.0.113.7 as far as it knows.
	top := "trusted_proxies = [\"127.0.0.1/32\"]\n"
	r := startFileRelay(t, top+"allow_unauthenticated = false\n"+accounts)
	ask := func() error {
		c := r.anthropicClient(option.WithHeader("X-Forwarded-For", "203.0.113.7"))
		_, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5"))
		return err
	}
	refused := func(when string) {
		t.Helper()
		var apiErr *anthropic.Error
		if err := ask(); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: want 403 (protected mode), got %v", when, err)
		}
	}
	refused("at start")
	r.rewrite(top + "allow_unauthenticated = true\n" + accounts)
	if st := r.App.Reloader().Status(); len(st.NeedsRestart) != 0 {
		t.Fatalf("needs restart: %v", st.NeedsRestart)
	}
	if err := ask(); err != nil {
		t.Fatalf("after allow_unauthenticated = true: %v", err)
	}
	r.rewrite(top + "allow_unauthenticated = false\n" + accounts)
	refused("after allow_unauthenticated = false")
}

// adminKeys is GET /admin/v1/keys on r.
func adminKeys(t *testing.T, r *relayUT) map[string]admin.Key {
	t.Helper()
	req, _ := http.NewRequest("GET", r.URL+"/admin/v1/keys", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var kr admin.KeysResponse
	if resp.StatusCode != 200 || json.Unmarshal(b, &kr) != nil {
		t.Fatalf("GET keys: %d %s", resp.StatusCode, b)
	}
	out := map[string]admin.Key{}
	for _, k := range kr.Keys {
		out[k.Name] = k
	}
	return out
}

// Two relays on one Redis: while carol's only slot is held by a request
// through A and another waits in B's queue, the admin API of either relay
// (what the dashboard and `--server` read) shows the cluster's numbers, 1
// in flight and 1 queued, scoped "cluster"; the queue drop counter is
// exported. With Redis stopped each relay shows its own numbers, scoped
// "local".
func TestClusterKeyCountsInAdminAPI(t *testing.T) {
	rd := clustertest.Start(t)
	hold := make(chan struct{})
	var release sync.Once
	open := func() { release.Do(func() { close(hold) }) }
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant-account-1"}, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		<-hold
		return nil
	}}
	up := upstream(t, fake)
	rs := startRelays(t, 2, `admin_keys = ["`+adminKey+`"]`+"\n"+clusterTable(rd, 15)+claudeAPIAccount("acct-1", up.URL, "sk-ant-account-1", 100)+`
[[keys]]
name = "carol"
key = "carol-key-0123456789"
concurrency = 1
queue_seconds = 60
`)
	t.Cleanup(open)
	a, b := rs[0], rs[1]
	results := make(chan *anthropic.Error, 2)
	go func() { results <- sendAs(t, a, "carol-key-0123456789") }()
	waitFor(t, 10*time.Second, "A's request reaches the upstream", func() bool { return len(fake.Requests()) == 1 })
	waitFor(t, 10*time.Second, "B learns A's request in flight", func() bool {
		_, f := b.App.Policy.ClusterLoad(b.App.Policy.KeyByName("carol"))
		return f == 1
	})
	go func() { results <- sendAs(t, b, "carol-key-0123456789") }()
	for i, r := range []*relayUT{a, b} {
		waitFor(t, 10*time.Second, fmt.Sprintf("relay %d shows the cluster's counts", i), func() bool {
			k := adminKeys(t, r)["carol"]
			return k.InFlight == 1 && k.Queued == 1 && k.LoadScope == admin.LoadCluster
		})
	}
	// `keys list --server` on B prints the cluster's counts and says so.
	ios, _, out, errOut := iostreams.Test()
	env := map[string]string{cmdutil.EnvAdminKey: adminKey}
	cmd := keyslist.NewCmdList(&cmdutil.Factory{IOStreams: ios, Getenv: func(k string) string { return env[k] }}, nil)
	cmd.SetArgs([]string{"--server", b.URL})
	cmd.SetOut(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("keys list --server: %v\n%s", err, errOut)
	}
	if line := lineOf(out.String(), "carol"); !strings.Contains(line, " 1 1 ") || !strings.Contains(errOut.String(), "every relay of the cluster") {
		t.Fatalf("keys list --server:\n%s\n%s", out, errOut)
	}
	fams := scrape(t, a.URL, adminKey)
	for _, q := range []string{"state", "key_counters", "usage", "request_log"} {
		if v := value(t, fams, "ccrelay_cluster_dropped_total", map[string]string{"queue": q}); v != 0 {
			t.Fatalf("queue %s dropped %v", q, v)
		}
	}
	rd.Stop()
	waitFor(t, 10*time.Second, "A shows its own numbers", func() bool {
		k := adminKeys(t, a)["carol"]
		return k.InFlight == 1 && k.Queued == 0 && k.LoadScope == admin.LoadLocal
	})
	open()
	for i := 0; i < 2; i++ {
		if ae := <-results; ae != nil {
			t.Fatalf("a request failed: %v", ae)
		}
	}
}

// POST /admin/v1/reload on a relay whose file holds the config in force
// answers 200 "unchanged" (it answered 422, as for a refused config); after
// an edit it answers "reloaded".
func TestAdminReloadUnchanged(t *testing.T) {
	up := upstream(t, &fakeupstream.Anthropic{Text: "hi"})
	cfg := `admin_keys = ["` + adminKey + `"]` + "\n" + `api_keys = ["` + relayKey + `"]` + "\n" + claudeAPIAccount("a", up.URL, "sk-ant-api-reload", 100)
	r := startFileRelay(t, cfg)
	post := func() (int, admin.ReloadResponse) {
		t.Helper()
		req, _ := http.NewRequest("POST", r.URL+"/admin/v1/reload", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rr admin.ReloadResponse
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &rr)
		return resp.StatusCode, rr
	}
	if code, rr := post(); code != http.StatusOK || rr != (admin.ReloadResponse{Status: admin.ReloadUnchanged}) {
		t.Fatalf("unchanged config: %d %+v", code, rr)
	}
	// Written without waiting for the watcher: the admin call reloads it
	// (or finds the watcher was first, which is "unchanged" too).
	if err := os.WriteFile(r.Path, []byte(cfg+serverTable(filepath.Dir(r.Path))+"\n[models]\nx = \"claude-sonnet-4-5\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, rr := post(); code != http.StatusOK || (rr.Status != admin.ReloadApplied && rr.Status != admin.ReloadUnchanged) {
		t.Fatalf("after an edit: %d %+v", code, rr)
	}
	if r.App.Reloader().Current().Models["x"] != "claude-sonnet-4-5" {
		t.Fatal("the edit was not applied")
	}
}
