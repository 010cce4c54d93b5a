package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docFiles are the Markdown pages a newcomer reads: the README, every page
// under docs/, and the two reports it links.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "BENCHMARKS.md"),
		filepath.Join(repoRoot, "RELIABILITY.md")}, pages...)
}

var (
	mdLink  = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// proseLines returns the lines of a Markdown file outside fenced code blocks.
func proseLines(text string) []string {
	var out []string
	fenced := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, l)
		}
	}
	return out
}

// anchors returns the GitHub anchors of a Markdown file's headings:
// lower case, punctuation dropped, spaces turned into hyphens, and a
// repeated heading numbered (-1, -2...).
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range proseLines(text) {
		m := heading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestDocLinks fails when a relative link of the README or a docs/ page
// names a file that does not exist or an anchor its target lacks.
func TestDocLinks(t *testing.T) {
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range proseLines(string(data)) {
			for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				}
				body, err := os.ReadFile(dest)
				if err != nil {
					if _, statErr := os.Stat(dest); statErr != nil {
						t.Errorf("%s: link %q: %v", rel(file), target, statErr)
					}
					continue // a directory
				}
				if anchor != "" && !anchors(string(body))[anchor] {
					t.Errorf("%s: link %q: %s has no heading with that anchor", rel(file), target, rel(dest))
				}
			}
		}
	}
}

// TestReadmeQuickPath keeps the README short and its two set-up commands
// exactly as CI and a newcomer run them.
func TestReadmeQuickPath(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	if n := strings.Count(readme, "\n"); n > 300 {
		t.Errorf("README.md has %d lines; keep it at 300 at most and move detail to docs/", n)
	}
	for _, cmd := range []string{"go run ./cmd/ccrelay serve", "./scripts/test.sh"} {
		if !strings.Contains(readme, "\n"+cmd+" ") {
			t.Errorf("README.md lacks the command %q at the start of a line", cmd)
		}
	}
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "./scripts/test.sh") {
		t.Error(".ci/run does not run ./scripts/test.sh, the README's test command")
	}
}

func rel(p string) string {
	r, err := filepath.Rel(repoRoot, p)
	if err != nil {
		return p
	}
	return r
}
