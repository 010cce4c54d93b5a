package capture

import (
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestNewCmdOnFlags(t *testing.T) {
	for _, tt := range []struct {
		args    string
		wantErr string
		check   func(*Options) bool
	}{
		{"--key alice --for 1h", "", func(o *Options) bool { return o.Spec.Key == "alice" && o.Spec.For == "1h" && o.Spec.SampleRate == 1 }},
		{"--account a1 --errors --sample 0.5", "", func(o *Options) bool { return o.Spec.Account == "a1" && o.Spec.ErrorsOnly && o.Spec.SampleRate == 0.5 }},
		{"--for 1h", "say whose requests", nil},
		{"--key a --for 9d", "for must be", nil},
	} {
		t.Run(tt.args, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmdOn(&cmdutil.Factory{IOStreams: ios}, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(ios.ErrOut)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(got) {
				t.Fatalf("err %v, opts %+v", err, got)
			}
		})
	}
}

func TestNewCmdOffNeedsANumber(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	cmd := NewCmdOff(&cmdutil.Factory{IOStreams: ios}, func(*Options) error { return nil })
	cmd.SetArgs([]string{"three"})
	cmd.SetOut(ios.ErrOut)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "capture id must be a number") {
		t.Fatalf("err %v", err)
	}
}

// A capture in one clustered relay's own database says it applies there only.
func TestDescribeLocalCapture(t *testing.T) {
	if got := describe(reqlog.Capture{Key: "alice", LocalTo: "relay-b"}); got != "key alice (relay relay-b only)" {
		t.Fatalf("local: %q", got)
	}
	if got := describe(reqlog.Capture{Key: "alice"}); got != "key alice" {
		t.Fatalf("cluster or standalone: %q", got)
	}
}
