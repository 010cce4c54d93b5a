package convert

import (
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// The Gemini reader's fast path: a chunk whose candidate holds only text
// (or thought text) parts, without signatures, the bulk of every stream,
// is read in place: one scan of each object that skips the members it does
// not read (scanMembers), copying only the text kept. It gives exactly the
// events chunk gives for the same chunk (TestGeminiScanChunkMatchesChunk,
// FuzzGeminiScanChunk); any chunk it does not read that way (an error, a
// signature, a call, another part, an escaped key, a value of an
// unexpected type, no candidate) goes through chunk, with nothing changed.

// The members the fast path reads: of a chunk, a candidate, its content,
// a part, and usageMetadata.
var (
	geminiChunkMembers   = [...]string{"candidates", "usageMetadata", "responseId", "modelVersion", "error", "response"}
	geminiCandMembers    = [...]string{"content", "finishReason"}
	geminiContentMembers = [...]string{"parts"}
	geminiPartMembers    = [...]string{"text", "thought", "thoughtSignature", "thought_signature", "functionCall", "function_call"}
	geminiUsageMembers   = [...]string{"promptTokenCount", "toolUsePromptTokenCount", "cachedContentTokenCount", "thoughtsTokenCount", "candidatesTokenCount"}
)

// scannedText is one text part the fast path read: its raw JSON string.
type scannedText struct {
	raw     []byte
	thought bool
}

// scanChunk reads data (a valid JSON chunk) on the fast path; ok is false,
// and nothing changed, when the chunk is not one it reads.
func (s *geminiStreamReader) scanChunk(evs []Event, data []byte) ([]Event, bool) {
	var m [len(geminiChunkMembers)][]byte
	if !scanMembers(data, geminiChunkMembers[:], m[:]) || m[4] != nil || m[5] != nil || !isJSON(m[0], '[') {
		return evs, false // an error, a Code Assist envelope, no candidates
	}
	// The first candidate: the object after '[' (scanObject stops at its end).
	var c [len(geminiCandMembers)][]byte
	if _, ok := scanObject(m[0][skipSpace(m[0], 1):], geminiCandMembers[:], c[:]); !ok || c[1] != nil && !isJSON(c[1], '"') {
		return evs, false
	}
	var buf [4]scannedText
	texts, ok := scanGeminiParts(buf[:0], c[0])
	if !ok {
		return evs, false
	}
	var u [len(geminiUsageMembers)][]byte
	if m[1] != nil && isJSON(m[1], '{') && !scanMembers(m[1], geminiUsageMembers[:], u[:]) {
		return evs, false
	}
	// Read as chunk reads it, from here on.
	if isJSON(m[1], '{') {
		n := func(raw []byte) int64 { return gjson.Parse(view(raw)).Int() }
		s.usage, s.reasoning = geminiUsageCounts(n(u[0]), n(u[1]), n(u[2]), n(u[3]), n(u[4]))
	}
	if !s.started {
		evs = s.startWith(evs, rawString(m[2]), rawString(m[3]))
	}
	for _, t := range texts {
		kind := PartText
		if t.thought {
			kind = PartThinking
		}
		if len(t.raw) == 2 && !t.thought {
			continue // an empty text opens nothing; an empty thought does
		}
		if s.open < 0 || s.openKind != kind {
			evs = s.openPart(evs, Part{Kind: kind})
		}
		if text := rawString(t.raw); text != "" {
			evs = append(evs, Event{Kind: EventDelta, Index: s.open, Delta: text})
		}
	}
	if fr := rawString(c[1]); fr != "" {
		evs = s.finish(evs, geminiStop(fr))
	}
	return evs, true
}

// scanGeminiParts appends the text parts of the candidate's content to
// texts; ok is false when content holds anything else.
func scanGeminiParts(texts []scannedText, content []byte) ([]scannedText, bool) {
	if content == nil {
		return texts, true
	}
	var ct [len(geminiContentMembers)][]byte
	if !isJSON(content, '{') || !scanMembers(content, geminiContentMembers[:], ct[:]) {
		return texts, false
	}
	if ct[0] == nil {
		return texts, true
	}
	if !isJSON(ct[0], '[') {
		return texts, false
	}
	// The array's elements, each an object read by scanObject, which says
	// where it ends (the chunk passed gjson.ValidBytes).
	arr := ct[0]
	i := skipSpace(arr, 1)
	if i < len(arr) && arr[i] == ']' {
		return texts, true
	}
	for i < len(arr) {
		var p [len(geminiPartMembers)][]byte
		n, ok := scanObject(arr[i:], geminiPartMembers[:], p[:])
		if !ok || !isJSON(p[0], '"') || p[2] != nil || p[3] != nil || p[4] != nil || p[5] != nil {
			return texts, false
		}
		switch string(p[1]) {
		case "", "false":
			texts = append(texts, scannedText{raw: p[0]})
		case "true":
			texts = append(texts, scannedText{raw: p[0], thought: true})
		default:
			return texts, false
		}
		if i = skipSpace(arr, i+n); i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
			continue
		}
		return texts, i < len(arr) && arr[i] == ']'
	}
	return texts, false
}

// scanObject is scanMembers on the object that opens b (after no space),
// which may go on past it; n is the length of the object.
func scanObject(b []byte, names []string, vals [][]byte) (n int, ok bool) {
	if !isJSON(b, '{') {
		return 0, false
	}
	end := 1 // just past the last value read, or the '{'
	escaped := false
	walked := provider.ForEachMember(b, func(k, v []byte) bool {
		if provider.KeyHasEscape(k) {
			escaped = true
			return false
		}
		for i, name := range names {
			if string(k) == name {
				if vals[i] == nil {
					vals[i] = v
				}
				break
			}
		}
		end = cap(b) - cap(v) + len(v) // v is b[i:end]
		return true
	})
	if end = skipSpace(b, end); !walked || escaped || end >= len(b) || b[end] != '}' {
		return 0, false
	}
	return end + 1, true
}

// skipSpace returns the index of the first byte of b from i on that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// isJSON reports whether the raw value raw opens with c ('{', '[', '"').
func isJSON(raw []byte, c byte) bool { return len(raw) > 0 && raw[0] == c }
