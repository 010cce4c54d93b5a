package convert

import (
	"crypto/sha256"
	"encoding/hex"
)

// Tool names across APIs (docs/matrix.md, "Tool names"). A client's tool
// names come from its MCP servers and follow its own rules; each upstream
// refuses names outside its own:
//
//	Anthropic   ^[a-zA-Z0-9_-]{1,128}$
//	OpenAI      ^[a-zA-Z0-9_-]{1,64}$ (Responses function tools, Chat functions)
//	Gemini      ^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$
//
// Each encoder sends a name its API refuses as upstreamName makes it: a
// pure function of the name alone, so every turn of a conversation (the
// declarations, tool_choice and the history's calls) maps alike, and the
// answer's calls are mapped back with RestoreToolNames /
// RestoreToolNamesStream, which hold the request's tools. A name that fits
// is sent as it is, with no allocation.

// nameRule is one API's rule for tool names.
type nameRule struct {
	// max is the longest name the API takes, in bytes.
	max int
	// dotColon: '.' and ':' are allowed too (Gemini).
	dotColon bool
	// letterFirst: the name must start with a letter or '_' (Gemini).
	letterFirst bool
}

// The rules of the upstream APIs.
var (
	anthropicNames = nameRule{max: 128}
	openaiNames    = nameRule{max: 64}
	geminiNames    = nameRule{max: 64, dotColon: true, letterFirst: true}
	nameRules      = [...]nameRule{anthropicNames, openaiNames, geminiNames}
)

// nameHashLen is the length of the hash suffix ("_" and 8 hex digits of
// the original name's SHA-256) of a changed name: two different names
// never end up alike (short of a 32-bit collision).
const nameHashLen = 1 + 8

func (r nameRule) allowed(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' ||
		r.dotColon && (c == '.' || c == ':')
}

func (r nameRule) fits(name string) bool {
	if len(name) == 0 || len(name) > r.max {
		return false
	}
	if r.letterFirst {
		if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	for i := 0; i < len(name); i++ {
		if !r.allowed(rune(name[i])) {
			return false
		}
	}
	return true
}

// upstreamName is the name sent to the API for the client's tool name:
// name itself when it fits (and "", which no mapping can make meaningful);
// else name with every refused character as '_', a '_' in front when the
// API wants a letter first, cut so that the hash suffix of the original
// name fits within the limit, and that suffix.
func (r nameRule) upstreamName(name string) string {
	if name == "" || r.fits(name) {
		return name
	}
	b := make([]byte, 0, r.max)
	if r.letterFirst {
		if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
			b = append(b, '_')
		}
	}
	for _, c := range name {
		if len(b) == r.max-nameHashLen {
			break
		}
		if r.allowed(c) {
			b = append(b, byte(c))
		} else {
			b = append(b, '_')
		}
	}
	sum := sha256.Sum256([]byte(name))
	b = append(b, '_')
	b = hex.AppendEncode(b, sum[:(nameHashLen-1)/2])
	return string(b)
}

// fitsEveryAPI: no encoder renames name.
func fitsEveryAPI(name string) bool {
	for _, r := range nameRules {
		if !r.fits(name) {
			return false
		}
	}
	return true
}

// toolNameMap maps every name an encoder may send for a tool of tools back
// to the tool's own name; nil when no encoder renames any of them (the
// common case, which costs one scan of the names). A mapped name that is
// also a tool's own name stays that tool's.
func toolNameMap(tools []Tool) map[string]string {
	var m map[string]string
	for i := range tools {
		name := tools[i].Name
		if name == "" || fitsEveryAPI(name) {
			continue
		}
		for _, r := range nameRules {
			if up := r.upstreamName(name); up != name {
				if m == nil {
					m = make(map[string]string)
				}
				m[up] = name
			}
		}
	}
	for i := range tools {
		delete(m, tools[i].Name)
	}
	return m
}

// RestoreToolNames gives the tool calls of resp (an upstream's answer to a
// request with tools) the names the client's tools have: an encoder sent a
// name its API refuses under another name (upstreamName), which the answer
// calls. The relay, which holds the request, calls it after ParseX, before
// UncustomCalls (which matches the client's names); RestoreToolNamesStream
// does the same for a stream. Calls of names it does not know keep them.
func RestoreToolNames(resp *Response, tools []Tool) {
	m := toolNameMap(tools)
	if m == nil {
		return
	}
	for i := range resp.Parts {
		p := &resp.Parts[i]
		if orig, ok := m[p.Name]; ok && p.Kind == PartToolCall {
			p.Name = orig
		}
	}
}

// RestoreToolNamesStream wraps a reader of an upstream's stream so that
// its tool calls (EventPartStart) carry the names the client's tools have,
// as RestoreToolNames does for a whole answer. It returns r itself when no
// encoder renames any tool of tools.
func RestoreToolNamesStream(r StreamReader, tools []Tool) StreamReader {
	m := toolNameMap(tools)
	if m == nil {
		return r
	}
	return &toolNameReader{inner: r, names: m}
}

type toolNameReader struct {
	inner StreamReader
	names map[string]string
}

// Read implements StreamReader.
func (t *toolNameReader) Read(evs []Event, name, data []byte) []Event {
	n := len(evs)
	evs = t.inner.Read(evs, name, data)
	for i := n; i < len(evs); i++ {
		ev := &evs[i]
		if ev.Kind != EventPartStart || ev.Part.Kind != PartToolCall {
			continue
		}
		if orig, ok := t.names[ev.Part.Name]; ok {
			ev.Part.Name = orig
		}
	}
	return evs
}
