package list

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin/admintest"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestNewCmdListServerFlag(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdList(&cmdutil.Factory{IOStreams: ios}, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--server", "http://127.0.0.1:3000", "--json"})
	cmd.SetOut(ios.ErrOut)
	cmd.SetErr(ios.ErrOut)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Server != "http://127.0.0.1:3000" || !got.JSON {
		t.Fatalf("options %+v", got)
	}
}

func TestListFromServer(t *testing.T) {
	srv := admintest.Start(t, "a", "b")
	if _, err := srv.Sched.Pick("claude", "m", "", nil); err != nil {
		t.Fatal(err)
	}
	srv.Sched.Report("b", provider.Verdict{Kind: provider.Overloaded, Reason: "529 overloaded"})
	run := func(asJSON bool) string {
		ios, _, out, _ := iostreams.Test()
		// No Config or DB: --server must not read local state.
		if err := listRun(&Options{IO: ios, Now: time.Now, Getenv: admintest.Getenv(admintest.Key), Server: srv.URL, JSON: asJSON}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := run(false)
	for _, want := range []string{"ID", "a ", "b ", "cooling_down", "529 overloaded", "ready"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	var sts []map[string]any
	if err := json.Unmarshal([]byte(run(true)), &sts); err != nil || len(sts) != 2 || sts[1]["state"] != "cooling_down" || sts[0]["last_used"] == nil {
		t.Fatalf("json %v %v", sts, err)
	}
	ios, _, _, _ := iostreams.Test()
	err := listRun(&Options{IO: ios, Now: time.Now, Getenv: admintest.Getenv(admintest.RelayKey), Server: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("relay key: %v", err)
	}
}
