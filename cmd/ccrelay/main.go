// Command ccrelay is the relay and its command-line tools.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ccrelay/ccrelay/pkg/cmd/root"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// Build information, set with -ldflags -X.
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	os.Exit(run())
}

func run() int {
	f := cmdutil.New(version, commit, date)
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
