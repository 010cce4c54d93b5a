package env

import (
	"fmt"
	"strings"
)

// Shells accepted by --shell, after aliases.
const (
	shellSh         = "sh"
	shellFish       = "fish"
	shellPowerShell = "powershell"
)

// normalizeShell maps --shell values and $SHELL basenames to a dialect.
func normalizeShell(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "sh", "bash", "zsh", "dash", "ksh", "ash", "posix":
		return shellSh, true
	case "fish":
		return shellFish, true
	case "powershell", "pwsh", "ps":
		return shellPowerShell, true
	}
	return "", false
}

// script is what env prints: comments and variable assignments, rendered
// for one shell so the output can be evaluated as it is.
type script struct {
	lines []scriptLine
}

type scriptLine struct {
	comment    bool
	name, text string
}

// Comment adds comment text; it may span lines, each becomes a comment line.
func (s *script) Comment(format string, args ...any) {
	s.lines = append(s.lines, scriptLine{comment: true, text: strings.TrimRight(fmt.Sprintf(format, args...), "\n")})
}

// Set adds an exported variable.
func (s *script) Set(name, value string) {
	s.lines = append(s.lines, scriptLine{name: name, text: value})
}

// Render writes the script in the dialect of shell. A value that no shell
// variable can hold (a NUL byte) is an error rather than a silently wrong
// script.
func (s *script) Render(shell string) (string, error) {
	var b strings.Builder
	for _, l := range s.lines {
		if l.comment {
			for _, c := range commentLines(l.text) {
				if c == "" {
					b.WriteString("#\n")
				} else {
					b.WriteString("# " + c + "\n")
				}
			}
			continue
		}
		if strings.ContainsRune(l.text, 0) {
			return "", fmt.Errorf("the value of %s contains a NUL byte, which no shell variable can hold", l.name)
		}
		switch shell {
		case shellFish:
			fmt.Fprintf(&b, "set -gx %s %s\n", l.name, quoteFish(l.text))
		case shellPowerShell:
			fmt.Fprintf(&b, "$env:%s = %s\n", l.name, quotePowerShell(l.text))
		default:
			fmt.Fprintf(&b, "export %s=%s\n", l.name, quoteSh(l.text))
		}
	}
	return b.String(), nil
}

// commentLines splits comment text into lines that are safe after "# " in
// every dialect: any character a shell could take as the end of a line
// (LF, CR, and for PowerShell also NEL and the Unicode line and paragraph
// separators) or any other control character becomes a line break or a
// space, so a hostile value shown in a comment cannot start a command.
func commentLines(text string) []string {
	var out []string
	var cur strings.Builder
	for _, r := range text {
		switch {
		case r == '\n':
			out = append(out, strings.TrimRight(cur.String(), " "))
			cur.Reset()
		case r == '\r', r == 0x85, r == 0x2028, r == 0x2029, r < 0x20 && r != '\t', r == 0x7f:
			cur.WriteByte(' ')
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, strings.TrimRight(cur.String(), " "))
}

// quoteSh quotes for POSIX shells: inside single quotes nothing is special
// except the single quote itself, which is closed, escaped and reopened.
func quoteSh(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteFish quotes for fish: inside single quotes only \' and \\ are escapes.
func quoteFish(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

// quotePowerShell quotes for PowerShell: a single-quoted string is verbatim;
// a quote inside is doubled. PowerShell also treats the typographic single
// quotes U+2018..U+201B as quote characters, so those are doubled too.
func quotePowerShell(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\u2018', '\u2019', '\u201A', '\u201B':
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}
