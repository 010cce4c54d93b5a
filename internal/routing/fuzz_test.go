package routing

import (
	"path"
	"testing"
)

// FuzzGlob: a compiled glob (exact, prefix or path.Match) answers as
// path.Match does for every valid pattern and any model.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"claude-*", "claude-sonnet-4-5"}, {"claude-*", "claude-a/b"}, {"gpt-5", "gpt-5"}, {"*", ""},
		{"gpt-5.[0-9]-codex", "gpt-5.1-codex"}, {`x\*`, "x*"}, {"?4-mini", "o4-mini"}, {"a*b*", "axxb/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, model string) {
		want, err := path.Match(pattern, model)
		if err != nil {
			return // config validation refuses the pattern
		}
		g := compileGlob(pattern)
		if got := g.match(model); got != want {
			t.Fatalf("glob %q (kind %d) on %q: %v, path.Match %v", pattern, g.kind, model, got, want)
		}
	})
}
