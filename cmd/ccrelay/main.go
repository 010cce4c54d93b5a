// Command ccrelay is the relay and its command-line tools.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/ccrelay/ccrelay/pkg/cmd/root"
	versioncmd "github.com/ccrelay/ccrelay/pkg/cmd/version"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// Build information, set with -ldflags -X by release builds. Left empty,
// each is taken from the build information Go embeds (see
// versioncmd.Resolve), so a plain `go build` can be traced to its source too.
var (
	version string
	commit  string
	date    string
)

func main() {
	os.Exit(run())
}

func run() int {
	f := cmdutil.New(versioncmd.Resolve(version, commit, date, debug.ReadBuildInfo))
	cmd := root.NewCmdRoot(f)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil && !errors.Is(ee.Err, cmdutil.ErrSilent) {
			fmt.Fprintln(f.IOStreams.ErrOut, "error:", ee.Err)
		}
		return ee.Code
	}
	if errors.Is(err, cmdutil.ErrSilent) {
		return 1
	}
	fmt.Fprintln(f.IOStreams.ErrOut, "error:", err)
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) {
		fmt.Fprintln(f.IOStreams.ErrOut, "run 'ccrelay --help' for usage")
		return 2
	}
	return 1
}
