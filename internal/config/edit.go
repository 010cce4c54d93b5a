package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/ccrelay/ccrelay/internal/fsutil"
)

// Field is one key of an account that AppendAccount writes, in order.
type Field struct {
	// Key is the TOML key, e.g. "refresh_token".
	Key string
	// Value is a string, an int (or int64) or a bool.
	Value any
}

// SetAccountField rewrites `key = "value"` inside the [[accounts]] table
// whose id is accountID: the existing value is replaced in place (the key's
// spelling, its indentation and a trailing comment stay), or, when the
// account has no such key, a new line is inserted right after the id line.
// Every other byte of the file is kept. It is an error if no account has that
// id.
//
// The edit is made on the text, then the result is parsed and compared with
// the original: it must differ in exactly that one value, or nothing is
// written. The file is replaced atomically and left at mode 0600 (or
// stricter).
func SetAccountField(path, accountID, key, value string) error {
	if key == "" {
		return errors.New("set account field: empty key")
	}
	if key == "id" {
		return errors.New("set account field: an account's id cannot be changed this way")
	}
	quoted, err := editQuote(value)
	if err != nil {
		return fmt.Errorf("set %s of account %q: %w", key, accountID, err)
	}
	data, perm, err := editRead(path)
	if err != nil {
		return err
	}
	if data == nil {
		return fmt.Errorf("set %s of account %q: %s does not exist", key, accountID, path)
	}
	src := string(data)
	want, err := editDecode(src)
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	stmts, err := editScan(src)
	if err != nil {
		return fmt.Errorf("scan %s: %w", path, err)
	}

	blk, err := editFindAccount(stmts, src, accountID)
	if err != nil {
		if editDecodedAccount(want, accountID) != nil {
			return fmt.Errorf("%s: account %q is not written as an [[accounts]] table; edit it by hand", path, accountID)
		}
		return fmt.Errorf("%s: %w", path, err)
	}

	var out string
	if kv := blk.keys[key]; kv != nil {
		out = src[:kv.valStart] + quoted + src[kv.valEnd:]
	} else {
		id := blk.keys["id"]
		eol := editEOL(src)
		line := editIndent(src, id.start) + editKey(key) + " = " + quoted
		if strings.HasSuffix(src[id.start:id.end], "\n") {
			out = src[:id.end] + line + eol + src[id.end:]
		} else { // the id line is the last line and has no line break
			out = src[:id.end] + eol + line + src[id.end:]
		}
	}

	acct := editDecodedAccount(want, accountID)
	if acct == nil { // the text has it but the decoder does not: cannot happen for valid TOML
		return fmt.Errorf("%s: account %q not found by the TOML decoder", path, accountID)
	}
	acct[key] = value
	if err := editVerify(out, want); err != nil {
		return fmt.Errorf("set %s of account %q in %s: %w", key, accountID, path, err)
	}
	return fsutil.WriteFileAtomic(path, []byte(out), perm)
}

// AppendAccount appends a new [[accounts]] table with fields, in order, at the
// end of the file, after a blank line. The rest of the file is kept byte for
// byte (a missing final line break is added). fields must include a
// non-empty string "id" that no account has yet. A missing file is created
// with mode 0600; an existing one is replaced atomically and left at mode
// 0600 (or stricter).
func AppendAccount(path string, fields []Field) error {
	id, lines, values, err := editFields(fields)
	if err != nil {
		return fmt.Errorf("append account: %w", err)
	}
	data, perm, err := editRead(path)
	if err != nil {
		return err
	}
	src := string(data)
	want, err := editDecode(src)
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	var accounts []map[string]any
	if v, ok := want["accounts"]; ok {
		accounts, ok = v.([]map[string]any)
		if !ok {
			return fmt.Errorf("%s: accounts is not a list of [[accounts]] tables; edit it by hand", path)
		}
	}
	if editDecodedAccount(want, id) != nil {
		return fmt.Errorf("%s: account %q already exists", path, id)
	}

	eol := editEOL(src)
	var b strings.Builder
	b.WriteString(src)
	if src != "" && !strings.HasSuffix(src, "\n") {
		b.WriteString(eol)
	}
	if strings.TrimSpace(src[editBOMLen(src):]) != "" && !editEndsWithBlankLine(b.String()) {
		b.WriteString(eol)
	}
	b.WriteString("[[accounts]]" + eol)
	for _, l := range lines {
		b.WriteString(l + eol)
	}
	out := b.String()

	want["accounts"] = append(accounts, values)
	if err := editVerify(out, want); err != nil {
		return fmt.Errorf("append account %q to %s: %w", id, path, err)
	}
	return fsutil.WriteFileAtomic(path, []byte(out), perm)
}

// editFields validates and encodes AppendAccount's fields: the account id,
// the `key = value` lines, and the values as the TOML decoder will return
// them.
func editFields(fields []Field) (id string, lines []string, values map[string]any, err error) {
	values = make(map[string]any, len(fields))
	for _, f := range fields {
		if f.Key == "" {
			return "", nil, nil, errors.New("field with an empty key")
		}
		if _, dup := values[f.Key]; dup {
			return "", nil, nil, fmt.Errorf("field %q given twice", f.Key)
		}
		var enc string
		switch v := f.Value.(type) {
		case string:
			if enc, err = editQuote(v); err != nil {
				return "", nil, nil, fmt.Errorf("field %q: %w", f.Key, err)
			}
			values[f.Key] = v
		case int:
			enc = strconv.Itoa(v)
			values[f.Key] = int64(v)
		case int64:
			enc = strconv.FormatInt(v, 10)
			values[f.Key] = v
		case bool:
			enc = strconv.FormatBool(v)
			values[f.Key] = v
		default:
			return "", nil, nil, fmt.Errorf("field %q: unsupported value type %T", f.Key, f.Value)
		}
		lines = append(lines, editKey(f.Key)+" = "+enc)
	}
	id, _ = values["id"].(string)
	if id == "" {
		return "", nil, nil, errors.New(`fields need a non-empty string "id"`)
	}
	return id, lines, values, nil
}

// editRead returns the file's content (nil when it does not exist) and the
// mode to write it back with: the current owner bits capped at 0600, so a
// world- or group-readable file is tightened, and a new or unreadable one
// gets 0600.
func editRead(path string) ([]byte, os.FileMode, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0o600, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read config: %w", err)
	}
	perm := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		if p := fi.Mode().Perm() & 0o600; p&0o400 != 0 {
			perm = p
		}
	}
	return data, perm, nil
}

func editDecode(src string) (map[string]any, error) {
	m := map[string]any{}
	if _, err := toml.Decode(src, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// editVerify parses out and checks it decodes to exactly want: the edit
// changed what it meant to and nothing else (no injected key or table).
func editVerify(out string, want map[string]any) error {
	got, err := editDecode(out)
	if err != nil {
		// Only the line: the decoder's message may quote the new value, which
		// is usually a secret.
		line := 0
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line = pe.Position.Line
		}
		return fmt.Errorf("the edited file would not parse at line %d (nothing written)", line)
	}
	if !reflect.DeepEqual(got, want) {
		return errors.New("the edited file would not hold the intended values (nothing written)")
	}
	return nil
}

// editDecodedAccount returns the decoded account with id, or nil. Accounts
// written as [[accounts]] tables decode to []map[string]any, an inline
// `accounts = [{...}]` array to []any.
func editDecodedAccount(doc map[string]any, id string) map[string]any {
	switch accounts := doc["accounts"].(type) {
	case []map[string]any:
		for _, a := range accounts {
			if a["id"] == id {
				return a
			}
		}
	case []any:
		for _, v := range accounts {
			if a, ok := v.(map[string]any); ok && a["id"] == id {
				return a
			}
		}
	}
	return nil
}

// editQuote encodes s as a TOML basic string. Quotes, backslashes and every
// control character are escaped, so no value can end the string early or
// start a new line of TOML.
func editQuote(s string) (string, error) {
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

// editKey writes key bare when TOML allows it, quoted otherwise.
func editKey(key string) string {
	for _, c := range []byte(key) {
		if !editIsBare(c) {
			q, _ := editQuote(key) // keys come from our own code: valid UTF-8
			return q
		}
	}
	return key
}

func editIsBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// editEOL is the file's line break: CRLF if its first line ends so, else LF.
func editEOL(src string) string {
	if i := strings.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

func editEndsWithBlankLine(s string) bool {
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	i := strings.LastIndexByte(s, '\n')
	return strings.TrimSpace(s[i+1:]) == ""
}

// editIndent returns the whitespace a line starting at start is indented by.
func editIndent(src string, start int) string {
	end := start
	for end < len(src) && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return src[start:end]
}

// editAccount is one [[accounts]] table found in the text: its own keys
// (not those of sub-tables like [accounts.proxy]).
type editAccount struct {
	keys map[string]*editStmt
}

// editFindAccount locates the [[accounts]] table whose id is accountID.
func editFindAccount(stmts []editStmt, src, accountID string) (*editAccount, error) {
	var (
		found *editAccount
		cur   *editAccount
		all   []*editAccount
	)
	for i := range stmts {
		st := &stmts[i]
		switch st.kind {
		case editHeader:
			cur = nil
			if st.array && len(st.key) == 1 && st.key[0] == "accounts" {
				cur = &editAccount{keys: map[string]*editStmt{}}
				all = append(all, cur)
			}
		case editKeyVal:
			if cur != nil && len(st.key) == 1 {
				cur.keys[st.key[0]] = st
			}
		}
	}
	for _, a := range all {
		id := a.keys["id"]
		if id == nil {
			continue
		}
		v, err := editDecode("v = " + src[id.valStart:id.valEnd])
		if err != nil {
			continue
		}
		if v["v"] != accountID {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("account id %q appears more than once", accountID)
		}
		found = a
	}
	if found == nil {
		return nil, fmt.Errorf("no account with id %q", accountID)
	}
	return found, nil
}

type editStmtKind int

const (
	editBlank  editStmtKind = iota // blank or comment-only line
	editHeader                     // [table] or [[array]]
	editKeyVal                     // key = value
)

// editStmt is one TOML statement: a blank or comment line, a table header,
// or a key/value pair, which may span lines (multi-line strings, arrays).
type editStmt struct {
	kind       editStmtKind
	start, end int      // bytes of the statement, including its line break
	key        []string // the header's table or the pair's (dotted) key
	array      bool     // [[array]] header
	valStart   int      // key/value: the value's bytes
	valEnd     int
}

// editScanner splits TOML text into statements. It understands exactly what
// can hide a "[" or a line break from a naive line scanner: strings of all
// four kinds, arrays and inline tables across lines, and comments. It is
// only run on text the TOML decoder has accepted, and its result is
// verified by decoding again, so it can be lenient elsewhere.
type editScanner struct {
	src string
	pos int
}

func editScan(src string) ([]editStmt, error) {
	s := &editScanner{src: src, pos: editBOMLen(src)}
	var out []editStmt
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

// editBOMLen is the length of the byte-order mark the decoder skips: UTF-8,
// or UTF-16 in either order (invalid, but some editors write it).
func editBOMLen(src string) int {
	switch {
	case strings.HasPrefix(src, "\ufeff"):
		return len("\ufeff")
	case strings.HasPrefix(src, "\xff\xfe"), strings.HasPrefix(src, "\xfe\xff"):
		return 2
	}
	return 0
}

func (s *editScanner) statement() (editStmt, error) {
	st := editStmt{start: s.pos}
	s.skipSpace()
	switch {
	case s.atLineEnd():
		st.kind = editBlank
	case s.src[s.pos] == '#':
		st.kind = editBlank
	case s.src[s.pos] == '[':
		st.kind = editHeader
		s.pos++
		if s.peek('[') {
			st.array = true
			s.pos++
		}
		key, err := s.key()
		if err != nil {
			return st, err
		}
		st.key = key
		s.skipSpace()
		closing := "]"
		if st.array {
			closing = "]]"
		}
		if !strings.HasPrefix(s.src[s.pos:], closing) {
			return st, errors.New("unterminated table header")
		}
		s.pos += len(closing)
	default:
		st.kind = editKeyVal
		key, err := s.key()
		if err != nil {
			return st, err
		}
		st.key = key
		s.skipSpace()
		if !s.peek('=') {
			return st, errors.New(`expected "=" after key`)
		}
		s.pos++
		s.skipSpace()
		st.valStart = s.pos
		if st.valEnd, err = s.value(); err != nil {
			return st, err
		}
	}
	if err := s.lineRest(); err != nil {
		return st, err
	}
	st.end = s.pos
	return st, nil
}

func (s *editScanner) peek(c byte) bool { return s.pos < len(s.src) && s.src[s.pos] == c }

func (s *editScanner) skipSpace() {
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t') {
		s.pos++
	}
}

func (s *editScanner) atLineEnd() bool {
	return s.pos >= len(s.src) || s.src[s.pos] == '\n' || strings.HasPrefix(s.src[s.pos:], "\r\n")
}

// lineRest consumes optional whitespace, an optional comment and the line
// break that end a statement.
func (s *editScanner) lineRest() error {
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
func (s *editScanner) skipComment() {
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
func (s *editScanner) key() ([]string, error) {
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
			v, err := editDecode("k = " + s.src[start:s.pos])
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
func (s *editScanner) value() (int, error) {
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
func (s *editScanner) nested() error {
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
func (s *editScanner) str() error {
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

func (s *editScanner) basicString() error {
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

func (s *editScanner) literalString() error {
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
func (s *editScanner) multiline(delim string, escapes bool) error {
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
