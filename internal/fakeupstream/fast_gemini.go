package fakeupstream

import (
	"net/http"
	"strconv"
	"strings"
)

// Fast's Gemini mode: the public Gemini API's generateContent and
// streamGenerateContent?alt=sse (POST /v1beta/models/{model}:method, the
// key in x-goog-api-key or ?key=), what a relay's gemini-api account calls.
// As in Google's streams, every SSE event is a data line holding one whole
// GenerateContentResponse, with no event name and no end marker: each text
// delta is a chunk of one text part with the running usageMetadata (the
// prompt's counts), and the last chunk has an empty text part, finishReason
// STOP and the whole usage (GeminiPromptTokens and the rest). Like the other
// modes' events, each chunk's JSON opens with the send stamp (StampKey),
// and with TextSteer the text of each delta carries it too.

// geminiDefaultEvents is the length of a Gemini stream nothing steers
// (Fast streams Gemini whenever the method is streamGenerateContent).
const geminiDefaultEvents = 10

// geminiResponseID is the responseId of every Gemini answer of Fast.
const geminiResponseID = "benchFastGemini0000000001"

// geminiMethod is the method a Gemini API path names (the part after the
// last colon of /{version}/models/{model}:{method}), "" for any other path.
func geminiMethod(path string) string {
	i := strings.LastIndexByte(path, ':')
	if i < 0 || !strings.Contains(path[:i], "/models/") {
		return ""
	}
	switch m := path[i+1:]; m {
	case "generateContent", "streamGenerateContent":
		return m
	}
	return ""
}

// geminiRefusal is the answer the public Gemini API gives a call Fast's
// Gemini mode cannot serve as asked: no API key, or a stream without
// alt=sse (which Google answers as one JSON array; a relay asks for SSE).
// ok is false when the call is served.
func geminiRefusal(r *http.Request, method string) (status int, body string, ok bool) {
	q := r.URL.Query()
	if r.Header.Get("X-Goog-Api-Key") == "" && q.Get("key") == "" {
		return http.StatusForbidden, GoogleError(403, "PERMISSION_DENIED", "", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", ""), true
	}
	if method == "streamGenerateContent" && q.Get("alt") != "sse" {
		return http.StatusBadRequest, GoogleError(400, "INVALID_ARGUMENT", "", "fakeupstream.Fast streams only with alt=sse", ""), true
	}
	return 0, "", false
}

// writeGeminiRefusal answers a refused Gemini call.
func writeGeminiRefusal(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=UTF-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// geminiChunk is one stream chunk: a candidate whose one part is text,
// with finish (`,"finishReason":"STOP"` or "") after its content, and usage.
func geminiChunk(model, text, finish, usage string) Event {
	return Event{Data: `{"candidates":[{"content":{"parts":[{"text":"` + text + `"}],"role":"model"}` + finish +
		`,"index":0}],"usageMetadata":` + usage + `,"modelVersion":"` + model + `","responseId":"` + geminiResponseID + `"}`}
}

// geminiPromptUsage is the usageMetadata of a chunk before the last: the
// prompt's counts only, as Google's streams send them.
var geminiPromptUsage = `{"promptTokenCount":` + strconv.Itoa(GeminiPromptTokens) + `,"totalTokenCount":` + strconv.Itoa(GeminiPromptTokens) +
	`,"cachedContentTokenCount":` + strconv.Itoa(GeminiCachedTokens) + `,"promptTokensDetails":[{"modality":"TEXT","tokenCount":` + strconv.Itoa(GeminiPromptTokens) + `}]}`

// newFastGemini precomputes Fast's Gemini answers.
func newFastGemini(model string) fastAPI {
	api := fastAPI{
		json: []byte(GeminiResponseJSON(model, fastAnswer)),
		// A few of the headers Google sends.
		header: [][2]string{
			{"Vary", "Origin, X-Origin, Referer"},
			{"Server", "scaffolding on HTTPServer2"},
			{"X-Xss-Protection", "0"},
			{"X-Frame-Options", "SAMEORIGIN"},
			{"X-Content-Type-Options", "nosniff"},
			{"Server-Timing", "gfet4t7; dur=412"},
			{"Alt-Svc", `h3=":443"; ma=2592000,h3-29=":443"; ma=2592000`},
		},
	}
	api.delta = newTmpl(geminiChunk(model, deltaText, "", geminiPromptUsage))
	api.textDelta = newTmpl(geminiChunk(model, TextStampKey+zeroStamp, "", geminiPromptUsage))
	tail := []tmpl{newTmpl(geminiLastChunk(model))}
	api.tail = func(int, bool) []tmpl { return tail }
	return api
}

// geminiLastChunk ends a stream: an empty text part, finishReason STOP and
// the whole usage.
func geminiLastChunk(model string) Event {
	return geminiChunk(model, "", `,"finishReason":"STOP"`, geminiUsage(GeminiCandidatesTokens, GeminiThoughtsTokens))
}

// FastGeminiStream is the shape of Fast's Gemini stream without its stamps,
// for in-process benchmarks: deltas chunks whose text is text (which must
// need no JSON escaping), then the last chunk.
func FastGeminiStream(model, text string, deltas int) []Event {
	evs := make([]Event, 0, deltas+1)
	for range deltas {
		evs = append(evs, geminiChunk(model, text, "", geminiPromptUsage))
	}
	return append(evs, geminiLastChunk(model))
}
