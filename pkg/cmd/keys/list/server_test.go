package list

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/admin/admintest"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

type keysFunc func() []admin.Key

func (k keysFunc) Keys(context.Context) ([]admin.Key, error) { return k(), nil }

func TestNewCmdListServerFlag(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdList(&cmdutil.Factory{IOStreams: ios}, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--server", "http://127.0.0.1:3000", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Server != "http://127.0.0.1:3000" || !got.JSON {
		t.Fatalf("options: %+v", got)
	}
}

// With --server the list is the relay's: each limited key's requests in
// flight and queued, and the scope of those counts (the cluster's, or the
// relay's own), never read from the local database or config.
func TestListFromServer(t *testing.T) {
	scope := admin.LoadCluster
	micros := int64(1_250_000)
	srv := admintest.StartKeys(t, keysFunc(func() []admin.Key {
		return []admin.Key{
			{Name: "carol", Source: "keys", Enabled: true, Concurrency: 2, InFlight: 2, Queued: 3, LoadScope: scope, CostTodayMicros: &micros,
				Budgets: []admin.Budget{{Window: "daily", Unit: "usd", Limit: 5, Used: 1.25}}},
			{Name: "dave", Source: "keys", Enabled: false, Budgets: []admin.Budget{}},
		}
	}))
	run := func(asJSON bool) (string, string) {
		t.Helper()
		ios, _, out, errOut := iostreams.Test()
		// No Config or DB: --server must not read local state.
		if err := listRun(&Options{IO: ios, Now: time.Now, Getenv: admintest.Getenv(admintest.Key), Server: srv.URL, JSON: asJSON}); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	out, errOut := run(false)
	var carol string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "carol") {
			carol = strings.Join(strings.Fields(l), " ")
		}
	}
	if !strings.Contains(out, "IN FLIGHT") || carol != "carol enabled - 2 2 3 $1.25/$5.00 0 never" || !strings.Contains(errOut, noteLoadCluster) {
		t.Fatalf("table:\n%s\nstderr: %s", out, errOut)
	}
	// api_keys[0] (not counted) and dave (no limit) show no counts.
	if !strings.Contains(out, "api_keys[0]") {
		t.Fatalf("the api_keys entry is missing:\n%s", out)
	}
	scope = admin.LoadLocal
	if _, errOut := run(false); !strings.Contains(errOut, noteLoadLocal) || strings.Contains(errOut, noteLoadCluster) {
		t.Fatalf("local scope: stderr %q", errOut)
	}
	js, _ := run(true)
	var resp admin.KeysResponse
	if err := json.Unmarshal([]byte(js), &resp); err != nil || len(resp.Keys) != 3 || resp.Keys[0].InFlight != 2 || resp.Keys[0].Queued != 3 ||
		resp.Keys[0].LoadScope != admin.LoadLocal {
		t.Fatalf("json: %v\n%s", err, js)
	}
}

func TestListFromServerRefused(t *testing.T) {
	srv := admintest.Start(t)
	ios, _, _, _ := iostreams.Test()
	err := listRun(&Options{IO: ios, Now: time.Now, Getenv: admintest.Getenv(admintest.RelayKey), Server: srv.URL})
	if !errors.Is(err, cmdutil.ErrAdminRefused) {
		t.Fatalf("a relay key as admin key: %v", err)
	}
}
