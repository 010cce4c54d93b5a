package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const repoRoot = "../.."

// TestGeneratedFilesUpToDate fails when man/, completions/ or the embedded
// example config differ from what the command tree produces now.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Stale(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Empty() {
		t.Fatalf("generated files are stale: run `go run ./cmd/gen-docs` from the repository root and commit the result\n  changed: %v\n  missing: %v\n  no longer generated: %v",
			d.Changed, d.Missing, d.Extra)
	}
}

func TestFilesDeterministic(t *testing.T) {
	a, err := Files(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Files(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for p, v := range a {
		if !bytes.Equal(v, b[p]) {
			t.Errorf("%s differs between two runs", p)
		}
	}
}

func TestFilesCoverTheTree(t *testing.T) {
	files, err := Files(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"man/ccrelay.1", "man/ccrelay-serve.1", "man/ccrelay-env.1", "man/ccrelay-stats.1",
		"man/ccrelay-config-init.1", "man/ccrelay-config-path.1", "man/ccrelay-config-validate.1",
		"man/ccrelay-completion-bash.1", "man/ccrelay-version.1",
		"completions/ccrelay.bash", "completions/_ccrelay", "completions/ccrelay.fish", "completions/ccrelay.ps1",
		"pkg/cmd/config/initcmd/example.toml",
	} {
		if _, ok := files[filepath.FromSlash(want)]; !ok {
			t.Errorf("%s is not generated", want)
		}
	}
	if _, ok := files[filepath.FromSlash("man/ccrelay-help.1")]; ok {
		t.Error("the help command got a man page")
	}
	page := string(files[filepath.FromSlash("man/ccrelay-env.1")])
	for _, want := range []string{".TH \"CCRELAY-ENV\" \"1\" \"Nov 2026\" \"ccrelay\" \"ccrelay manual\"", "write-codex-config", "EXAMPLE"} {
		if !strings.Contains(page, want) {
			t.Errorf("ccrelay-env.1 lacks %q", want)
		}
	}
	if strings.Contains(page, "Auto generated") {
		t.Error("man page carries cobra's date-stamped generator tag")
	}
}

// TestWriteRemovesStale writes into a scratch root and checks that a page of
// a command that no longer exists is removed and the result is up to date.
func TestWriteRemovesStale(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile(filepath.Join(repoRoot, "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.example.toml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "man"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "man", "ccrelay-removed.1")
	if err := os.WriteFile(old, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "man", ".gitkeep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := Stale(dir, files); d.Empty() || len(d.Extra) != 1 {
		t.Fatalf("before writing: %+v", d)
	}
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("stale man page kept")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Error("dot file removed")
	}
	if d, err := Stale(dir, files); err != nil || !d.Empty() {
		t.Errorf("after writing: %+v %v", d, err)
	}
}
