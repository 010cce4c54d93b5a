package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ccrelay/ccrelay/internal/tomledit"
)

// [[keys]] edits for `ccrelay keys`, on the same text-preserving machinery
// as the account edits (edit.go): the change is made on the text, the
// result is decoded and compared with the intended document, and the file
// is replaced atomically at 0600.

// ErrKeyNotFound is returned (wrapped, with the name) when no [[keys]] entry
// has the name an edit asks for.
var ErrKeyNotFound = errors.New("no [[keys]] entry named")

// editKeyBlock is one [[keys]] table in the text: its byte range (header to
// the next header or the end) and its own keys.
type editKeyBlock struct {
	start, end int
	keys       map[string]*tomledit.Stmt
}

func editFindKey(src, name string) (*editKeyBlock, error) {
	stmts, err := tomledit.Scan(src)
	if err != nil {
		return nil, err
	}
	var all []*editKeyBlock
	var cur *editKeyBlock
	for i := range stmts {
		st := &stmts[i]
		switch st.Kind {
		case tomledit.Header:
			if cur != nil {
				cur.end = st.Start
				cur = nil
			}
			if st.Array && len(st.Key) == 1 && st.Key[0] == "keys" {
				cur = &editKeyBlock{start: st.Start, end: len(src), keys: map[string]*tomledit.Stmt{}}
				all = append(all, cur)
			}
		case tomledit.KeyVal:
			if cur != nil && len(st.Key) == 1 {
				cur.keys[st.Key[0]] = st
			}
		}
	}
	var found *editKeyBlock
	for _, b := range all {
		n := b.keys["name"]
		if n == nil {
			continue
		}
		v, err := editDecode("v = " + src[n.ValStart:n.ValEnd])
		if err != nil || v["v"] != name {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("key name %q appears more than once", name)
		}
		found = b
	}
	if found == nil {
		return nil, fmt.Errorf("%w %q", ErrKeyNotFound, name)
	}
	return found, nil
}

func decodedKeys(doc map[string]any) ([]map[string]any, error) {
	v, ok := doc["keys"]
	if !ok {
		return nil, nil
	}
	ks, ok := v.([]map[string]any)
	if !ok {
		return nil, fmt.Errorf("keys is not a list of [[keys]] tables; edit it by hand")
	}
	return ks, nil
}

// editValue encodes a value for a key line and returns it as the decoder
// will: strings, ints, floats, bools and string lists.
func editValue(v any) (string, any, error) {
	switch x := v.(type) {
	case string:
		q, err := tomledit.Quote(x)
		return q, x, err
	case int:
		return strconv.Itoa(x), int64(x), nil
	case int64:
		return strconv.FormatInt(x, 10), x, nil
	case float64:
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s, x, nil
	case bool:
		return strconv.FormatBool(x), x, nil
	case []string:
		parts := make([]string, len(x))
		dec := make([]any, len(x))
		for i, s := range x {
			q, err := tomledit.Quote(s)
			if err != nil {
				return "", nil, err
			}
			parts[i], dec[i] = q, s
		}
		return "[" + strings.Join(parts, ", ") + "]", dec, nil
	}
	return "", nil, fmt.Errorf("unsupported value type %T", v)
}

// AppendKey appends a [[keys]] table with fields, in order, at the end of
// the file. fields must include a string "name" no key has yet. The rest of
// the file is kept byte for byte.
func AppendKey(path string, fields []Field) error {
	values := map[string]any{}
	var lines []string
	for _, f := range fields {
		enc, dec, err := editValue(f.Value)
		if err != nil {
			return fmt.Errorf("append key: field %q: %w", f.Key, err)
		}
		if _, dup := values[f.Key]; dup {
			return fmt.Errorf("append key: field %q given twice", f.Key)
		}
		values[f.Key] = dec
		lines = append(lines, tomledit.Key(f.Key)+" = "+enc)
	}
	name, _ := values["name"].(string)
	if name == "" {
		return fmt.Errorf(`append key: fields need a non-empty string "name"`)
	}
	ed, err := beginEdit(path)
	if err != nil {
		return err
	}
	defer ed.unlock()
	keys, err := decodedKeys(ed.want)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range keys {
		if k["name"] == name {
			return fmt.Errorf("%s: %w: %q", path, ErrKeyExists, name)
		}
	}
	out := editAppendTable(ed.src, "keys", lines)
	ed.want["keys"] = append(keys, values)
	return ed.write(out, fmt.Sprintf("append key %q to %s", name, path))
}

// SetKeyField sets field of the [[keys]] entry named name to value (in
// place when the entry has the field, else on a new line after its name).
func SetKeyField(path, name, field string, value any) error {
	enc, dec, err := editValue(value)
	if err != nil {
		return fmt.Errorf("set %s of key %q: %w", field, name, err)
	}
	ed, err := beginEdit(path)
	if err != nil {
		return err
	}
	defer ed.unlock()
	if !ed.exists {
		return fmt.Errorf("set %s of key %q: %s does not exist", field, name, path)
	}
	src := ed.src
	blk, err := editFindKey(src, name)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var out string
	if kv := blk.keys[field]; kv != nil {
		out = src[:kv.ValStart] + enc + src[kv.ValEnd:]
	} else {
		n := blk.keys["name"]
		line := n.Indent(src) + tomledit.Key(field) + " = " + enc
		if strings.HasSuffix(src[n.Start:n.End], "\n") {
			out = src[:n.End] + line + tomledit.EOL(src) + src[n.End:]
		} else {
			out = src[:n.End] + tomledit.EOL(src) + line + src[n.End:]
		}
	}
	keys, err := decodedKeys(ed.want)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range keys {
		if k["name"] == name {
			k[field] = dec
		}
	}
	return ed.write(out, fmt.Sprintf("set %s of key %q in %s", field, name, path))
}

// RemoveKey deletes the [[keys]] entry named name: its header and every
// line up to the next table header (comments directly above the next
// header stay with that header's block).
func RemoveKey(path, name string) error {
	ed, err := beginEdit(path)
	if err != nil {
		return err
	}
	defer ed.unlock()
	if !ed.exists {
		return fmt.Errorf("remove key %q: %s does not exist", name, path)
	}
	src := ed.src
	blk, err := editFindKey(src, name)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	out := src[:blk.start] + src[blk.end:]
	keys, err := decodedKeys(ed.want)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var rest []map[string]any
	for _, k := range keys {
		if k["name"] != name {
			rest = append(rest, k)
		}
	}
	if len(rest) == 0 {
		delete(ed.want, "keys")
	} else {
		ed.want["keys"] = rest
	}
	return ed.write(out, fmt.Sprintf("remove key %q from %s", name, path))
}
