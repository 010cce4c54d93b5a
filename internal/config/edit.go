package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ccrelay/ccrelay/internal/fsutil"
	"github.com/ccrelay/ccrelay/internal/tomledit"
)

// ErrAccountExists is AppendAccount's error when the file already has an
// account with the new account's id (another edit may have added it since
// the caller looked).
var ErrAccountExists = errors.New("an account with this id already exists")

// accountExistsError names the file and the id; it matches ErrAccountExists.
type accountExistsError struct{ path, id string }

func (e *accountExistsError) Error() string {
	return fmt.Sprintf("%s: account %q already exists", e.path, e.id)
}

func (e *accountExistsError) Is(target error) bool { return target == ErrAccountExists }

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
// stricter). The read, edit and write happen under the config's edit lock
// (see lockForEdit), so concurrent edits by other ccrelay processes all land.
func SetAccountField(path, accountID, key, value string) error {
	return SetAccountFields(path, accountID, []Field{{Key: key, Value: value}})
}

// SetAccountFields is SetAccountField for several string fields of one
// account at once: all of them or none reach the file, in one atomic
// replacement (a crash never leaves a new client_id with an old refresh
// token).
func SetAccountFields(path, accountID string, fields []Field) error {
	type edit struct{ key, value, quoted string }
	edits := make([]edit, 0, len(fields))
	for _, f := range fields {
		switch f.Key {
		case "":
			return errors.New("set account field: empty key")
		case "id":
			return errors.New("set account field: an account's id cannot be changed this way")
		}
		value, ok := f.Value.(string)
		if !ok {
			return fmt.Errorf("set %s of account %q: only string values can be set, not %T", f.Key, accountID, f.Value)
		}
		quoted, err := tomledit.Quote(value)
		if err != nil {
			return fmt.Errorf("set %s of account %q: %w", f.Key, accountID, err)
		}
		edits = append(edits, edit{f.Key, value, quoted})
	}
	if len(edits) == 0 {
		return nil
	}
	ed, err := beginEdit(path)
	if err != nil {
		return err
	}
	defer ed.unlock()
	if !ed.exists {
		return fmt.Errorf("set %s of account %q: %s does not exist", edits[0].key, accountID, path)
	}
	acct := editDecodedAccount(ed.want, accountID)
	out := ed.src
	for _, e := range edits {
		stmts, err := tomledit.Scan(out)
		if err != nil {
			return fmt.Errorf("scan %s: %w", path, err)
		}
		blk, err := editFindAccount(stmts, out, accountID)
		if err != nil {
			if acct != nil {
				return fmt.Errorf("%s: account %q is not written as an [[accounts]] table; edit it by hand", path, accountID)
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		if acct == nil { // the text has it but the decoder does not: cannot happen for valid TOML
			return fmt.Errorf("%s: account %q not found by the TOML decoder", path, accountID)
		}
		if kv := blk.keys[e.key]; kv != nil {
			out = out[:kv.ValStart] + e.quoted + out[kv.ValEnd:]
		} else {
			id := blk.keys["id"]
			eol := tomledit.EOL(out)
			line := id.Indent(out) + tomledit.Key(e.key) + " = " + e.quoted
			if strings.HasSuffix(out[id.Start:id.End], "\n") {
				out = out[:id.End] + line + eol + out[id.End:]
			} else { // the id line is the last line and has no line break
				out = out[:id.End] + eol + line + out[id.End:]
			}
		}
		acct[e.key] = e.value
	}
	return ed.write(out, fmt.Sprintf("set %s of account %q in %s", edits[0].key, accountID, path))
}

// AppendAccount appends a new [[accounts]] table with fields, in order, at the
// end of the file, after a blank line. The rest of the file is kept byte for
// byte (a missing final line break is added). fields must include a
// non-empty string "id" that no account has yet (else the error is
// ErrAccountExists). A missing file is created with mode 0600; an existing
// one is replaced atomically and left at mode 0600 (or stricter). Like
// SetAccountField it works under the config's edit lock.
func AppendAccount(path string, fields []Field) error {
	id, lines, values, err := editFields(fields)
	if err != nil {
		return fmt.Errorf("append account: %w", err)
	}
	ed, err := beginEdit(path)
	if err != nil {
		return err
	}
	defer ed.unlock()
	var accounts []map[string]any
	if v, ok := ed.want["accounts"]; ok {
		accounts, ok = v.([]map[string]any)
		if !ok {
			return fmt.Errorf("%s: accounts is not a list of [[accounts]] tables; edit it by hand", path)
		}
	}
	if editDecodedAccount(ed.want, id) != nil {
		return &accountExistsError{path: path, id: id}
	}

	out := editAppendTable(ed.src, "accounts", lines)

	ed.want["accounts"] = append(accounts, values)
	return ed.write(out, fmt.Sprintf("append account %q to %s", id, path))
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
		switch f.Value.(type) {
		case string, int, int64, bool: // an account's kinds of value
		default:
			return "", nil, nil, fmt.Errorf("field %q: unsupported value type %T", f.Key, f.Value)
		}
		enc, dec, err := editValue(f.Value)
		if err != nil {
			return "", nil, nil, fmt.Errorf("field %q: %w", f.Key, err)
		}
		values[f.Key] = dec
		lines = append(lines, tomledit.Key(f.Key)+" = "+enc)
	}
	id, _ = values["id"].(string)
	if id == "" {
		return "", nil, nil, errors.New(`fields need a non-empty string "id"`)
	}
	return id, lines, values, nil
}

// configEdit is one edit of the config file in progress, under its edit
// lock: every edit (SetAccountFields, AppendAccount, AppendKey,
// SetKeyField, RemoveKey) makes its change on src, changes want to what the
// new text must decode to, and writes the new text with write.
type configEdit struct {
	path string
	// src is the file's text; exists is false when there is no file yet
	// (src is then "").
	src    string
	exists bool
	// want is src decoded.
	want map[string]any
	// perm is the mode to write the file back with (editRead).
	perm os.FileMode
	// unlock releases the edit lock; the caller defers it.
	unlock func()
}

// beginEdit takes the edit lock of the config at path (lockForEdit), then
// reads (editRead) and decodes the file. On an error the lock is released
// already.
func beginEdit(path string) (*configEdit, error) {
	unlock, err := lockForEdit(path)
	if err != nil {
		return nil, err
	}
	data, perm, err := editRead(path)
	if err != nil {
		unlock()
		return nil, err
	}
	src := string(data)
	want, err := editDecode(src)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &configEdit{path: path, src: src, exists: data != nil, want: want, perm: perm, unlock: unlock}, nil
}

// write checks that out decodes to exactly e.want (editVerify), then
// replaces the file with out atomically. what names the edit in a failed
// check's error: append key "alice" to config.toml.
func (e *configEdit) write(out, what string) error {
	if err := editVerify(out, e.want); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fsutil.WriteFileAtomic(e.path, []byte(out), e.perm)
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

func editEndsWithBlankLine(s string) bool {
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	i := strings.LastIndexByte(s, '\n')
	return strings.TrimSpace(s[i+1:]) == ""
}

// editAccount is one [[accounts]] table found in the text: its own keys
// (not those of sub-tables like [accounts.proxy]).
type editAccount struct {
	keys map[string]*tomledit.Stmt
}

// editFindAccount locates the [[accounts]] table whose id is accountID.
func editFindAccount(stmts []tomledit.Stmt, src, accountID string) (*editAccount, error) {
	var (
		found *editAccount
		cur   *editAccount
		all   []*editAccount
	)
	for i := range stmts {
		st := &stmts[i]
		switch st.Kind {
		case tomledit.Header:
			cur = nil
			if st.Array && len(st.Key) == 1 && st.Key[0] == "accounts" {
				cur = &editAccount{keys: map[string]*tomledit.Stmt{}}
				all = append(all, cur)
			}
		case tomledit.KeyVal:
			if cur != nil && len(st.Key) == 1 {
				cur.keys[st.Key[0]] = st
			}
		}
	}
	for _, a := range all {
		id := a.keys["id"]
		if id == nil {
			continue
		}
		v, err := editDecode("v = " + src[id.ValStart:id.ValEnd])
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

// editAppendTable returns src with one [[table]] entry of lines appended,
// in src's line ending, after a blank line (none in an empty file).
func editAppendTable(src, table string, lines []string) string {
	eol := tomledit.EOL(src)
	var b strings.Builder
	b.WriteString(src)
	if src != "" && !strings.HasSuffix(src, "\n") {
		b.WriteString(eol)
	}
	if strings.TrimSpace(src[tomledit.BOMLen(src):]) != "" && !editEndsWithBlankLine(b.String()) {
		b.WriteString(eol)
	}
	b.WriteString("[[" + table + "]]" + eol)
	for _, l := range lines {
		b.WriteString(l + eol)
	}
	return b.String()
}
