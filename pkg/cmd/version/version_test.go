package version_test

import (
	"runtime"
	"runtime/debug"
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

func TestResolve(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/ccrelay/ccrelay", Version: "v0.0.0-20261202145631-98febf4abcde+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "98febf4abcde0123456789abcdef0123456789ab"},
			{Key: "vcs.time", Value: "2026-12-02T14:56:31Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ccrelay/ccrelay", Version: "v1.4.0"}}
	devel := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ccrelay/ccrelay", Version: "(devel)"}}
	info := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	tests := []struct {
		name                string
		version, commit, at string
		read                func() (*debug.BuildInfo, bool)
		want                [3]string
	}{
		{
			name: "ldflags win over the build info", version: "v1.2.3", commit: "abc1234", at: "2026-11-25T10:00:00Z",
			read: info(stamped), want: [3]string{"v1.2.3", "abc1234", "2026-11-25T10:00:00Z"},
		},
		{
			name: "go build in a checkout", read: info(stamped),
			want: [3]string{"v0.0.0-20261202145631-98febf4abcde+dirty", "98febf4abcde0123456789abcdef0123456789ab (modified)", "2026-12-02T14:56:31Z"},
		},
		{
			name: "clean checkout", read: info(&debug.BuildInfo{Main: devel.Main, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-12-01T00:00:00Z"}, {Key: "vcs.modified", Value: "false"},
			}}),
			want: [3]string{"dev", "0123abc", "2026-12-01T00:00:00Z"},
		},
		{
			name: "go install @version", read: info(installed),
			want: [3]string{"v1.4.0", "none", "unknown"},
		},
		{
			name: "only some ldflags", version: "v2.0.0", read: info(stamped),
			want: [3]string{"v2.0.0", "98febf4abcde0123456789abcdef0123456789ab (modified)", "2026-12-02T14:56:31Z"},
		},
		{
			name: "no build info", read: info(nil),
			want: [3]string{"dev", "none", "unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, c, d := version.Resolve(tt.version, tt.commit, tt.at, tt.read)
			if got := [3]string{v, c, d}; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestResolveThisBinary: the test binary's own build info is read without
// error and every value ends up non-empty.
func TestResolveThisBinary(t *testing.T) {
	v, c, d := version.Resolve("", "", "", debug.ReadBuildInfo)
	if v == "" || c == "" || d == "" {
		t.Errorf("empty value: %q %q %q", v, c, d)
	}
}
