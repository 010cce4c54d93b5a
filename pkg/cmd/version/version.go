// Package version implements `ccrelay version`.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// What Resolve reports for a value neither -ldflags nor the build info set.
const (
	UnknownVersion = "dev"
	UnknownCommit  = "none"
	UnknownDate    = "unknown"
)

// NewCmdVersion builds the version command.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Long: "Print the version, commit, build date and Go version. A release build has them from\n" +
			"its linker flags; any other build (go build, go install ...@version) takes them from the\n" +
			"build information Go embeds: the module version, the VCS revision (marked \"(modified)\"\n" +
			"when the working tree had uncommitted changes) and the commit time.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(f.IOStreams.Out, Format(f.Version, f.Commit, f.Date))
			return nil
		},
	}
}

// Format is the version text.
func Format(version, commit, date string) string {
	return fmt.Sprintf("ccrelay %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Resolve returns the build's version, commit and date. A value set with
// -ldflags -X (non-empty) wins; an empty one comes from the build
// information Go embeds in every binary (read is debug.ReadBuildInfo outside
// tests): the main module's version (a tag for `go install ...@v1.2.3`, a
// pseudo-version for a build in a checkout), vcs.revision (with
// " (modified)" when vcs.modified is true) and vcs.time. What neither
// knows is UnknownVersion, UnknownCommit or UnknownDate.
func Resolve(version, commit, date string, read func() (*debug.BuildInfo, bool)) (string, string, string) {
	if version == "" || commit == "" || date == "" {
		if info, ok := read(); ok && info != nil {
			var rev, at string
			modified := false
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.time":
					at = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
				version = info.Main.Version
			}
			if commit == "" && rev != "" {
				commit = rev
				if modified {
					commit += " (modified)"
				}
			}
			if date == "" {
				date = at
			}
		}
	}
	return orDefault(version, UnknownVersion), orDefault(commit, UnknownCommit), orDefault(date, UnknownDate)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
