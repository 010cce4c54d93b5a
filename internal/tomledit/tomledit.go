// Package tomledit edits TOML text in place: a scanner that finds the
// statements (table headers, key/value pairs, blank and comment lines) with
// their byte offsets, and a quoter for the values written. Everything around
// an edit stays byte for byte, comments included. It is shared by the config
// edits of `login` and `keys` (internal/config) and by `env codex
// --write-codex-config`.
//
// The package does not decode: its callers decode the text before and after
// an edit with the real TOML decoder and compare, so a scanner mistake can
// refuse an edit but never write a file that says something else.
package tomledit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Quote encodes s as a TOML basic string. Quotes, backslashes and every
// control character are escaped, so no value can end the string early or
// start a new line of TOML. Invalid UTF-8 is an error: TOML cannot hold it.
func Quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("value is not valid UTF-8")
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// Key writes a key bare when TOML allows it, quoted otherwise. key must be
// valid UTF-8 (keys come from ccrelay's own code).
func Key(key string) string {
	for _, c := range []byte(key) {
		if !isBare(c) {
			q, err := Quote(key)
			if err != nil {
				q, _ = Quote(strings.ToValidUTF8(key, "\uFFFD"))
			}
			return q
		}
	}
	if key == "" {
		return `""`
	}
	return key
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// EOL is the text's line break: CRLF if its first line ends so, else LF.
func EOL(src string) string {
	if i := strings.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// decodeString decodes a one-line document (a quoted key's value).
func decodeString(src string) (map[string]any, error) {
	m := map[string]any{}
	if _, err := toml.Decode(src, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// Kind is what a statement is.
type Kind int

// The kinds of statement Scan finds.
const (
	Blank  Kind = iota // blank or comment-only line
	Header             // [table] or [[array]]
	KeyVal             // key = value
)

// Stmt is one TOML statement: a blank or comment line, a table header,
// or a key/value pair, which may span lines (multi-line strings, arrays).
type Stmt struct {
	// Kind is Blank, Header or KeyVal.
	Kind Kind
	// Start and End are the statement's bytes, including its line break
	// (and a trailing comment).
	Start, End int
	// Key is the header's table or the pair's (dotted) key, decoded.
	Key []string
	// Array marks an [[array]] header.
	Array bool
	// ValStart and ValEnd are a KeyVal's value bytes.
	ValStart, ValEnd int
}

// Indent is the whitespace the statement's first line is indented by.
func (st Stmt) Indent(src string) string {
	end := st.Start
	for end < len(src) && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return src[st.Start:end]
}

// EmptyLine reports whether the statement is an empty (or all-blank) line,
// as opposed to a comment.
func (st Stmt) EmptyLine(src string) bool {
	return st.Kind == Blank && strings.TrimSpace(src[st.Start:st.End]) == ""
}

// scanner splits TOML text into statements. It understands exactly what
// can hide a "[" or a line break from a naive line scanner: strings of all
// four kinds, arrays and inline tables across lines, and comments. It is
// only run on text the TOML decoder has accepted, and its result is
// verified by decoding again, so it can be lenient elsewhere.
type scanner struct {
	src string
	pos int
}

// Scan splits TOML text into statements that cover it exactly, from the end
// of a byte-order mark (see BOMLen) to the end. It is meant for text the TOML
// decoder has accepted (FuzzScan checks it never rejects such text), and
// callers verify an edit by decoding the result, so it may be lenient with
// invalid input.
func Scan(src string) ([]Stmt, error) {
	s := &scanner{src: src, pos: BOMLen(src)}
	var out []Stmt
	for s.pos < len(s.src) {
		st, err := s.statement()
		if err != nil {
			line := 1 + strings.Count(src[:min(s.pos, len(src))], "\n")
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// BOMLen is the length of the byte-order mark the decoder skips: UTF-8,
// or UTF-16 in either order (invalid, but some editors write it).
func BOMLen(src string) int {
	switch {
	case strings.HasPrefix(src, "\ufeff"):
		return len("\ufeff")
	case strings.HasPrefix(src, "\xff\xfe"), strings.HasPrefix(src, "\xfe\xff"):
		return 2
	}
	return 0
}

func (s *scanner) statement() (Stmt, error) {
	st := Stmt{Start: s.pos}
	s.skipSpace()
	switch {
	case s.atLineEnd():
		st.Kind = Blank
	case s.src[s.pos] == '#':
		st.Kind = Blank
	case s.src[s.pos] == '[':
		st.Kind = Header
		s.pos++
		if s.peek('[') {
			st.Array = true
			s.pos++
		}
		key, err := s.key()
		if err != nil {
			return st, err
		}
		st.Key = key
		s.skipSpace()
		closing := "]"
		if st.Array {
			closing = "]]"
		}
		if !strings.HasPrefix(s.src[s.pos:], closing) {
			return st, errors.New("unterminated table header")
		}
		s.pos += len(closing)
	default:
		st.Kind = KeyVal
		key, err := s.key()
		if err != nil {
			return st, err
		}
		st.Key = key
		s.skipSpace()
		if !s.peek('=') {
			return st, errors.New(`expected "=" after key`)
		}
		s.pos++
		s.skipSpace()
		st.ValStart = s.pos
		if st.ValEnd, err = s.value(); err != nil {
			return st, err
		}
	}
	if err := s.lineRest(); err != nil {
		return st, err
	}
	st.End = s.pos
	return st, nil
}

func (s *scanner) peek(c byte) bool { return s.pos < len(s.src) && s.src[s.pos] == c }

func (s *scanner) skipSpace() {
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t') {
		s.pos++
	}
}

func (s *scanner) atLineEnd() bool {
	return s.pos >= len(s.src) || s.src[s.pos] == '\n' || strings.HasPrefix(s.src[s.pos:], "\r\n")
}

// lineRest consumes optional whitespace, an optional comment and the line
// break that end a statement.
func (s *scanner) lineRest() error {
	s.skipSpace()
	if s.peek('#') {
		s.skipComment()
	}
	switch {
	case s.pos >= len(s.src):
	case s.src[s.pos] == '\n':
		s.pos++
	case strings.HasPrefix(s.src[s.pos:], "\r\n"):
		s.pos += 2
	default:
		return fmt.Errorf("unexpected %q after statement", s.src[s.pos])
	}
	return nil
}

// skipComment moves to the line break ending the comment (not past it).
func (s *scanner) skipComment() {
	if i := strings.IndexByte(s.src[s.pos:], '\n'); i >= 0 {
		s.pos += i
		if s.pos > 0 && s.src[s.pos-1] == '\r' {
			s.pos--
		}
		return
	}
	s.pos = len(s.src)
}

// key reads a possibly dotted key of bare and quoted parts.
func (s *scanner) key() ([]string, error) {
	var parts []string
	for {
		s.skipSpace()
		if s.pos >= len(s.src) {
			return nil, errors.New("unexpected end of file in key")
		}
		switch s.src[s.pos] {
		case '"':
			start := s.pos
			if err := s.basicString(); err != nil {
				return nil, err
			}
			v, err := decodeString("k = " + s.src[start:s.pos])
			if err != nil {
				return nil, fmt.Errorf("quoted key: %w", err)
			}
			k, _ := v["k"].(string)
			parts = append(parts, k)
		case '\'':
			start := s.pos + 1
			if err := s.literalString(); err != nil {
				return nil, err
			}
			parts = append(parts, s.src[start:s.pos-1])
		default:
			start := s.pos
			for s.pos < len(s.src) && !strings.ContainsRune(" \t\r\n=.[]#\"'", rune(s.src[s.pos])) {
				s.pos++
			}
			if s.pos == start {
				return nil, fmt.Errorf("unexpected %q where a key was expected", s.src[s.pos])
			}
			parts = append(parts, s.src[start:s.pos])
		}
		s.skipSpace()
		if !s.peek('.') {
			return parts, nil
		}
		s.pos++
	}
}

// value skips one value and returns where it ends (trailing whitespace of a
// bare value such as a number or date excluded).
func (s *scanner) value() (int, error) {
	if s.pos >= len(s.src) {
		return s.pos, errors.New("missing value")
	}
	switch s.src[s.pos] {
	case '"', '\'':
		err := s.str()
		return s.pos, err
	case '[', '{':
		err := s.nested()
		return s.pos, err
	}
	// Bare scalar: runs to a comment or the end of the line. A local
	// date-time may contain a space, so only trailing whitespace is cut.
	for s.pos < len(s.src) && s.src[s.pos] != '#' && s.src[s.pos] != '\n' {
		s.pos++
	}
	end := s.pos
	for end > 0 && (s.src[end-1] == ' ' || s.src[end-1] == '\t' || s.src[end-1] == '\r') {
		end--
	}
	s.pos = end
	return end, nil
}

// nested skips an array or inline table, which may span lines and contain
// strings with brackets and comments.
func (s *scanner) nested() error {
	depth := 0
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; c {
		case '"', '\'':
			if err := s.str(); err != nil {
				return err
			}
			continue
		case '#':
			s.skipComment()
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				s.pos++
				return nil
			}
		}
		s.pos++
	}
	return errors.New("unterminated array or inline table")
}

// str skips a string of any of TOML's four kinds.
func (s *scanner) str() error {
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		return s.multiline(`"""`, true)
	case strings.HasPrefix(rest, `'''`):
		return s.multiline(`'''`, false)
	case rest[0] == '"':
		return s.basicString()
	default:
		return s.literalString()
	}
}

func (s *scanner) basicString() error {
	for s.pos++; s.pos < len(s.src); s.pos++ {
		switch s.src[s.pos] {
		case '\\':
			s.pos++
		case '"':
			s.pos++
			return nil
		case '\n':
			return errors.New("unterminated string")
		}
	}
	return errors.New("unterminated string")
}

func (s *scanner) literalString() error {
	i := strings.IndexAny(s.src[s.pos+1:], "'\n")
	if i < 0 || s.src[s.pos+1+i] != '\'' {
		return errors.New("unterminated literal string")
	}
	s.pos += 1 + i + 1
	return nil
}

// multiline skips a triple-quoted string, basic or literal. Up to two quote
// characters may directly precede the closing delimiter and belong to the
// content.
func (s *scanner) multiline(delim string, escapes bool) error {
	for s.pos += 3; s.pos < len(s.src); s.pos++ {
		if escapes && s.src[s.pos] == '\\' {
			s.pos++
			continue
		}
		if strings.HasPrefix(s.src[s.pos:], delim) {
			s.pos += 3
			for i := 0; i < 2 && s.peek(delim[0]); i++ {
				s.pos++
			}
			return nil
		}
	}
	return errors.New("unterminated multi-line string")
}
