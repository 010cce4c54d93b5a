package env

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"github.com/ccrelay/ccrelay/internal/fsutil"
)

// geminiAuthType is the Gemini CLI auth method that sends GEMINI_API_KEY to
// GOOGLE_GEMINI_BASE_URL. Set in the environment alone, GOOGLE_GEMINI_BASE_URL
// makes the CLI pick its "gateway" method, which its non-interactive start
// rejects with "Invalid auth method selected."; only
// security.auth.selectedType in the settings file avoids that.
const geminiAuthType = "gemini-api-key"

// geminiSettingsKey is the path of the setting in settings.json.
var geminiSettingsKey = []string{"security", "auth", "selectedType"}

// geminiSettingsPath is where Gemini CLI reads its user settings:
// $GEMINI_CLI_HOME/.gemini/settings.json, else ~/.gemini/settings.json (its
// Storage.getGlobalSettingsPath: GEMINI_CLI_HOME replaces the home
// directory, and .gemini is still appended).
func geminiSettingsPath(getenv func(string) string, home func() (string, error)) (string, error) {
	if dir := getenv("GEMINI_CLI_HOME"); dir != "" {
		return filepath.Join(dir, ".gemini", "settings.json"), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("find the home directory for ~/.gemini/settings.json (set GEMINI_CLI_HOME): %w", err)
	}
	return filepath.Join(h, ".gemini", "settings.json"), nil
}

// writeGeminiSettings sets security.auth.selectedType = "gemini-api-key" in
// the Gemini CLI settings file at path, keeping every other setting (in
// their order) and the file's mode, and writes it atomically. A file that
// is not a JSON object (Gemini CLI also accepts comments; ccrelay does not
// edit such a file) is reported and left untouched. It returns what it did,
// for the user.
func writeGeminiSettings(path string) (string, error) {
	data, perm, err := readClientFile(path, "Gemini CLI settings")
	if err != nil {
		return "", err
	}
	out, prev, changed, err := mergeGeminiSettings(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return fmt.Sprintf("%s already selects %q; left unchanged", path, geminiAuthType), nil
	}
	if err := fsutil.WriteFileAtomic(path, out, perm); err != nil {
		return "", fmt.Errorf("write Gemini CLI settings: %w", err)
	}
	msg := fmt.Sprintf("set security.auth.selectedType = %q in %s", geminiAuthType, path)
	if prev != "" {
		msg += fmt.Sprintf("; it was %q (set it back to use that login again)", prev)
	}
	return msg, nil
}

// geminiSettingsHint returns a one-line hint when the settings file at path
// does not select API-key auth, or "" when it does.
func geminiSettingsHint(path string) string {
	const fix = "run 'ccrelay env gemini --write-gemini-settings' to set it"
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("hint: Gemini CLI needs security.auth.selectedType = %q in %s (missing) or it exits with \"Invalid auth method selected\"; %s", geminiAuthType, path, fix)
	case err != nil:
		return fmt.Sprintf("hint: cannot read %s (%v): Gemini CLI needs security.auth.selectedType = %q there", path, err, geminiAuthType)
	}
	doc, err := decodeSettings(data)
	if err != nil {
		return fmt.Sprintf("hint: %s: %v; Gemini CLI needs security.auth.selectedType = %q there", path, err, geminiAuthType)
	}
	cur, _ := lookupSetting(doc, geminiSettingsKey).(string)
	if cur == geminiAuthType {
		return ""
	}
	was := "not set"
	if cur != "" {
		was = fmt.Sprintf("%q", cur)
	}
	return fmt.Sprintf("hint: Gemini CLI needs security.auth.selectedType = %q in %s (now %s) or it exits with \"Invalid auth method selected\"; %s", geminiAuthType, path, was, fix)
}

// mergeGeminiSettings sets security.auth.selectedType in the settings JSON
// src (nil or blank: no settings yet). Objects keep their members in order;
// the values ccrelay does not touch keep their text (re-indented). The
// result is decoded and compared with the input so that nothing else can
// have changed. prev is the former selectedType ("" when unset).
func mergeGeminiSettings(src []byte) (out []byte, prev string, changed bool, err error) {
	if len(bytes.TrimSpace(src)) == 0 {
		src = []byte("{}")
	}
	before, err := decodeSettings(src)
	if err != nil {
		return nil, "", false, err
	}
	prev, _ = lookupSetting(before, geminiSettingsKey).(string)
	if prev == geminiAuthType {
		return src, prev, false, nil
	}
	value, _ := json.Marshal(geminiAuthType)
	top, err := setMember(src, geminiSettingsKey, value)
	if err != nil {
		return nil, "", false, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, top, "", "  "); err != nil {
		return nil, "", false, fmt.Errorf("encode settings: %w", err)
	}
	b.WriteByte('\n')

	after, err := decodeSettings(b.Bytes())
	if err != nil {
		return nil, "", false, fmt.Errorf("the edited settings would not be valid JSON (%v); set %s by hand", err, "security.auth.selectedType")
	}
	want := before
	setDecoded(want, geminiSettingsKey, geminiAuthType)
	if !reflect.DeepEqual(want, after) {
		return nil, "", false, errors.New("editing would change other settings; set security.auth.selectedType by hand")
	}
	return b.Bytes(), prev, true, nil
}

// decodeSettings decodes a settings file that must be one JSON object.
func decodeSettings(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid JSON, so ccrelay will not edit it (%v); fix it (comments are not supported), or set security.auth.selectedType by hand", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON, so ccrelay will not edit it (data after the settings object)")
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object, so ccrelay will not edit it")
	}
	return m, nil
}

func lookupSetting(doc map[string]any, path []string) any {
	var v any = doc
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// setDecoded sets path in a decoded document, creating objects on the way.
func setDecoded(doc map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := doc[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			doc[k] = next
		}
		doc = next
	}
	doc[path[len(path)-1]] = v
}

// jsonMember is one member of a JSON object, its value kept as text.
type jsonMember struct {
	key   string
	value json.RawMessage
}

// setMember returns the JSON object obj with path set to value: members on
// the way are edited in place, missing ones appended. A member on the path
// that is not an object (or null) is an error rather than overwritten; a key
// given twice on the path is refused as ambiguous.
func setMember(obj json.RawMessage, path []string, value json.RawMessage) (json.RawMessage, error) {
	members, err := objectMembers(obj)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, m := range members {
		if m.key == path[0] {
			if idx >= 0 {
				return nil, fmt.Errorf("%q appears twice in one object; set security.auth.selectedType by hand", path[0])
			}
			idx = i
		}
	}
	v := value
	if len(path) > 1 {
		inner := json.RawMessage("{}")
		if idx >= 0 && string(bytes.TrimSpace(members[idx].value)) != "null" {
			inner = members[idx].value
		}
		if v, err = setMember(inner, path[1:], value); err != nil {
			return nil, err
		}
	}
	if idx >= 0 {
		members[idx].value = v
	} else {
		members = append(members, jsonMember{key: path[0], value: v})
	}
	return encodeMembers(members), nil
}

// objectMembers splits a JSON object into its members, in order.
func objectMembers(obj json.RawMessage) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("a setting on the way to security.auth.selectedType is not an object; set it by hand")
	}
	var out []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{key: key, value: raw})
	}
	return out, nil
}

func encodeMembers(members []jsonMember) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		_ = enc.Encode(m.key) // a string always encodes; Encode adds a newline, which Indent drops
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}
