package version_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/pkg/cmd/root"
	"github.com/ccrelay/ccrelay/pkg/cmd/version"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			f := cmdutil.New("v1.2.3", "abc1234", "2026-11-25T10:00:00Z")
			ios, _, out, _ := iostreams.Test()
			f.IOStreams = ios
			cmd := root.NewCmdRoot(f)
			cmd.SetArgs(args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			want := "ccrelay v1.2.3\ncommit: abc1234\nbuilt: 2026-11-25T10:00:00Z\ngo: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
			if out.String() != want {
				t.Errorf("output:\n%s\nwant:\n%s", out, want)
			}
		})
	}
}

func TestVersionRejectsArgs(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios}
	cmd := version.NewCmdVersion(f)
	cmd.SetArgs([]string{"extra"})
	cmd.SetErr(ios.ErrOut)
	if err := cmd.Execute(); err == nil {
		t.Fatal("version accepted an argument")
	}
}
