package convert

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

const hexDigits = "0123456789abcdef"

// appendString appends s to dst as a JSON string literal. Unlike
// encoding/json it leaves <, > and & alone (the output is an API body, not
// HTML); invalid UTF-8 becomes U+FFFD so the result is always valid JSON.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers
		// that eval lines; escaping them costs nothing.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// marshal encodes v without HTML escaping and without the trailing newline
// json.Encoder adds.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// randomID returns prefix followed by 24 random alphanumeric characters, for
// the rare upstream answer that carries no id of its own.
func randomID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	out := make([]byte, 0, len(prefix)+len(b))
	out = append(out, prefix...)
	for _, c := range b {
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}

// maxTokenLimit bounds client-supplied token counts so arithmetic on them
// (adding a thinking budget) cannot overflow.
const maxTokenLimit = math.MaxInt32

// positiveInt accepts an integral JSON number in [1, maxTokenLimit].
func positiveInt(v gjson.Result) (int64, bool) {
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) || v.Num < 1 || v.Num > maxTokenLimit {
		return 0, false
	}
	return int64(v.Num), true
}

// isEmptyObject reports whether v is the JSON object {}.
func isEmptyObject(v gjson.Result) bool {
	if !v.IsObject() {
		return false
	}
	empty := true
	v.ForEach(func(_, _ gjson.Result) bool {
		empty = false
		return false
	})
	return empty
}

// parseDataURL splits "data:<mt>[;param]*[;base64],<data>"; u starts with
// "data:" (any case).
func parseDataURL(u string) (mediaType, data string, isBase64 bool) {
	rest := u[len("data:"):]
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", false
	}
	params := strings.Split(meta, ";")
	for _, p := range params[1:] {
		if strings.EqualFold(strings.TrimSpace(p), "base64") {
			isBase64 = true
		}
	}
	return strings.ToLower(strings.TrimSpace(params[0])), data, isBase64
}

// hasPrefixFold is strings.HasPrefix, ASCII case-insensitively.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// appendInt appends a decimal integer.
func appendInt(dst []byte, n int64) []byte {
	return strconv.AppendInt(dst, n, 10)
}

// pickMembers reads, in one pass over the object v, the first member named
// names[i] into out[i] (what v.Get(names[i]) would find, for a plain name);
// a name v lacks leaves its Result zero.
func pickMembers(v gjson.Result, names []string, out []gjson.Result) {
	forEachMember(v, func(k string, val gjson.Result) bool {
		for i, n := range names {
			if k == n {
				if !out[i].Exists() {
					out[i] = val
				}
				break
			}
		}
		return true
	})
}

// view is data as a string, without a copy, for gjson to read an event in
// place. What is read from it must go through own before it outlives data.
func view(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(data), len(data))
}

// own returns s, copied when it points into data (a substring of view(data));
// a string gjson unescaped is already a copy of its own.
func own(s string, data []byte) string {
	if len(s) == 0 || len(data) == 0 {
		return s
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if p >= b && p < b+uintptr(len(data)) {
		return strings.Clone(s)
	}
	return s
}

// scanMembers stores in vals[i] the raw value of the first member of the
// JSON object data named names[i], skipping the other values without
// parsing them (provider.ForEachMember). It reports false, and callers read
// data with gjson instead, for a key with an escape in it or data that is
// not an object.
func scanMembers(data []byte, names []string, vals [][]byte) bool {
	plain := true
	ok := provider.ForEachMember(data, func(k, v []byte) bool {
		if provider.KeyHasEscape(k) {
			plain = false
			return false
		}
		for i, n := range names {
			if string(k) == n {
				if vals[i] == nil {
					vals[i] = v
				}
				break
			}
		}
		return true
	})
	return ok && plain
}

// rawString is what gjson's String gives for the raw JSON value raw, as a
// string of its own (not pointing into raw).
func rawString(raw []byte) string {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	return own(gjson.Parse(view(raw)).String(), raw)
}

// forEachMember is gjson's ForEach over the members of the object obj (of a
// body that passed gjson.ValidBytes), with the key decoded, but it skips
// each value with provider.ForEachMember (strings by IndexByte) instead of
// gjson's byte-by-byte squash, and parses a value only as far as Parse
// does: for the bulk of a request (messages, tools) that is its bounds.
func forEachMember(obj gjson.Result, fn func(key string, v gjson.Result) bool) {
	raw := obj.Raw
	if len(raw) == 0 {
		return
	}
	base := uintptr(unsafe.Pointer(unsafe.StringData(raw)))
	offset := func(b []byte) int { return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - base) }
	// ForEachMember only reads: raw's bytes are never written.
	provider.ForEachMember(unsafe.Slice(unsafe.StringData(raw), len(raw)), func(k, v []byte) bool {
		ko := offset(k)
		key := raw[ko : ko+len(k)]
		if provider.KeyHasEscape(k) {
			key = gjson.Parse(raw[ko-1 : ko+len(k)+1]).Str // with its quotes
		}
		vo := offset(v)
		return fn(key, gjson.Parse(raw[vo:vo+len(v)]))
	})
}
