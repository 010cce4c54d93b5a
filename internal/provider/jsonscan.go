package provider

import (
	"bytes"
	"encoding/json"
)

// ForEachMember calls fn with the key and the raw value of every member of
// the top-level JSON object in b, in order, until fn returns false. Values
// are skipped without being parsed: strings by jumping from quote to quote
// (bytes.IndexByte), containers by counting brackets outside strings. That
// makes finding "model" or "metadata" in a 100 KB Claude Code body several
// times cheaper than a full parse.
//
// The key is the raw bytes between its quotes (escapes not decoded; callers
// compare it with plain ASCII names, and keyHasEscape tells them when to
// decode). b must be a JSON object; ForEachMember reports false when it
// meets malformed JSON and stops there, and true when it read the object to
// its end. It validates structure only as far as it needs to walk: a body
// it accepts may still be rejected by the upstream.
func ForEachMember(b []byte, fn func(key, value []byte) bool) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := skipString(b, i)
		if end < 0 {
			return false
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return false
		}
		if !fn(key, b[i:vend]) {
			return true
		}
		i = skipWS(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
}

// KeyHasEscape reports whether a raw key from ForEachMember holds a JSON
// escape (and so must be decoded before it is compared).
func KeyHasEscape(key []byte) bool { return bytes.IndexByte(key, '\\') >= 0 }

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i]
// (a '"'), or -1.
func skipString(b []byte, i int) int {
	start := i + 1
	i = start
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; k >= start && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
		i++
	}
}

// skipValue returns the index just past the value that starts at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				j := skipString(b, i)
				if j < 0 {
					return -1
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		// A number, true, false or null: up to the next delimiter.
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				break
			}
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// PickMembers walks the top level of the JSON object b once (ForEachMember)
// and sets vals[i] to the raw value of the member named names[i]; vals must
// be as long as names and start nil. A key written with escapes is decoded
// before it is compared, so "mod\u0065l" is model.
//
// It returns the first name met a second time ("" when none). Parsers
// disagree on which copy of a repeated key counts (gjson reads the first,
// Go's encoding/json and Python's json the last), so a relay that checked
// one copy while the upstream obeyed the other would admit one model and
// send another: every route refuses such a body. With names nil every key
// is compared, for routes that read every member (their converters).
//
// ok is ForEachMember's: false when b is malformed as far as the walk went.
func PickMembers(b []byte, names []string, vals [][]byte) (repeated string, ok bool) {
	if names == nil {
		return firstRepeated(b)
	}
	ok = ForEachMember(b, func(k, v []byte) bool {
		if KeyHasEscape(k) {
			k = decodeKey(k)
		}
		for i, n := range names {
			if string(k) != n {
				continue
			}
			if vals[i] != nil {
				repeated = n
				return false
			}
			vals[i] = v
			break
		}
		return true
	})
	return repeated, ok
}

// firstRepeated is PickMembers for every key. It is apart so that the
// named walk, on the hot path, keeps its state on the stack.
func firstRepeated(b []byte) (repeated string, ok bool) {
	var seenBuf [16][]byte
	seen := seenBuf[:0]
	var many map[string]struct{}
	ok = ForEachMember(b, func(k, _ []byte) bool {
		if KeyHasEscape(k) {
			k = decodeKey(k)
		}
		if isRepeated(k, &seen, &many) {
			repeated = string(k)
			return false
		}
		return true
	})
	return repeated, ok
}

// isRepeated reports whether k is among the keys seen so far and adds it:
// a linear scan while there are few (bodies have a dozen keys), a map
// beyond, so a body of many keys costs no more than a map per key.
func isRepeated(k []byte, seen *[][]byte, many *map[string]struct{}) bool {
	if *many == nil {
		for _, s := range *seen {
			if bytes.Equal(s, k) {
				return true
			}
		}
		if len(*seen) < 64 {
			*seen = append(*seen, k)
			return false
		}
		*many = make(map[string]struct{}, 2*len(*seen))
		for _, s := range *seen {
			(*many)[string(s)] = struct{}{}
		}
	}
	if _, dup := (*many)[string(k)]; dup {
		return true
	}
	(*many)[string(k)] = struct{}{}
	return false
}

// decodeKey decodes a raw key that holds escapes; a key that does not
// decode (a bad escape) is compared as written.
func decodeKey(k []byte) []byte {
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &s); err != nil {
		return k
	}
	return []byte(s)
}
