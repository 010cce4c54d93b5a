package sessions

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/cluster"
	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// With [cluster], `sessions` lists and `sessions clear` removes the shared
// bindings, and a running relay drops the removed ones at once.
func TestSessionsInCluster(t *testing.T) {
	rd := clustertest.Start(t)
	cfg := &config.Config{Cluster: config.ClusterConfig{RedisURL: rd.URL, KeyPrefix: "cli:", LeaseSeconds: 15}}
	relay, err := cluster.New(cfg.Cluster, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	s := scheduler.New([]*scheduler.Account{
		{ID: "a", Platform: "claude", Priority: 100, Enabled: true},
		{ID: "b", Platform: "claude", Priority: 100, Enabled: true},
	}, scheduler.Options{StickyTTL: time.Hour, RenewalThreshold: time.Minute}, nil, nil)
	defer s.Close()
	relay.Attach(s)
	for _, k := range []string{"conv-1", "conv-2", "conv-3"} {
		if _, err := s.Pick("claude", "m", k, nil); err != nil {
			t.Fatal(err)
		}
	}
	run := func(f func(*Options) error, o Options) string {
		t.Helper()
		ios, _, out, _ := iostreams.Test()
		o.IO, o.Now = ios, time.Now
		o.Config = func() (*config.Config, error) { return cfg, nil }
		o.DB = func() (*store.DB, error) { return nil, nil } // no local database on this machine
		if err := f(&o); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	var rows []struct{ Key, Account string }
	deadline := time.Now().Add(2 * time.Second)
	for len(rows) != 3 && time.Now().Before(deadline) {
		if err := json.Unmarshal([]byte(run(listRun, Options{JSON: true})), &rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(rows) != 3 {
		t.Fatalf("shared sessions: %+v", rows)
	}
	acct := rows[0].Account
	out := run(clearRun, Options{Account: acct})
	if !strings.Contains(out, "on every relay of the cluster") {
		t.Fatalf("clear said %q", out)
	}
	deadline = time.Now().Add(time.Second)
	for {
		left := 0
		for _, b := range s.Sessions() {
			if b.AccountID == acct {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running relay still has %d of %s's sessions", left, acct)
		}
		time.Sleep(5 * time.Millisecond)
	}
	adm, err := cluster.Dial(context.Background(), cfg.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ss, _ := adm.Sessions(context.Background(), time.Now())
	for _, b := range ss {
		if b.AccountID == acct {
			t.Fatalf("%s's session %s is still shared", acct, b.Key)
		}
	}
}
