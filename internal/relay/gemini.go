package relay

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// geminiPlatform is the pool the Gemini routes serve.
const geminiPlatform = accounttype.PlatformGemini

// geminiOp is what a /gemini request asks for.
type geminiOp int

const (
	// geminiCall is POST models/{model}:{generateContent|streamGenerateContent|countTokens}.
	geminiCall geminiOp = iota
	// geminiList is GET models.
	geminiList
	// geminiGet is GET models/{model}.
	geminiGet
)

// errNoCodeAssistModels is never expected: the model routes exclude gemini
// (Code Assist) accounts before they can be picked.
var errNoCodeAssistModels = errors.New("the code assist api has no model list")

// geminiAdapter carries public Gemini API requests to the gemini pool. A
// gemini-api account gets the client's body verbatim on the public API; a
// gemini (Google OAuth) account gets it wrapped in the Code Assist envelope,
// and its answers are unwrapped, both whole bodies and every SSE event.
type geminiAdapter struct {
	op geminiOp
	// call is the parsed path (geminiCall); only Version is set for list/get.
	call gemini.Call
	// model is the model of a geminiGet.
	model string
	// sse: a streaming call that asked for alt=sse. Without it, Google
	// answers streamGenerateContent with one JSON array, and so does ccrelay.
	sse bool
	now func() time.Time
}

func (geminiAdapter) platform() string { return geminiPlatform }

// codeAssist reports whether up speaks the Code Assist API rather than the
// public one (its type says, accounttype.Spec.CodeAssist).
func codeAssist(up *Upstream) bool { return up.TypeSpec().CodeAssist }

func (a geminiAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	var (
		u      string
		body   []byte
		method = http.MethodPost
	)
	switch {
	case a.op != geminiCall:
		if codeAssist(up) {
			return nil, errNoCodeAssistModels
		}
		method = http.MethodGet
		u = geminiPublicRoot(up.Config.APIURL) + "/" + a.call.Version + "/models"
		if a.op == geminiGet {
			u += "/" + url.PathEscape(a.model)
		}
		u += upstreamGeminiQuery(c.req.URL.RawQuery, geminiQuery{passOthers: true})
	case codeAssist(up):
		if up.Project == nil {
			return nil, errors.New("gemini account has no code assist project source")
		}
		project, err := up.Project.Project(ctx, secret)
		if err != nil {
			return nil, err
		}
		// The body was checked to be a JSON object at intake, so wrapping
		// it cannot fail on the client's account.
		if body, err = gemini.WrapCodeAssist(a.call, project, c.body); err != nil {
			return nil, err
		}
		// Code Assist takes no query parameters but alt.
		u = gemini.CodeAssistURL(up.Config.APIURL, a.call) + upstreamGeminiQuery("", geminiQuery{sse: a.sse})
	default:
		body = c.body
		u = gemini.PublicURL(up.Config.APIURL, a.call) + upstreamGeminiQuery(c.req.URL.RawQuery, geminiQuery{sse: a.sse, passOthers: true})
	}
	req, err := newUpstreamRequest(ctx, c, method, u, body)
	if err != nil {
		return nil, err
	}
	copyRequestHeader(req.Header, c.req.Header, geminiRequestHeaders)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	up.authenticate(req.Header, secret)
	return req, nil
}

// geminiPublicRoot is the public API base without a trailing slash.
func geminiPublicRoot(base string) string {
	base = strings.TrimRight(base, "/")
	if base == "" {
		return gemini.PublicBaseURL
	}
	return base
}

// geminiQuery is what an upstream query string carries: alt=sse (the
// client asked for SSE) and the client's other parameters (the public API
// takes them, Code Assist none).
type geminiQuery struct{ sse, passOthers bool }

// upstreamGeminiQuery builds the query string ("" or "?...") of an upstream
// request. The relay key a client may send as ?key= never goes upstream;
// neither does the client's alt, which is replaced by alt=sse when the
// client asked for SSE. Other parameters (fields, pageSize, pageToken...)
// pass when o.passOthers is set.
func upstreamGeminiQuery(raw string, o geminiQuery) string {
	var q url.Values
	if o.passOthers && raw != "" {
		v, err := url.ParseQuery(raw)
		if err == nil {
			v.Del("key")
			v.Del("alt")
			if len(v) > 0 {
				q = v
			}
		}
	}
	if q == nil {
		if o.sse {
			return "?alt=sse"
		}
		return ""
	}
	if o.sse {
		q.Set("alt", "sse")
	}
	return "?" + q.Encode()
}

func (a geminiAdapter) classify(c *call, status int, h http.Header, body []byte) provider.Verdict {
	return gemini.Classify(status, h, body, a.now())
}

func (a geminiAdapter) decode(c *call, up *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if !gjson.ValidBytes(body) {
		return nil, provider.Usage{}, errMalformed
	}
	if a.op != geminiCall {
		return body, provider.Usage{}, nil
	}
	out := body
	if codeAssist(up) {
		out = unwrapCodeAssistBody(body)
	}
	u, _ := gemini.ParseUsage(out)
	return out, u, nil
}

// unwrapCodeAssistBody unwraps a unary Code Assist answer, or each element
// of the JSON array that streamGenerateContent without alt=sse returns.
func unwrapCodeAssistBody(body []byte) []byte {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '[' {
		return gemini.UnwrapCodeAssist(body)
	}
	out := make([]byte, 0, len(b))
	out = append(out, '[')
	n := 0
	gjson.ParseBytes(b).ForEach(func(_, v gjson.Result) bool {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, gemini.UnwrapCodeAssist([]byte(v.Raw))...)
		return true
	})
	return append(out, ']')
}

func (a geminiAdapter) newStream(c *call, up *Upstream) streamer {
	return &geminiStream{codeAssist: codeAssist(up), now: a.now}
}

// errorKey is how a google.rpc error object is named in a stream event; the
// quotes cannot occur unescaped inside a JSON string, so events without this
// substring are not errors and skip the parse.
var errorKey = []byte(`"error"`)

// geminiStream reads a Gemini SSE stream. Every event is a complete
// GenerateContentResponse, so the first one already commits (Gemini has no
// preamble), and the stream just ends (no terminal event). Public API
// streams pass through byte for byte; Code Assist events are rewritten to
// their inner "response".
type geminiStream struct {
	codeAssist bool
	now        func() time.Time
	u          provider.Usage
	verdict    provider.Verdict
}

func (s *geminiStream) observe(ev *sse.Event) provider.EventClass {
	if bytes.Contains(ev.Data, errorKey) {
		if v, ok := gemini.StreamEventError(ev.Data, s.now()); ok {
			s.verdict = v
			return provider.ErrorEvent
		}
	}
	payload := ev.Data
	if s.codeAssist {
		payload = gemini.UnwrapCodeAssist(ev.Data)
	}
	if u, ok := gemini.ParseUsage(payload); ok {
		s.u.Merge(u)
	}
	return provider.Content
}

// transform rewrites a Code Assist event to its inner response; public API
// events pass as they are.
func (s *geminiStream) transform(dst []byte, ev *sse.Event) []byte {
	if !s.codeAssist || len(ev.Data) == 0 {
		return append(dst, ev.Raw...)
	}
	return appendDataEvent(dst, gemini.UnwrapCodeAssist(ev.Data))
}

// appendDataEvent appends a JSON payload as one single-line SSE event.
// Clients such as the genai SDKs parse each data: line as a whole JSON
// value, so a payload the upstream spread over several lines is folded: in
// valid JSON a raw CR or LF can only be whitespace, so a space replaces it.
func appendDataEvent(dst, payload []byte) []byte {
	dst = append(dst, "data: "...)
	start := len(dst)
	dst = append(dst, payload...)
	// Two IndexByte scans (vectorised) beat one IndexAny over a two-byte set.
	if bytes.IndexByte(payload, '\n') >= 0 || bytes.IndexByte(payload, '\r') >= 0 {
		for i := start; i < len(dst); i++ {
			if dst[i] == '\n' || dst[i] == '\r' {
				dst[i] = ' '
			}
		}
	}
	return append(dst, '\n', '\n')
}

func (s *geminiStream) passthrough() bool { return !s.codeAssist }
func (s *geminiStream) errVerdict(ev *sse.Event) provider.Verdict {
	if s.verdict.Kind == provider.OK {
		v, _ := gemini.StreamEventError(ev.Data, s.now())
		return v
	}
	return s.verdict
}
func (s *geminiStream) end(dst []byte) []byte { return dst }
func (s *geminiStream) needsTerminal() bool   { return false }
func (s *geminiStream) usage() provider.Usage { return s.u }

const geminiRoutesHelp = "ccrelay serves GET /gemini/{v1|v1beta}/models[/{model}] and POST /gemini/{v1|v1beta}/models/{model}:{generateContent|streamGenerateContent|countTokens}"

// handleGemini serves the /gemini subtree: the public Gemini API's
// models.list, models.get, generateContent, streamGenerateContent and
// countTokens under /gemini/v1 and /gemini/v1beta. It takes the whole
// subtree so every malformed path gets a Google-shaped error.
func (r *Relay) handleGemini(w http.ResponseWriter, req *http.Request, d dialect) {
	ad := geminiAdapter{now: r.now}
	rest := strings.TrimPrefix(req.URL.Path, "/gemini")
	version, tail, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	ad.call.Version = version
	if version != "v1" && version != "v1beta" {
		r.rejectGemini(w, req, d, ad, http.StatusNotFound, "no route for "+req.Method+" /gemini/"+truncateForError(version)+"...; "+geminiRoutesHelp)
		return
	}
	switch {
	case tail == "models" || tail == "models/":
		if req.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			r.rejectGemini(w, req, d, ad, http.StatusMethodNotAllowed, "models.list is GET; "+geminiRoutesHelp)
			return
		}
		ad.op = geminiList
		r.handleGeminiModels(w, req, d, ad)
	case strings.HasPrefix(tail, "models/") && req.Method == http.MethodGet && !strings.Contains(tail, ":"):
		model := tail[len("models/"):]
		if !gemini.ValidModel(model) {
			r.rejectGemini(w, req, d, ad, http.StatusBadRequest, "invalid model name: it must be 1-128 characters of [A-Za-z0-9._-], start with a letter or digit and contain no '..'")
			return
		}
		ad.op, ad.model = geminiGet, model
		r.handleGeminiModels(w, req, d, ad)
	case strings.HasPrefix(tail, "models/"):
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			r.rejectGemini(w, req, d, ad, http.StatusMethodNotAllowed, "generateContent, streamGenerateContent and countTokens are POST; "+geminiRoutesHelp)
			return
		}
		gc, err := gemini.ParseCall(rest)
		if err != nil {
			// ParseCall's errors never echo the path, so they are safe to return.
			r.rejectGemini(w, req, d, ad, http.StatusBadRequest, err.Error())
			return
		}
		ad.call = gc
		ad.sse = gc.Stream() && queryParam(req.URL.RawQuery, "alt") == "sse"
		r.handleGeminiCall(w, req, d, ad)
	default:
		r.rejectGemini(w, req, d, ad, http.StatusNotFound, "no route for "+req.Method+" /gemini/"+version+"/"+truncateForError(tail)+"; "+geminiRoutesHelp)
	}
}

// queryParam returns the first value of name in a raw query without
// parsing the rest of it.
func queryParam(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

// truncateForError bounds a piece of client path echoed in an error.
func truncateForError(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// rejectGemini answers a malformed /gemini request after checking the relay
// key, so an unauthenticated caller learns nothing but 401.
func (r *Relay) rejectGemini(w http.ResponseWriter, req *http.Request, d dialect, ad geminiAdapter, status int, msg string) {
	if c := r.intake(w, req, d, ad, intakeOpts{queryKey: true}); c == nil {
		return
	}
	closeUnread(w, req)
	writeDialectError(w, d, status, msg)
}

func (r *Relay) handleGeminiCall(w http.ResponseWriter, req *http.Request, d dialect, ad geminiAdapter) {
	// The whole body is checked: a Code Assist account wraps it in an
	// envelope, and a body that is not JSON must be the client's 400 before
	// any account is picked, never an account's failure.
	c := r.intake(w, req, d, ad, intakeOpts{queryKey: true, body: jsonValid})
	if c == nil {
		return
	}
	c.model = ad.call.Model
	c.stream = ad.sse
	// The body is passed on or wrapped whole, and read in several places
	// (session keys, Code Assist's envelope): no key may come twice.
	if rep, _ := provider.PickMembers(c.body, nil, nil); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	if c.key.HasUSDBudget() {
		c.maxTokens = geminiMaxTokens(c.body)
	}
	if k := gemini.SessionKey(c.body); k != "" {
		c.sessionKey = "gemini:" + k
	}
	if ad.call.Method == gemini.MethodCountTokens {
		r.serveCount(c, clientSides["google"], geminiCount)
		return
	}
	r.plan(c, clientSides["google"])
	if len(c.targets) > 0 {
		c.conv.array = ad.call.Stream() && !ad.sse
	}
	r.serve(c)
}

// handleGeminiModels serves models.list and models.get from the accounts
// whose upstream has the public model list: the Code Assist API behind
// Google OAuth accounts has none (accounttype.Spec.NoModelList). A pool
// without such accounts answers 501.
func (r *Relay) handleGeminiModels(w http.ResponseWriter, req *http.Request, d dialect, ad geminiAdapter) {
	c := r.intake(w, req, d, ad, intakeOpts{queryKey: true})
	if c == nil {
		return
	}
	c.model = ad.model
	exclude, without, listing := modelListers(r.Upstreams(), geminiPlatform)
	if listing == 0 && len(exclude) > 0 {
		r.writeError(c, http.StatusNotImplemented, noModelList(geminiPlatform, without)+
			" (the Code Assist API); call models/{model}:generateContent directly")
		r.finish(c)
		return
	}
	c.exclude = exclude
	r.serve(c)
}

// modelListers sorts a platform's accounts for a models route: exclude
// holds the ids of those whose upstream has no model list (their types in
// without), listing counts the others.
func modelListers(ups []*Upstream, platform string) (exclude, without []string, listing int) {
	for _, up := range ups {
		if up == nil || up.Account.Platform != platform {
			continue
		}
		if up.TypeSpec().NoModelList {
			exclude = append(exclude, up.Account.ID)
			if !slices.Contains(without, up.Config.Type) {
				without = append(without, up.Config.Type)
			}
			continue
		}
		listing++
	}
	return exclude, without, listing
}

// noModelList begins the 501 of a models route whose pool has only
// accounts without a model list: which types would list (from the
// registry) and which types the pool has ("listing models needs a
// gemini-api account: gemini accounts have no model list").
func noModelList(platform string, without []string) string {
	var listers []string
	for _, s := range accounttype.All() {
		if s.Platform == platform && !s.NoModelList {
			listers = append(listers, s.Type)
		}
	}
	article := "a"
	if len(listers) > 0 && strings.ContainsRune("aeiou", rune(listers[0][0])) {
		article = "an"
	}
	return "listing models needs " + article + " " + strings.Join(listers, " or ") + " account: " +
		strings.Join(without, ", ") + " accounts have no model list"
}
