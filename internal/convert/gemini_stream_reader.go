package convert

import (
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file turns an upstream Gemini SSE stream (streamGenerateContent
// ?alt=sse: every data line one GenerateContentResponse, no event names, no
// end marker; Code Assist's {"response": ...} envelope unwrapped) into
// Events, and ParseGemini reads a whole answer through the same rules, so
// a stream and a whole answer give the same parts.
//
// Parts of candidates[0] are read in order: consecutive text pieces are one
// text part, consecutive thought pieces one thinking part, a functionCall
// one tool call with its args whole (Gemini never splits one). A
// thoughtSignature on a part other than a thought ends the thinking part
// open before it with that signature (EventSignature), or, with none open,
// is a thinking part of its own placed before the part (start, signature,
// stop): EncodeGemini puts it back on the part after the thinking. A
// signature on a thought piece is that thinking part's, marked
// geminiSigOnThought. Calls without id get geminiCallID(name, the response
// id, n). finishReason ends the stream (EventFinish; a call in the answer
// makes it StopTool); a prompt blocked before any candidate
// (promptFeedback.blockReason) is StopRefusal; an {"error": ...} chunk is
// EventError. Output media, executableCode and codeExecutionResult are
// dropped.

// geminiStreamReader keeps one upstream stream's state.
type geminiStreamReader struct {
	started, ended bool
	// base is the id stem for calls that come without an id.
	base  string
	next  int
	calls int
	// open is the index of the open text or thinking part, -1 for none.
	open     int
	openKind PartKind
	tool     bool
	usage    provider.Usage
	// reasoning is thoughtsTokenCount (EventFinish's ReasoningTokens).
	reasoning int64
}

// NewGeminiStreamReader returns a reader for one upstream Gemini SSE
// stream.
func NewGeminiStreamReader() StreamReader { return newGeminiReader() }

func newGeminiReader() *geminiStreamReader { return &geminiStreamReader{open: -1} }

// Usage implements UsageKeeper: the last usageMetadata read, thoughts
// counted as output.
func (s *geminiStreamReader) Usage() provider.Usage { return s.usage }

// Read implements StreamReader. A chunk of text (or thought text) parts,
// the bulk of a stream, is read in place by scanChunk; any other goes
// through chunk.
func (s *geminiStreamReader) Read(evs []Event, _, data []byte) []Event {
	if s.ended || !gjson.ValidBytes(data) {
		return evs
	}
	if out, ok := s.scanChunk(evs, data); ok {
		return out
	}
	d := gjson.ParseBytes(data)
	if !d.IsObject() {
		return evs
	}
	return s.chunk(evs, d)
}

// chunk reads one GenerateContentResponse.
func (s *geminiStreamReader) chunk(evs []Event, d gjson.Result) []Event {
	if inner := d.Get("response"); inner.IsObject() && !d.Get("candidates").Exists() {
		d = inner // Code Assist envelope
	}
	if e := d.Get("error"); e.IsObject() {
		s.ended = true
		return append(evs, Event{Kind: EventError, ErrType: geminiErrorType(e.Get("status").String(), int(e.Get("code").Int())),
			Delta: e.Get("message").String()})
	}
	if um := d.Get("usageMetadata"); um.IsObject() {
		s.usage, s.reasoning = geminiUsageOf(um)
	}
	evs = s.start(evs, d)
	cand := d.Get("candidates.0")
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		evs = s.part(evs, p)
		return true
	})
	if fr := cand.Get("finishReason").String(); fr != "" {
		return s.finish(evs, geminiStop(fr))
	}
	if !cand.Exists() && d.Get("promptFeedback.blockReason").String() != "" {
		return s.finish(evs, StopRefusal)
	}
	return evs
}

func (s *geminiStreamReader) start(evs []Event, d gjson.Result) []Event {
	if s.started {
		return evs
	}
	return s.startWith(evs, d.Get("responseId").String(), d.Get("modelVersion").String())
}

// startWith emits EventStart with the first chunk's responseId and
// modelVersion.
func (s *geminiStreamReader) startWith(evs []Event, id, model string) []Event {
	s.started = true
	s.base = sanitizeToolID(id)
	if id == "" {
		s.base = randomID("")
	}
	u := provider.Usage{InputTokens: s.usage.InputTokens, CacheReadTokens: s.usage.CacheReadTokens}
	return append(evs, Event{Kind: EventStart, ID: id, Model: model, Usage: u})
}

// part reads one Part of the candidate.
func (s *geminiStreamReader) part(evs []Event, p gjson.Result) []Event {
	sig := geminiField(p, "thoughtSignature", "thought_signature").String()
	text := p.Get("text")
	if p.Get("thought").Bool() && text.Exists() {
		if s.open < 0 || s.openKind != PartThinking {
			evs = s.openPart(evs, Part{Kind: PartThinking})
		}
		if text.Str != "" {
			evs = append(evs, Event{Kind: EventDelta, Index: s.open, Delta: text.Str})
		}
		if sig != "" {
			evs = append(evs, Event{Kind: EventSignature, Index: s.open, Sig: Signature{Origin: OriginGemini, Value: sig, ID: geminiSigOnThought}})
			evs = s.closePart(evs)
		}
		return evs
	}
	if sig != "" {
		evs = s.signature(evs, sig)
	}
	switch {
	case text.Exists():
		if text.Str == "" {
			return evs
		}
		if s.open < 0 || s.openKind != PartText {
			evs = s.openPart(evs, Part{Kind: PartText})
		}
		return append(evs, Event{Kind: EventDelta, Index: s.open, Delta: text.Str})
	case p.Get("functionCall").Exists() || p.Get("function_call").Exists():
		fc := geminiField(p, "functionCall", "function_call")
		name := fc.Get("name").String()
		id := fc.Get("id").String()
		if id == "" {
			id = geminiCallID(name, s.base, s.calls)
		}
		s.calls++
		s.tool = true
		args := "{}"
		if a := fc.Get("args"); a.IsObject() {
			args = a.Raw
		}
		evs = s.openPart(evs, Part{Kind: PartToolCall, CallID: id, Name: name})
		evs = append(evs, Event{Kind: EventDelta, Index: s.open, Delta: args})
		return s.closePart(evs)
	}
	return evs
}

// signature ends the open thinking part with sig, or makes a thinking part
// of its own for it.
func (s *geminiStreamReader) signature(evs []Event, sig string) []Event {
	if s.open < 0 || s.openKind != PartThinking {
		evs = s.openPart(evs, Part{Kind: PartThinking})
	}
	evs = append(evs, Event{Kind: EventSignature, Index: s.open, Sig: Signature{Origin: OriginGemini, Value: sig}})
	return s.closePart(evs)
}

// openPart closes the open part and opens p.
func (s *geminiStreamReader) openPart(evs []Event, p Part) []Event {
	evs = s.closePart(evs)
	s.open, s.openKind = s.next, p.Kind
	s.next++
	return append(evs, Event{Kind: EventPartStart, Index: s.open, Part: p})
}

func (s *geminiStreamReader) closePart(evs []Event) []Event {
	if s.open < 0 {
		return evs
	}
	i := s.open
	s.open = -1
	return append(evs, Event{Kind: EventPartStop, Index: i})
}

func (s *geminiStreamReader) finish(evs []Event, stop StopReason) []Event {
	evs = s.closePart(evs)
	if s.tool {
		stop = StopTool
	}
	s.ended = true
	return append(evs, Event{Kind: EventFinish, Stop: stop, Usage: s.usage, ReasoningTokens: s.reasoning})
}

// geminiUsageOf reads usageMetadata with the relay's semantics:
// promptTokenCount includes the cached tokens, InputTokens does not;
// thoughts are output tokens (and the reasoning count).
func geminiUsageOf(u gjson.Result) (provider.Usage, int64) {
	return geminiUsageCounts(u.Get("promptTokenCount").Int(), u.Get("toolUsePromptTokenCount").Int(), u.Get("cachedContentTokenCount").Int(),
		u.Get("thoughtsTokenCount").Int(), u.Get("candidatesTokenCount").Int())
}

// geminiUsageCounts is geminiUsageOf's arithmetic on the counts read.
func geminiUsageCounts(prompt, toolUse, cached, thoughts, candidates int64) (provider.Usage, int64) {
	prompt += toolUse
	cached = min(max(cached, 0), prompt)
	return provider.Usage{InputTokens: prompt - cached, CacheReadTokens: cached, OutputTokens: candidates + thoughts}, thoughts
}

// geminiStop maps a finishReason onto a stop reason.
func geminiStop(reason string) StopReason {
	switch reason {
	case "MAX_TOKENS":
		return StopMax
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE",
		"IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return StopRefusal
	}
	return StopEnd // STOP, and MALFORMED_FUNCTION_CALL, OTHER... end the turn
}

// geminiErrorType maps a google.rpc status onto the error types the
// writers know (Anthropic's names).
func geminiErrorType(status string, code int) string {
	switch {
	case status == "RESOURCE_EXHAUSTED" || code == 429:
		return "rate_limit_error"
	case status == "UNAVAILABLE" || code == 503:
		return "overloaded_error"
	case status == "INVALID_ARGUMENT" || status == "FAILED_PRECONDITION" || code == 400:
		return "invalid_request_error"
	case status == "PERMISSION_DENIED" || code == 403:
		return "permission_error"
	case status == "UNAUTHENTICATED" || code == 401:
		return "authentication_error"
	case status == "NOT_FOUND" || code == 404:
		return "not_found_error"
	}
	return "api_error"
}
