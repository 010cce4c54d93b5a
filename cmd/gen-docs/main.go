// Command gen-docs writes ccrelay's man pages (man/) and shell completion
// scripts (completions/) from the live command tree, and refreshes the copy
// of config.example.toml that `ccrelay config init` embeds. Run it from the
// repository root after changing a command, a flag or the example config:
//
//	go run ./cmd/gen-docs
//
// A test regenerates everything in memory and fails when the committed files
// differ, so stale docs cannot land.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ccrelay/ccrelay/pkg/cmd/config/initcmd"
	"github.com/ccrelay/ccrelay/pkg/cmd/root"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// manDate is the date printed in the man pages' header. It is fixed so that
// regenerating gives the same bytes on every machine and day (a date from
// the clock would make the staleness test fail daily).
var manDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// The generated directories, relative to the repository root.
const (
	manDir         = "man"
	completionsDir = "completions"
)

func main() {
	rootDir := flag.String("root", ".", "repository root to write into")
	flag.Parse()
	files, err := Files(*rootDir)
	if err == nil {
		err = Write(*rootDir, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-docs:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gen-docs: wrote %d files under %s\n", len(files), *rootDir)
}

// NewTree builds the command tree as the binary does, from a stub factory:
// no config, no environment, test streams. Building it touches no disk.
func NewTree() *cobra.Command {
	f := cmdutil.New("dev", "none", "unknown")
	f.IOStreams, _, _, _ = iostreams.Test()
	f.Getenv = func(string) string { return "" }
	cmd := root.NewCmdRoot(f)
	// Execute adds these two at run time; add them here so the man pages
	// describe the binary as it is.
	cmd.InitDefaultHelpCmd()
	cmd.InitDefaultCompletionCmd()
	var disable func(*cobra.Command)
	disable = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			disable(sub)
		}
	}
	disable(cmd)
	return cmd
}

// Files returns every generated file by its path relative to rootDir (which
// holds config.example.toml).
func Files(rootDir string) (map[string][]byte, error) {
	cmd := NewTree()
	files := map[string][]byte{}

	var walk func(*cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != cmd {
			return nil
		}
		if c.IsAdditionalHelpTopicCommand() {
			return nil
		}
		var b bytes.Buffer
		header := &doc.GenManHeader{Section: "1", Date: &manDate, Source: "ccrelay", Manual: "ccrelay manual"}
		if err := doc.GenMan(c, header, &b); err != nil {
			return fmt.Errorf("man page of %q: %w", c.CommandPath(), err)
		}
		files[filepath.Join(manDir, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")] = b.Bytes()
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(cmd); err != nil {
		return nil, err
	}

	name := cmd.Name()
	for file, gen := range map[string]func(*bytes.Buffer) error{
		name + ".bash": func(b *bytes.Buffer) error { return cmd.GenBashCompletionV2(b, true) },
		"_" + name:     func(b *bytes.Buffer) error { return cmd.GenZshCompletion(b) },
		name + ".fish": func(b *bytes.Buffer) error { return cmd.GenFishCompletion(b, true) },
		name + ".ps1":  func(b *bytes.Buffer) error { return cmd.GenPowerShellCompletionWithDesc(b) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return nil, fmt.Errorf("completion %s: %w", file, err)
		}
		files[filepath.Join(completionsDir, file)] = b.Bytes()
	}

	example, err := os.ReadFile(filepath.Join(rootDir, "config.example.toml"))
	if err != nil {
		return nil, fmt.Errorf("read the example config: %w", err)
	}
	files[filepath.FromSlash(initcmd.ExampleFile)] = example
	return files, nil
}

// Write puts files under rootDir and removes generated files that are no
// longer produced (a man page of a removed command).
func Write(rootDir string, files map[string][]byte) error {
	stale, err := Stale(rootDir, files)
	if err != nil {
		return err
	}
	for _, p := range stale.Extra {
		if err := os.Remove(filepath.Join(rootDir, p)); err != nil {
			return err
		}
	}
	for _, p := range sortedKeys(files) {
		full := filepath.Join(rootDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, files[p]) {
			continue
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Difference lists how the files on disk differ from the generated ones.
type Difference struct {
	// Changed are generated files whose content on disk differs; Missing are
	// not on disk; Extra are on disk in man/ or completions/ but no longer generated.
	Changed, Missing, Extra []string
}

// Empty reports whether the disk matches.
func (d Difference) Empty() bool { return len(d.Changed)+len(d.Missing)+len(d.Extra) == 0 }

// Stale compares files with what rootDir holds.
func Stale(rootDir string, files map[string][]byte) (Difference, error) {
	var d Difference
	for _, p := range sortedKeys(files) {
		old, err := os.ReadFile(filepath.Join(rootDir, p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			d.Missing = append(d.Missing, p)
		case err != nil:
			return d, err
		case !bytes.Equal(old, files[p]):
			d.Changed = append(d.Changed, p)
		}
	}
	for _, dir := range []string{manDir, completionsDir} {
		entries, err := os.ReadDir(filepath.Join(rootDir, dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return d, err
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if _, ok := files[p]; !ok && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				d.Extra = append(d.Extra, p)
			}
		}
	}
	return d, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
