package gemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// ParseUsage reads usageMetadata from a Gemini response or one SSE event
// payload, wrapped in a Code Assist envelope or not. A leading "data:" is
// tolerated, and a JSON array (a streamGenerateContent answer without
// alt=sse) is read element by element, keeping the largest counters.
//
// Mapping: InputTokens = promptTokenCount - cachedContentTokenCount +
// toolUsePromptTokenCount; CacheReadTokens = cachedContentTokenCount;
// OutputTokens = candidatesTokenCount + thoughtsTokenCount. Gemini's
// promptTokenCount includes the cached tokens, so they are subtracted to
// avoid counting them twice. ok is false when no usageMetadata object is
// present.
func ParseUsage(body []byte) (provider.Usage, bool) {
	b := bytes.TrimSpace(body)
	if rest, ok := bytes.CutPrefix(b, []byte("data:")); ok {
		b = bytes.TrimSpace(rest)
	}
	s := view(b)
	if len(s) > 0 && s[0] == '[' {
		var u provider.Usage
		found := false
		gjson.Parse(s).ForEach(func(_, v gjson.Result) bool {
			if eu, ok := usageOf(v); ok {
				u.Merge(eu)
				found = true
			}
			return true
		})
		return u, found
	}
	if u, ok, read := usageScan(b, false); read {
		return u, ok
	}
	return usageOf(gjson.Parse(s))
}

// usageScan is usageOf for the object b read with provider.ForEachMember,
// once for the response and once for usageMetadata: the other members
// (candidates, the bulk of a stream chunk) are skipped without being
// parsed. inner: b is the Code Assist envelope's response, whose own
// response member is not read. read is false, for usageOf to read b, when
// a key has an escape or the walk fails.
func usageScan(b []byte, inner bool) (u provider.Usage, ok, read bool) {
	var um, resp []byte
	escaped := false
	if !provider.ForEachMember(b, func(k, v []byte) bool {
		if provider.KeyHasEscape(k) {
			escaped = true
			return false
		}
		switch string(k) {
		case "usageMetadata":
			if um == nil {
				um = v
			}
		case "response":
			if resp == nil {
				resp = v
			}
		}
		return true
	}) || escaped {
		return provider.Usage{}, false, false
	}
	switch {
	case len(um) > 0 && um[0] == '{':
		return countsOf(um)
	case !inner && len(resp) > 0 && resp[0] == '{':
		return usageScan(resp, true)
	}
	return provider.Usage{}, false, true
}

// countsOf reads a usageMetadata object as usageOf does: each counter
// named, the last copy of a name counting.
func countsOf(um []byte) (u provider.Usage, ok, read bool) {
	var prompt, candidates, cached, thoughts, toolUse int64
	escaped := false
	if !provider.ForEachMember(um, func(k, v []byte) bool {
		if provider.KeyHasEscape(k) {
			escaped = true
			return false
		}
		switch string(k) {
		case "promptTokenCount":
			prompt = intOf(v)
		case "candidatesTokenCount":
			candidates = intOf(v)
		case "cachedContentTokenCount":
			cached = intOf(v)
		case "thoughtsTokenCount":
			thoughts = intOf(v)
		case "toolUsePromptTokenCount":
			toolUse = intOf(v)
		}
		return true
	}) || escaped {
		return provider.Usage{}, false, false
	}
	return provider.Usage{
		InputTokens:     max(prompt-cached, 0) + max(toolUse, 0),
		OutputTokens:    max(candidates, 0) + max(thoughts, 0),
		CacheReadTokens: max(cached, 0),
	}, true, true
}

// intOf is gjson's Int of the raw JSON value v: a plain integer of up to
// 18 digits is read here, anything else by gjson.
func intOf(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return gjson.Parse(view(v)).Int()
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return gjson.Parse(view(v)).Int()
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// usageOf reads usageMetadata or response.usageMetadata from one response.
func usageOf(v gjson.Result) (provider.Usage, bool) {
	if !v.IsObject() {
		return provider.Usage{}, false
	}
	um := v.Get("usageMetadata")
	if !um.IsObject() {
		um = v.Get("response.usageMetadata")
		if !um.IsObject() {
			return provider.Usage{}, false
		}
	}
	var prompt, candidates, cached, thoughts, toolUse int64
	um.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "promptTokenCount":
			prompt = v.Int()
		case "candidatesTokenCount":
			candidates = v.Int()
		case "cachedContentTokenCount":
			cached = v.Int()
		case "thoughtsTokenCount":
			thoughts = v.Int()
		case "toolUsePromptTokenCount":
			toolUse = v.Int()
		}
		return true
	})
	u := provider.Usage{
		InputTokens:     max(prompt-cached, 0) + max(toolUse, 0),
		OutputTokens:    max(candidates, 0) + max(thoughts, 0),
		CacheReadTokens: max(cached, 0),
	}
	return u, true
}

// maxSessionIDLen bounds a client-chosen session_id used verbatim as a key;
// longer ones are hashed so a hostile client cannot grow the sticky table's
// keys without bound.
const maxSessionIDLen = 128

// SessionKey returns a stable sticky-session key for a generateContent body
// (public or Code Assist shaped), or "" when none can be derived. In order of
// preference:
//
//   - request.session_id, then session_id (Gemini CLI sends one per session),
//     verbatim when at most 128 bytes, else hashed;
//   - hex(sha256(text of the first content))[:32];
//   - hex(sha256(systemInstruction text))[:32].
//
// Text parts are hashed in order, separated by a NUL byte. Both the
// camelCase and snake_case spellings of systemInstruction are read.
func SessionKey(body []byte) string {
	s := view(body)
	root := gjson.Parse(s)
	if req := root.Get("request"); req.IsObject() {
		if id := req.Get("session_id"); id.Type == gjson.String && id.Str != "" {
			return sessionID(id.Str)
		}
		if id := root.Get("session_id"); id.Type == gjson.String && id.Str != "" {
			return sessionID(id.Str)
		}
		root = req
	} else if id := root.Get("session_id"); id.Type == gjson.String && id.Str != "" {
		return sessionID(id.Str)
	}
	// The first turn identifies a conversation; the system instruction alone
	// does not (Gemini CLI sends nearly the same one in every session, which
	// would pin all of its traffic to one account).
	if k := hashText(root.Get("contents.0")); k != "" {
		return k
	}
	si := root.Get("systemInstruction")
	if !si.Exists() {
		si = root.Get("system_instruction")
	}
	return hashText(si)
}

// sessionID copies id out of the viewed body, hashing it when it is long.
func sessionID(id string) string {
	if len(id) > maxSessionIDLen {
		sum := sha256.Sum256([]byte(id))
		return hex.EncodeToString(sum[:16])
	}
	return strings.Clone(id)
}

// hashText hashes the text of a Content ({"parts":[{"text":...}]}) or of a
// bare string, returning 32 hex characters, or "" when there is no text.
func hashText(c gjson.Result) string {
	h := sha256.New()
	n := 0
	write := func(t string) {
		if t == "" {
			return
		}
		if n > 0 {
			h.Write(bytesView("\x00"))
		}
		h.Write(bytesView(t))
		n++
	}
	switch {
	case c.Type == gjson.String:
		write(c.Str)
	case c.IsObject():
		c.Get("parts").ForEach(func(_, p gjson.Result) bool {
			if t := p.Get("text"); t.Type == gjson.String {
				write(t.Str)
			}
			return true
		})
	}
	if n == 0 {
		return ""
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
