package fakeupstream

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// Token counts in every default Gemini answer: prompt 17 of which 5 cached,
// 7 candidate and 3 thought tokens. ccrelay records them as 12 input,
// 10 output and 5 cache-read tokens.
const (
	GeminiPromptTokens     = 17
	GeminiCachedTokens     = 5
	GeminiCandidatesTokens = 7
	GeminiThoughtsTokens   = 3
	// GeminiCountTokens is the default countTokens answer.
	GeminiCountTokens = 31
	// DefaultCodeAssistProject is the project the fake Code Assist assigns.
	DefaultCodeAssistProject = "fake-project-123"
)

// requestLog records the requests a fake received.
type requestLog struct {
	mu       sync.Mutex
	requests []*Recorded
	n        int
	// CountOnly counts requests without keeping them: a long soak run
	// would otherwise hold every request it sent in the fake.
	CountOnly bool
}

func (l *requestLog) add(r *Recorded) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if !l.CountOnly {
		l.requests = append(l.requests, r)
	}
	return l.n - 1
}

// Requests returns what the fake received so far.
func (l *requestLog) Requests() []*Recorded {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Recorded(nil), l.requests...)
}

// Count is the number of requests received.
func (l *requestLog) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// GeminiAPI is a fake public Gemini API (generativelanguage.googleapis.com):
// /{v1|v1beta}/models, /models/{model}, and models/{model}:generateContent,
// :streamGenerateContent (SSE with alt=sse, else one JSON array) and
// :countTokens, authenticated by x-goog-api-key or ?key=.
type GeminiAPI struct {
	// Keys are the accepted API keys; empty accepts any non-empty key.
	Keys []string
	// Script, when set, answers each model call (n counts all requests); a
	// nil result means the default answer.
	Script func(n int, r *Recorded) *Reply
	// Text is the default answer text.
	Text string
	// StreamEvents is the number of events in a default stream (default 3).
	StreamEvents int
	// EventGap is the pause before each default stream event.
	EventGap time.Duration
	// Strict refuses, before the script runs, a model call the real API
	// would refuse (gemini_strict.go): a 400 INVALID_ARGUMENT.
	Strict bool

	requestLog
}

// ServeHTTP answers one request as the public Gemini API would.
func (g *GeminiAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	n := g.add(rec)
	key := r.Header.Get("X-Goog-Api-Key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if !accepted(g.Keys, key) {
		WriteReply(w, r, &Reply{Status: 400, Body: GoogleError(400, "INVALID_ARGUMENT", "API_KEY_INVALID", "API key not valid. Please pass a valid API key.", "")})
		return
	}
	version, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if version != "v1" && version != "v1beta" {
		WriteReply(w, r, &Reply{Status: 404, Body: GoogleError(404, "NOT_FOUND", "", "unknown path", "")})
		return
	}
	if r.Method == http.MethodGet {
		switch {
		case rest == "models":
			WriteReply(w, r, &Reply{Body: GeminiModelList})
		case strings.HasPrefix(rest, "models/"):
			WriteReply(w, r, &Reply{Body: geminiModel(strings.TrimPrefix(rest, "models/"))})
		default:
			WriteReply(w, r, &Reply{Status: 404, Body: GoogleError(404, "NOT_FOUND", "", "unknown path", "")})
		}
		return
	}
	model, method, ok := strings.Cut(strings.TrimPrefix(rest, "models/"), ":")
	if !ok || r.Method != http.MethodPost {
		WriteReply(w, r, &Reply{Status: 404, Body: GoogleError(404, "NOT_FOUND", "", "unknown path", "")})
		return
	}
	// The real API rejects fields it does not know, such as a Code Assist envelope.
	for _, f := range []string{"request", "project", "model"} {
		if method != "countTokens" && gjson.GetBytes(rec.Body, f).Exists() {
			WriteReply(w, r, &Reply{Status: 400, Body: GoogleError(400, "INVALID_ARGUMENT", "", fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", f), "")})
			return
		}
	}
	if g.Strict {
		if rep := geminiStrictReply(rec, model, method); rep != nil {
			WriteReply(w, r, rep)
			return
		}
	}
	if g.Script != nil {
		if rep := g.Script(n, rec); rep != nil {
			WriteReply(w, r, rep)
			return
		}
	}
	text := g.Text
	if text == "" {
		text = "Hello from fake Gemini"
	}
	switch method {
	case "generateContent":
		WriteReply(w, r, &Reply{Body: GeminiResponseJSON(model, text)})
	case "streamGenerateContent":
		events := GeminiStream(model, text, g.StreamEvents, g.EventGap)
		if r.URL.Query().Get("alt") == "sse" {
			WriteReply(w, r, &Reply{Events: events})
			return
		}
		WriteReply(w, r, &Reply{Body: eventsArray(events)})
	case "countTokens":
		WriteReply(w, r, &Reply{Body: fmt.Sprintf(`{"totalTokens":%d,"promptTokensDetails":[{"modality":"TEXT","tokenCount":%d}]}`, GeminiCountTokens, GeminiCountTokens)})
	default:
		WriteReply(w, r, &Reply{Status: 404, Body: GoogleError(404, "NOT_FOUND", "", "unknown method", "")})
	}
}

// CodeAssist is a fake Code Assist API (cloudcode-pa.googleapis.com) at
// /v1internal: loadCodeAssist, onboardUser and operation polling for project
// discovery, and generateContent, streamGenerateContent and countTokens in
// the {model, project, request} / {response, traceId} envelope. It accepts
// Bearer tokens only, and only for its own project.
type CodeAssist struct {
	// Tokens are the accepted access tokens; empty accepts any "ya29." token.
	Tokens []string
	// Project is the project discovery yields (default DefaultCodeAssistProject).
	Project string
	// Onboard makes loadCodeAssist report no current tier, so discovery goes
	// through onboardUser (answered done at once).
	Onboard bool
	// LoadGate, when set, holds every loadCodeAssist answer until it is closed.
	LoadGate chan struct{}
	// Script, when set, answers each model call; nil means the default answer.
	Script func(n int, r *Recorded) *Reply
	// Text is the default answer text.
	Text string
	// StreamEvents is the number of events in a default stream (default 3).
	StreamEvents int
	// EventGap is the pause before each default stream event.
	EventGap time.Duration
	// Strict refuses, before the script runs, a model call whose inner
	// request the public API's strict check refuses (gemini_strict.go:
	// unknown fields, schemas, Gemini 3 thought signatures): Code Assist
	// hands the request to the same model backend.
	Strict bool

	loads, onboards atomic.Int64
	requestLog
}

// LoadCalls is the number of loadCodeAssist calls received.
func (c *CodeAssist) LoadCalls() int { return int(c.loads.Load()) }

// OnboardCalls is the number of onboardUser calls received.
func (c *CodeAssist) OnboardCalls() int { return int(c.onboards.Load()) }

func (c *CodeAssist) project() string {
	if c.Project == "" {
		return DefaultCodeAssistProject
	}
	return c.Project
}

// ServeHTTP answers one request as Code Assist would.
func (c *CodeAssist) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	n := c.add(rec)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || (len(c.Tokens) == 0 && !strings.HasPrefix(tok, "ya29.")) || (len(c.Tokens) > 0 && !accepted(c.Tokens, tok)) {
		WriteReply(w, r, &Reply{Status: 401, Body: GoogleError(401, "UNAUTHENTICATED", "ACCESS_TOKEN_TYPE_UNSUPPORTED", "Request had invalid authentication credentials. Expected OAuth 2 access token.", "")})
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1internal/operations/") {
		WriteReply(w, r, &Reply{Body: c.operation(strings.TrimPrefix(r.URL.Path, "/v1internal/"))})
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/v1internal:")
	if !ok || r.Method != http.MethodPost {
		WriteReply(w, r, &Reply{Status: 404, Body: GoogleError(404, "NOT_FOUND", "", "unknown path", "")})
		return
	}
	switch method {
	case "loadCodeAssist":
		c.loads.Add(1)
		if c.LoadGate != nil {
			select {
			case <-c.LoadGate:
			case <-r.Context().Done():
				return
			}
		}
		body := fmt.Sprintf(`{"currentTier":{"id":"standard-tier","name":"Gemini Code Assist Standard"},"allowedTiers":[{"id":"standard-tier","isDefault":true}],"cloudaicompanionProject":%q}`, c.project())
		if c.Onboard {
			body = `{"allowedTiers":[{"id":"free-tier","name":"Gemini Code Assist for individuals","isDefault":true,"userDefinedCloudaicompanionProject":false}]}`
		}
		WriteReply(w, r, &Reply{Body: body})
		return
	case "onboardUser":
		c.onboards.Add(1)
		WriteReply(w, r, &Reply{Body: c.operation("operations/onboard-1")})
		return
	case "generateContent", "streamGenerateContent":
		req := gjson.GetBytes(rec.Body, "request")
		if !req.IsObject() || gjson.GetBytes(rec.Body, "model").Str == "" {
			WriteReply(w, r, &Reply{Status: 400, Body: GoogleError(400, "INVALID_ARGUMENT", "", "Invalid JSON payload received: want {model, project, request}.", "")})
			return
		}
		if p := gjson.GetBytes(rec.Body, "project").Str; p != c.project() {
			WriteReply(w, r, &Reply{Status: 403, Body: GoogleError(403, "PERMISSION_DENIED", "", fmt.Sprintf("Permission denied on resource project %s.", p), "")})
			return
		}
		if c.Strict {
			if err := CheckStrictGemini([]byte(req.Raw), gjson.GetBytes(rec.Body, "model").Str); err != nil {
				WriteReply(w, r, &Reply{Status: 400, Body: err.(*GeminiStrictError).Body()})
				return
			}
		}
	case "countTokens":
		if !strings.HasPrefix(gjson.GetBytes(rec.Body, "request.model").Str, "models/") {
			WriteReply(w, r, &Reply{Status: 400, Body: GoogleError(400, "INVALID_ARGUMENT", "", "Invalid JSON payload received: want {request: {model: models/...}}.", "")})
			return
		}
	default:
		WriteReply(w, r, &Reply{Status: 404, Body: GoogleError(404, "NOT_FOUND", "", "unknown method", "")})
		return
	}
	if c.Script != nil {
		if rep := c.Script(n, rec); rep != nil {
			WriteReply(w, r, rep)
			return
		}
	}
	model := gjson.GetBytes(rec.Body, "model").Str
	text := c.Text
	if text == "" {
		text = "Hello from fake Code Assist"
	}
	switch method {
	case "generateContent":
		WriteReply(w, r, &Reply{Body: CodeAssistWrap(GeminiResponseJSON(model, text))})
	case "streamGenerateContent":
		events := CodeAssistEvents(GeminiStream(model, text, c.StreamEvents, c.EventGap))
		if r.URL.Query().Get("alt") == "sse" {
			WriteReply(w, r, &Reply{Events: events})
			return
		}
		WriteReply(w, r, &Reply{Body: eventsArray(events)})
	case "countTokens":
		WriteReply(w, r, &Reply{Body: fmt.Sprintf(`{"totalTokens":%d}`, GeminiCountTokens)})
	}
}

func (c *CodeAssist) operation(name string) string {
	return fmt.Sprintf(`{"name":%q,"done":true,"response":{"@type":"type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse","cloudaicompanionProject":{"id":%q,"name":"Fake Project"}}}`, name, c.project())
}

// GoogleToken is a fake Google OAuth token endpoint: a refresh_token grant
// (form encoded, with client_id) answers a fresh "ya29." access token.
type GoogleToken struct {
	// RefreshTokens are the accepted refresh tokens; empty accepts any.
	RefreshTokens []string
	// ExpiresIn is the access token lifetime in seconds (default 3599).
	ExpiresIn int

	issued atomic.Int64
	requestLog
}

// Issued is the number of access tokens handed out.
func (g *GoogleToken) Issued() int { return int(g.issued.Load()) }

// ServeHTTP answers one token request as Google's endpoint would.
func (g *GoogleToken) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	g.add(rec)
	form, err := url.ParseQuery(string(rec.Body))
	if err != nil || r.Method != http.MethodPost || form.Get("grant_type") != "refresh_token" || form.Get("client_id") == "" {
		WriteReply(w, r, &Reply{Status: 400, Body: `{"error":"invalid_request","error_description":"Bad Request"}`})
		return
	}
	if !accepted(g.RefreshTokens, form.Get("refresh_token")) {
		WriteReply(w, r, &Reply{Status: 400, Body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`})
		return
	}
	n := g.issued.Add(1)
	exp := g.ExpiresIn
	if exp == 0 {
		exp = 3599
	}
	WriteReply(w, r, &Reply{Body: fmt.Sprintf(`{"access_token":"ya29.fake-access-%d","expires_in":%d,"scope":"https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email openid","token_type":"Bearer"}`, n, exp)})
}

func accepted(keys []string, key string) bool {
	if key == "" {
		return false
	}
	if len(keys) == 0 {
		return true
	}
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

// GeminiModelList is the fake's models.list answer.
const GeminiModelList = `{"models":[` +
	`{"name":"models/gemini-2.5-flash","version":"001","displayName":"Gemini 2.5 Flash","inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens"],"thinking":true},` +
	`{"name":"models/gemini-2.5-pro","version":"2.5","displayName":"Gemini 2.5 Pro","inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens"],"thinking":true}` +
	`],"nextPageToken":""}`

func geminiModel(name string) string {
	return fmt.Sprintf(`{"name":"models/%s","version":"001","displayName":"Fake %s","inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens"]}`, name, name)
}

// geminiUsage is a usageMetadata object; candidates is the running count.
func geminiUsage(candidates, thoughts int) string {
	return fmt.Sprintf(`{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d,"cachedContentTokenCount":%d,"thoughtsTokenCount":%d,"promptTokensDetails":[{"modality":"TEXT","tokenCount":%d}]}`,
		GeminiPromptTokens, candidates, GeminiPromptTokens+candidates+thoughts, GeminiCachedTokens, thoughts, GeminiPromptTokens)
}

// GeminiResponseJSON is a complete public-API GenerateContentResponse.
func GeminiResponseJSON(model, text string) string {
	return fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":%q}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"fake-response-1"}`,
		text, geminiUsage(GeminiCandidatesTokens, GeminiThoughtsTokens), model)
}

// GeminiStream is a public-API SSE stream whose text is split over n events
// (default 3). Like Google's, every event is a whole response with running
// usage, the last one has finishReason, and there is no end marker.
func GeminiStream(model, text string, n int, gap time.Duration) []Event {
	if n <= 0 {
		n = 3
	}
	parts := split(text, n)
	ev := make([]Event, 0, len(parts))
	for i, part := range parts {
		cand, thoughts := (i+1)*GeminiCandidatesTokens/len(parts), GeminiThoughtsTokens
		finish := ""
		if i == len(parts)-1 {
			cand, finish = GeminiCandidatesTokens, `,"finishReason":"STOP"`
		}
		ev = append(ev, Event{Delay: gap, Data: fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":%q}],"role":"model"}%s,"index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"fake-response-1"}`,
			part, finish, geminiUsage(cand, thoughts), model)})
	}
	return ev
}

// CodeAssistWrap wraps a public-API response in Code Assist's envelope.
func CodeAssistWrap(response string) string {
	return `{"response":` + response + `,"traceId":"fake-trace-1"}`
}

// CodeAssistEvents wraps each event's data in Code Assist's envelope.
func CodeAssistEvents(events []Event) []Event {
	out := make([]Event, len(events))
	for i, e := range events {
		out[i] = e
		out[i].Data = CodeAssistWrap(e.Data)
	}
	return out
}

// CodeAssistReply is a public-API answer (such as GeminiThoughtToolCall's)
// as Code Assist sends it: a whole response, each SSE event, or each
// element of a JSON-array stream wrapped in the envelope (CodeAssistWrap).
func CodeAssistReply(rep *Reply) *Reply {
	out := *rep
	if rep.Events != nil {
		out.Events = CodeAssistEvents(rep.Events)
	}
	switch body := gjson.Parse(rep.Body); {
	case rep.Body == "":
	case body.IsArray():
		var events []Event
		for _, e := range body.Array() {
			events = append(events, Event{Data: e.Raw})
		}
		out.Body = eventsArray(CodeAssistEvents(events))
	default:
		out.Body = CodeAssistWrap(rep.Body)
	}
	return &out
}

// eventsArray is the JSON-array form of a stream (no alt=sse).
func eventsArray(events []Event) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			b.WriteString(",\r\n")
		}
		b.WriteString(e.Data)
	}
	b.WriteByte(']')
	return b.String()
}

// GoogleError is a google.rpc error body. reason adds an ErrorInfo and
// retryDelay (such as "37s") a RetryInfo.
func GoogleError(code int, status, reason, msg, retryDelay string) string {
	var details []string
	if reason != "" {
		details = append(details, fmt.Sprintf(`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":%q,"domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}`, reason))
	}
	if retryDelay != "" {
		details = append(details, fmt.Sprintf(`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":%q}`, retryDelay))
	}
	d := ""
	if len(details) > 0 {
		d = `,"details":[` + strings.Join(details, ",") + `]`
	}
	return fmt.Sprintf(`{"error":{"code":%d,"message":%q,"status":%q%s}}`, code, msg, status, d)
}
