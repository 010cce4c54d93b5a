package env

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unquoteFish reads one fish single-quoted word the way fish does: only \'
// and \\ are escapes; it fails on anything after the closing quote.
func unquoteFish(t *testing.T, s string) string {
	t.Helper()
	if !strings.HasPrefix(s, "'") {
		t.Fatalf("not single-quoted: %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '\\') {
				i++
				b.WriteByte(s[i])
			} else {
				b.WriteByte('\\')
			}
		case '\'':
			if i != len(s)-1 {
				t.Fatalf("text after the closing quote in %q", s)
			}
			return b.String()
		default:
			b.WriteByte(s[i])
		}
	}
	t.Fatalf("unterminated: %q", s)
	return ""
}

// unquotePowerShell reads one PowerShell verbatim string: any of the four
// single-quote characters opens or closes it; a doubled one is literal.
func unquotePowerShell(t *testing.T, s string) string {
	t.Helper()
	isQ := func(r rune) bool {
		return r == '\'' || r == '\u2018' || r == '\u2019' || r == '\u201A' || r == '\u201B'
	}
	rs := []rune(s)
	if len(rs) < 2 || !isQ(rs[0]) {
		t.Fatalf("not single-quoted: %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(rs); i++ {
		if isQ(rs[i]) {
			if i+1 < len(rs) && isQ(rs[i+1]) {
				b.WriteRune(rs[i])
				i++
				continue
			}
			if i != len(rs)-1 {
				t.Fatalf("text after the closing quote in %q", s)
			}
			return b.String()
		}
		b.WriteRune(rs[i])
	}
	t.Fatalf("unterminated: %q", s)
	return ""
}

// unquoteSh reads a POSIX word made of single-quoted parts and \' escapes.
func unquoteSh(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				t.Fatalf("unterminated: %q", s)
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case strings.HasPrefix(s[i:], `\'`):
			b.WriteByte('\'')
			i += 2
		default:
			t.Fatalf("unquoted text at %d in %q", i, s)
		}
	}
	return b.String()
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range hostile {
		if got := unquoteSh(t, quoteSh(v)); got != v {
			t.Errorf("sh: %q -> %s -> %q", v, quoteSh(v), got)
		}
		if got := unquoteFish(t, quoteFish(v)); got != v {
			t.Errorf("fish: %q -> %s -> %q", v, quoteFish(v), got)
		}
		if got := unquotePowerShell(t, quotePowerShell(v)); got != v {
			t.Errorf("powershell: %q -> %s -> %q", v, quotePowerShell(v), got)
		}
	}
}

func TestQuoteExact(t *testing.T) {
	tests := []struct{ in, sh, fish, ps string }{
		{`abc`, `'abc'`, `'abc'`, `'abc'`},
		{`it's`, `'it'\''s'`, `'it\'s'`, `'it''s'`},
		{`a\b`, `'a\b'`, `'a\\b'`, `'a\b'`},
		{`$x "y"`, `'$x "y"'`, `'$x "y"'`, `'$x "y"'`},
		{"‘x’", "'‘x’'", "'‘x’'", "'‘‘x’’'"},
	}
	for _, tt := range tests {
		if got := quoteSh(tt.in); got != tt.sh {
			t.Errorf("quoteSh(%q) = %s, want %s", tt.in, got, tt.sh)
		}
		if got := quoteFish(tt.in); got != tt.fish {
			t.Errorf("quoteFish(%q) = %s, want %s", tt.in, got, tt.fish)
		}
		if got := quotePowerShell(tt.in); got != tt.ps {
			t.Errorf("quotePowerShell(%q) = %s, want %s", tt.in, got, tt.ps)
		}
	}
}

func TestCommentLinesCannotEscape(t *testing.T) {
	text := "a\nb\rc\u2028d\u2029e\u0085f\x00g\x1bh"
	lines := commentLines(text)
	if len(lines) != 2 {
		t.Fatalf("lines = %q", lines)
	}
	for _, l := range lines {
		for _, r := range l {
			if r < 0x20 || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0x7f {
				t.Errorf("line %q keeps %U", l, r)
			}
		}
	}
}

// TestRenderStructure checks, for every dialect, that each value stays on
// the lines of its own assignment: a reader that knows only the quoting
// rules finds exactly the assignments that were made, in order.
func TestRenderStructure(t *testing.T) {
	for _, shell := range []string{shellSh, shellFish, shellPowerShell} {
		t.Run(shell, func(t *testing.T) {
			var s script
			s.Comment("header with a hostile comment\n$(touch PWNED) ' \" `x` \r\u2028 end")
			for i, v := range hostile {
				s.Set("V"+string(rune('A'+i)), v)
			}
			out, err := s.Render(shell)
			if err != nil {
				t.Fatal(err)
			}
			got := parseAssignments(t, shell, out)
			if len(got) != len(hostile) {
				t.Fatalf("found %d assignments, want %d:\n%s", len(got), len(hostile), out)
			}
			for i, v := range hostile {
				if got[i] != v {
					t.Errorf("value %d = %q, want %q", i, got[i], v)
				}
			}
		})
	}
}

// parseAssignments walks rendered output: comment lines, then assignments
// whose quoted value may continue over several lines.
func parseAssignments(t *testing.T, shell, out string) []string {
	t.Helper()
	var vals []string
	lines := strings.SplitAfter(out, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		var prefix string
		switch shell {
		case shellSh:
			prefix = "export V"
		case shellFish:
			prefix = "set -gx V"
		case shellPowerShell:
			prefix = "$env:V"
		}
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("line %d is neither a comment nor an assignment: %q\n%s", i, l, out)
		}
		// Gather the value: from the first quote to the line that closes it.
		rest := l[len(prefix)+1:]
		switch shell {
		case shellSh:
			rest = strings.TrimPrefix(rest, "=")
		case shellFish:
			rest = strings.TrimPrefix(rest, " ")
		case shellPowerShell:
			rest = strings.TrimPrefix(rest, " = ")
		}
		word := rest
		for !closes(shell, strings.TrimSuffix(word, "\n")) {
			i++
			if i >= len(lines) {
				t.Fatalf("value never closes:\n%s", out)
			}
			word += lines[i]
		}
		word = strings.TrimSuffix(word, "\n")
		switch shell {
		case shellSh:
			vals = append(vals, unquoteSh(t, word))
		case shellFish:
			vals = append(vals, unquoteFish(t, word))
		case shellPowerShell:
			vals = append(vals, unquotePowerShell(t, word))
		}
	}
	return vals
}

// closes reports whether word is a complete quoted value in the dialect.
func closes(shell, word string) bool {
	switch shell {
	case shellSh:
		open := false
		for i := 0; i < len(word); i++ {
			if word[i] == '\'' {
				open = !open
			} else if !open && word[i] == '\\' {
				i++
			}
		}
		return !open
	case shellFish:
		if len(word) < 2 || word[0] != '\'' {
			return false
		}
		for i := 1; i < len(word); i++ {
			switch word[i] {
			case '\\':
				i++
			case '\'':
				return i == len(word)-1
			}
		}
		return false
	default:
		rs := []rune(word)
		isQ := func(r rune) bool {
			return r == '\'' || r == '\u2018' || r == '\u2019' || r == '\u201A' || r == '\u201B'
		}
		for i := 1; i < len(rs); i++ {
			if isQ(rs[i]) {
				if i+1 < len(rs) && isQ(rs[i+1]) {
					i++
					continue
				}
				return i == len(rs)-1
			}
		}
		return false
	}
}

// TestRealShells evaluates the output in fish and PowerShell when they are
// installed (CI has bash only; the structural tests above cover the rest).
func TestRealShells(t *testing.T) {
	for _, sh := range []struct {
		name, bin string
		run       func(script, dir string) []string
	}{
		{shellFish, "fish", func(script, dir string) []string {
			return []string{"-N", "-c", "source " + filepath.Join(dir, "s") + "; and for v in (string split ' ' -- $names); string join0 -- $$v; end; true"}
		}},
		{shellPowerShell, "pwsh", func(script, dir string) []string {
			return []string{"-NoProfile", "-NonInteractive", "-Command", ". " + filepath.Join(dir, "s.ps1") + "; foreach ($n in $env:names -split ' ') { [Console]::Out.Write((Get-Item env:$n).Value + [char]0) }"}
		}},
	} {
		t.Run(sh.name, func(t *testing.T) {
			bin, err := exec.LookPath(sh.bin)
			if err != nil {
				t.Skipf("%s not installed", sh.bin)
			}
			var s script
			s.Comment("hostile comment\n$(touch PWNED) `x`")
			var names []string
			for i, v := range hostile {
				n := "V" + string(rune('A'+i))
				names = append(names, n)
				s.Set(n, v)
			}
			out, err := s.Render(sh.name)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "s")
			if sh.name == shellPowerShell {
				file += ".ps1"
			}
			if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, sh.run(out, dir)...)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "names=" + strings.Join(names, " ")}
			res, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s\nscript:\n%s", sh.bin, err, res, out)
			}
			vals := strings.Split(string(res), "\x00")
			for i, v := range hostile {
				if i >= len(vals) || vals[i] != v {
					got := ""
					if i < len(vals) {
						got = vals[i]
					}
					t.Errorf("%s: %s = %q, want %q", sh.bin, names[i], got, v)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
				t.Fatal("an injected command ran")
			}
		})
	}
}
