package sessions

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin/admintest"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestNewCmdSessionsServerFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want Options
	}{
		{"list", []string{"--server", "http://h:1", "--json"}, Options{Server: "http://h:1", JSON: true}},
		{"clear", []string{"clear", "--account", "a", "--server", "http://h:1"}, Options{Server: "http://h:1", Account: "a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *Options
			f := &cmdutil.Factory{IOStreams: ios}
			capture := func(o *Options) error { got = o; return nil }
			cmd := NewCmdSessions(f, capture)
			if tt.name == "clear" {
				cmd = NewCmdClear(f, capture)
				tt.args = tt.args[1:]
			}
			cmd.SetArgs(tt.args)
			cmd.SetOut(ios.ErrOut)
			cmd.SetErr(ios.ErrOut)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			if got.Server != tt.want.Server || got.JSON != tt.want.JSON || got.Account != tt.want.Account {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestSessionsOnServer(t *testing.T) {
	srv := admintest.Start(t, "a", "b")
	for _, k := range []string{"conv-1", "conv-2", "conv-3"} {
		if _, err := srv.Sched.Pick("claude", "m", k, nil); err != nil {
			t.Fatal(err)
		}
	}
	ios, _, out, _ := iostreams.Test()
	o := &Options{IO: ios, Now: time.Now, Getenv: admintest.Getenv(admintest.Key), Server: srv.URL}
	if err := listRun(o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KEY", "conv-1", "conv-3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out.Reset()
	o.JSON = true
	if err := listRun(o); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 3 || rows[0]["account"] == "" {
		t.Fatalf("json %s %v", out, err)
	}
	out.Reset()
	o.Key = "conv-2"
	if err := clearRun(o); err != nil || out.String() != "removed 1 session(s)\n" {
		t.Fatalf("clear: %v %q", err, out)
	}
	if _, ok := srv.Sched.Session("conv-2"); ok || len(srv.Sched.Sessions()) != 2 {
		t.Fatalf("sessions left: %v", srv.Sched.Sessions())
	}
}
