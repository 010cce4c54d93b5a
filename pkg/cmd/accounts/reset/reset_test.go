package reset

import (
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/admin/admintest"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestNewCmdResetFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{name: "ids", args: []string{"a", "b"}, want: Options{IDs: []string{"a", "b"}}},
		{name: "server", args: []string{"a", "--server", "http://h:1"}, want: Options{IDs: []string{"a"}, Server: "http://h:1"}},
		{name: "no id", args: nil, wantErr: "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmdReset(&cmdutil.Factory{IOStreams: ios}, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(ios.ErrOut)
			cmd.SetErr(ios.ErrOut)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got.IDs, ",") != strings.Join(tt.want.IDs, ",") || got.Server != tt.want.Server {
				t.Fatalf("got %+v err %v", got, err)
			}
		})
	}
}

func TestResetOnServer(t *testing.T) {
	srv := admintest.Start(t, "a", "b")
	srv.Sched.Report("a", provider.Verdict{Kind: provider.RateLimited})
	srv.Sched.Report("a", provider.Verdict{Kind: provider.RateLimited, Model: "opus"})
	ios, _, out, _ := iostreams.Test()
	if err := resetRun(&Options{IO: ios, Getenv: admintest.Getenv(admintest.Key), Server: srv.URL, IDs: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a: cleared 2 cooldown(s)\n" || len(srv.Sched.Cooldowns()) != 0 {
		t.Fatalf("out %q cooldowns %v", out, srv.Sched.Cooldowns())
	}
	err := resetRun(&Options{IO: ios, Getenv: admintest.Getenv(admintest.Key), Server: srv.URL, IDs: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), `no account "nope"`) {
		t.Fatalf("unknown account: %v", err)
	}
}
