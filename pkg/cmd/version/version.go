// Package version implements `ccrelay version`.
package version

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// NewCmdVersion builds the version command.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  cobra.NoArgs,
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
