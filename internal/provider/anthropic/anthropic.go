// Package anthropic knows the Anthropic Messages API: upstream URLs, the
// headers an account adds, session keys, usage in JSON and SSE, how to read an
// error, and error bodies in Anthropic's shape.
package anthropic

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// DefaultBaseURL is Anthropic's API.
const DefaultBaseURL = "https://api.anthropic.com"

// OAuthBeta must be in anthropic-beta when calling with a subscription token.
const OAuthBeta = "oauth-2025-04-20"

// Version is sent when the client sent no anthropic-version.
const Version = "2023-06-01"

// BaseURL turns an account's api_url into the root that API paths hang off,
// accepting the forms the original accepted: ".../v1/messages", ".../v1" or a
// bare host (trailing slashes trimmed).
func BaseURL(apiURL string) string {
	if apiURL == "" {
		return DefaultBaseURL
	}
	u := strings.TrimRight(apiURL, "/")
	u = strings.TrimSuffix(u, "/v1/messages")
	u = strings.TrimSuffix(u, "/v1")
	return u
}

// MergeBeta returns the client's anthropic-beta with add appended unless it
// is already present; the client's own betas are kept in order.
func MergeBeta(client, add string) string {
	if client == "" {
		return add
	}
	for _, b := range strings.Split(client, ",") {
		if strings.TrimSpace(b) == add {
			return client
		}
	}
	return client + "," + add
}

var legacySessionRE = regexp.MustCompile(`session_([a-f0-9-]{36})`)

// Request is what the relay reads from a Messages request body.
type Request struct {
	Model      string
	Stream     bool
	SessionKey string
	// MaxTokens is max_tokens (0 when absent or not a number).
	MaxTokens int64
	// Repeated names a member the relay reads that the body has more than
	// once (see provider.PickMembers); the request must be refused.
	Repeated string
}

// inspected are the top-level members Inspect reads, in the order of its
// vals.
var inspected = []string{"model", "stream", "metadata", "system", "messages", "max_tokens"}

// Inspect reads model, stream and the session key in one pass over the
// top level of the body (nested values are skipped, not decoded). The
// session-key rules are SessionKey's.
func Inspect(body []byte, h http.Header) Request {
	var r Request
	if len(body) == 0 {
		return r
	}
	var vals [6][]byte
	// Raw member values are views into body; strings that outlive this
	// call are cloned below.
	rep, ok := provider.PickMembers(body, inspected, vals[:])
	if rep != "" {
		r.Repeated = rep
		return r
	}
	r.Model = strings.Clone(gjson.Parse(view(vals[0])).Str)
	r.Stream = gjson.Parse(view(vals[1])).Bool()
	r.MaxTokens = gjson.Parse(view(vals[5])).Int()
	var userID gjson.Result
	if vals[2] != nil {
		userID = gjson.Parse(view(vals[2])).Get("user_id")
	}
	system, messages := vals[3], vals[4]
	if !ok {
		// Malformed past what was read: the upstream will say so. Keep
		// what was found (a model routes the error to the right pool).
		r.SessionKey = strings.Clone(sessionKey(userID, gjson.Result{}, gjson.Result{}, h))
		return r
	}
	// system and messages are parsed only when no session id is sent (the
	// hash fallbacks need them); Claude Code always sends one.
	r.SessionKey = strings.Clone(sessionKeyLazy(userID, system, messages, h))
	return r
}

// view is a string over b without a copy; the caller keeps b alive.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func sessionKeyLazy(uid gjson.Result, system, messages []byte, h http.Header) string {
	if k := sessionIDOf(uid, h); k != "" {
		return k
	}
	return sessionKey(uid, gjson.Parse(view(system)), gjson.Parse(view(messages)), h)
}

// SessionKey derives the sticky-session key of a Messages request body, first
// match wins: the session id in metadata.user_id (current Claude Code sends a
// JSON string with session_id, older ones "..._session_<uuid>"); the
// X-Claude-Code-Session-Id header; a hash of the cache-marked content; of the
// system prompt; of the first message. "" when there is none.
func SessionKey(body []byte, h http.Header) string {
	return Inspect(body, h).SessionKey
}

// sessionIDOf is the session id a client sends (metadata.user_id or the
// Claude Code header), "" when there is none.
func sessionIDOf(uid gjson.Result, h http.Header) string {
	if uid.Type == gjson.String {
		s := uid.Str
		if len(s) > 0 && s[0] == '{' {
			if sid := gjson.Get(s, "session_id"); sid.Type == gjson.String && sid.Str != "" {
				return sid.Str
			}
		}
		if m := legacySessionRE.FindStringSubmatch(s); m != nil {
			return m[1]
		}
	}
	return h.Get("X-Claude-Code-Session-Id")
}

func sessionKey(uid, system, messages gjson.Result, h http.Header) string {
	if k := sessionIDOf(uid, h); k != "" {
		return k
	}
	if t := cacheMarkedText(system, messages); t != "" {
		return hashContent(t)
	}
	if t := textOf(system); t != "" {
		return hashContent(t)
	}
	if t := textOf(messages.Get("0.content")); t != "" {
		return hashContent(t)
	}
	return ""
}

func isEphemeral(v gjson.Result) bool { return v.Get("cache_control.type").Str == "ephemeral" }

// cacheMarkedText follows the original: the text of cache-marked system
// parts, then the text parts of the first cache-marked message.
func cacheMarkedText(system, messages gjson.Result) string {
	var b strings.Builder
	if system.IsArray() {
		system.ForEach(func(_, part gjson.Result) bool {
			if isEphemeral(part) {
				b.WriteString(part.Get("text").Str)
			}
			return true
		})
	}
	messages.ForEach(func(_, msg gjson.Result) bool {
		content := msg.Get("content")
		marked := isEphemeral(msg)
		if !marked && content.IsArray() {
			content.ForEach(func(_, p gjson.Result) bool {
				if isEphemeral(p) {
					marked = true
					return false
				}
				return true
			})
		}
		if marked {
			b.WriteString(textOf(content))
			return false
		}
		return true
	})
	return b.String()
}

func textOf(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	if !v.IsArray() {
		return ""
	}
	var b strings.Builder
	v.ForEach(func(_, p gjson.Result) bool {
		if p.Get("type").Str == "text" {
			b.WriteString(p.Get("text").Str)
		}
		return true
	})
	return b.String()
}

func hashContent(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// ParseUsage reads a JSON Messages response's usage.
func ParseUsage(body []byte) (provider.Usage, bool) {
	u := gjson.GetBytes(body, "usage")
	if !u.Exists() {
		return provider.Usage{}, false
	}
	return usageOf(u), true
}

// usageOf reads a usage object. cache_creation_input_tokens is every cache
// write; cache_creation.ephemeral_1h_input_tokens the part written for an
// hour (the rest is 5-minute), which is priced apart.
func usageOf(u gjson.Result) provider.Usage {
	return provider.Usage{
		InputTokens:           u.Get("input_tokens").Int(),
		OutputTokens:          u.Get("output_tokens").Int(),
		CacheCreationTokens:   u.Get("cache_creation_input_tokens").Int(),
		CacheCreation1hTokens: u.Get("cache_creation.ephemeral_1h_input_tokens").Int(),
		CacheReadTokens:       u.Get("cache_read_input_tokens").Int(),
	}
}

// ClassifyEvent reads one SSE event of a Messages stream, merging any usage
// it carries into u.
func ClassifyEvent(name, data []byte, u *provider.Usage) provider.EventClass {
	switch string(name) {
	case "message_start":
		u.Merge(usageOf(gjson.GetBytes(data, "message.usage")))
		return provider.Preamble
	case "ping":
		return provider.Preamble
	case "message_delta":
		u.Merge(usageOf(gjson.GetBytes(data, "usage")))
		return provider.Content
	case "message_stop":
		return provider.Terminal
	case "error":
		return provider.ErrorEvent
	case "":
		// Unnamed events: look at the type field.
		if t := gjson.GetBytes(data, "type").Str; t != "" {
			return ClassifyEvent([]byte(t), data, u)
		}
	}
	return provider.Content
}

// ClassifyStreamError reads an error event's data.
func ClassifyStreamError(data []byte, model string) provider.Verdict {
	t := gjson.GetBytes(data, "error.type").Str
	msg := gjson.GetBytes(data, "error.message").Str
	v := provider.Verdict{Reason: "stream error: " + t}
	switch t {
	case "overloaded_error":
		v.Kind = provider.Overloaded
	case "rate_limit_error":
		v.Kind = provider.RateLimited
	case "authentication_error", "permission_error", "billing_error":
		v.Kind = provider.Unavailable
	case "invalid_request_error", "not_found_error", "request_too_large":
		v.Kind = provider.ClientError
	default:
		v.Kind = provider.ServerError
	}
	// Only a rate-limit event's own wording narrows it to a model's weekly
	// window: other events (invalid_request_error) may repeat the request.
	if t == "rate_limit_error" && strings.Contains(strings.ToLower(msg), "weekly") && strings.Contains(strings.ToLower(msg), "opus") {
		v.Kind, v.Model = provider.QuotaExhausted, model
	}
	return v
}

// Classify reads a non-2xx answer. model is the requested model, used to scope
// a model-specific limit. Every time hint is bounded (provider.HintTime); a
// nonsensical one is ignored and named in Verdict.BadHint.
func Classify(status int, h http.Header, body []byte, model string, now time.Time) provider.Verdict {
	x := &hints{h: h, now: now}
	v := classify(status, x, body, model)
	if v.BadHint == "" {
		v.BadHint = x.bad
	}
	return v
}

// classify decides by the HTTP status and error.type only. An error's
// message is not read: Anthropic's validation errors repeat the request's own
// field names and text, so a client could write any phrase there (one
// request saying "credit balance is too low" must not cool every account).
// The one exception is a 429's body, which the upstream writes itself and
// which never repeats the request (see classify429).
//
// What this gives up: Anthropic reports an exhausted credit balance and a
// disabled organization as 400 invalid_request_error, the very shape of a
// client's mistake. Those answers pass through to the client, uncooled, like
// any other 400; a distinct error.type (billing_error) or status (402) does
// cool the account.
func classify(status int, x *hints, body []byte, model string) provider.Verdict {
	etype := gjson.GetBytes(body, "error.type").Str
	switch {
	case status == 429:
		return classify429(x, strings.ToLower(string(body)), model)
	case status == 529 || etype == "overloaded_error":
		return provider.Verdict{Kind: provider.Overloaded, Until: x.retryAfter(), Reason: "overloaded"}
	case status == 401:
		return provider.Verdict{Kind: provider.Unavailable, Reason: "unauthorized (401)"}
	case status == 402 || etype == "billing_error":
		return provider.Verdict{Kind: provider.Unavailable, Reason: "billing problem (" + strconv.Itoa(status) + ")"}
	case status == 403:
		return classify403(etype)
	case status >= 500:
		return provider.Verdict{Kind: provider.ServerError, Until: x.retryAfter(), Reason: "upstream " + strconv.Itoa(status)}
	}
	return provider.Verdict{Kind: provider.ClientError, Reason: "upstream " + strconv.Itoa(status)}
}

// classify403 reads a 403 by its error.type. permission_error (and the
// request-shaped types) is about what this request asks for, e.g. a model
// the organisation may not use: another account would refuse it too, so it
// is the client's. Anything else (authentication_error, Claude Code's
// "forbidden" for a lapsed subscription, a 403 without Anthropic's envelope)
// is about the account.
func classify403(etype string) provider.Verdict {
	switch etype {
	case "permission_error", "invalid_request_error", "not_found_error", "request_too_large":
		return provider.Verdict{Kind: provider.ClientError, Reason: "forbidden (403 " + etype + ")"}
	}
	return provider.Verdict{Kind: provider.Unavailable, Reason: "forbidden: account disabled or revoked (403)"}
}

func classify429(x *hints, lowerBody, model string) provider.Verdict {
	h, now := x.h, x.now
	// Properties of the request, not the account: rotating would not help,
	// and the account is not to blame.
	if strings.Contains(lowerBody, "usage credits are required for fast mode") {
		return provider.Verdict{Kind: provider.ClientError, Reason: "fast mode needs usage credits"}
	}
	if strings.Contains(lowerBody, "extra usage is required for long context") {
		return provider.Verdict{Kind: provider.ClientError, Reason: "long context needs extra usage"}
	}
	// Model-specific weekly window (e.g. Opus): cool only that model.
	if strings.EqualFold(h.Get("anthropic-ratelimit-unified-7d_oi-status"), "rejected") ||
		(strings.Contains(lowerBody, "weekly") && strings.Contains(lowerBody, "opus")) {
		until := x.reset("anthropic-ratelimit-unified-7d_oi-reset")
		if until.IsZero() {
			until = x.reset("anthropic-ratelimit-unified-7d-reset")
		}
		return provider.Verdict{Kind: provider.QuotaExhausted, Until: until, Model: model, Reason: "model weekly limit reached"}
	}
	// Subscription windows: the account is out until the window resets.
	for _, w := range []string{"5h", "7d"} {
		if strings.EqualFold(h.Get("anthropic-ratelimit-unified-"+w+"-status"), "rejected") {
			until := x.reset("anthropic-ratelimit-unified-" + w + "-reset")
			if until.IsZero() {
				until = x.reset("anthropic-ratelimit-unified-reset")
			}
			return provider.Verdict{Kind: provider.QuotaExhausted, Until: until, Reason: w + " usage limit reached"}
		}
	}
	if strings.EqualFold(h.Get("anthropic-ratelimit-unified-status"), "rejected") {
		if until := x.reset("anthropic-ratelimit-unified-reset"); !until.IsZero() {
			return provider.Verdict{Kind: provider.QuotaExhausted, Until: until, Reason: "usage limit reached"}
		}
	}
	until := x.retryAfter()
	if until.IsZero() {
		// API-key limits name their reset per dimension; the latest rejected one
		// is unknown, so take the earliest reset in the future.
		for _, k := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
			t, _ := parseReset(h.Get("anthropic-ratelimit-" + k + "-reset"))
			if t.After(now) && (until.IsZero() || t.Before(until)) {
				until = t
			}
		}
		until = provider.HintTime(until, now)
	}
	return provider.Verdict{Kind: provider.RateLimited, Until: until, Reason: "rate limited (429)"}
}

// hints reads the time hints of one answer, bounded to
// [now+provider.MinHint, now+provider.MaxHint]; bad keeps the first
// nonsensical one for Verdict.BadHint.
type hints struct {
	h   http.Header
	now time.Time
	bad string
}

func (x *hints) note(name, v string) {
	if x.bad == "" {
		x.bad = provider.BadHint(name, v)
	}
}

// retryAfter reads Retry-After; zero when absent or nonsense.
func (x *hints) retryAfter() time.Time {
	v := x.h.Get("retry-after")
	t, ok := provider.ParseRetryAfter(v, x.now)
	if !ok {
		x.note("retry-after", v)
	}
	return t
}

// reset reads a reset header; zero when absent or nonsense.
func (x *hints) reset(name string) time.Time {
	v := x.h.Get(name)
	t, ok := parseReset(v)
	if !ok {
		x.note(name, v)
	}
	return provider.HintTime(t, x.now)
}

// parseReset reads a reset header: unix seconds (or milliseconds) or an RFC
// 3339 timestamp. ok is false for a value that is present but unusable (not
// a number or a date, zero or negative).
func parseReset(v string) (t time.Time, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n <= 0:
			return time.Time{}, false
		case n > 1e12: // milliseconds
			return time.UnixMilli(n), true
		}
		return time.Unix(n, 0), true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// ErrorType maps an HTTP status to Anthropic's error.type.
func ErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 503, 529:
		return "overloaded_error"
	}
	return "api_error"
}

// ErrorBody is an error in Anthropic's shape.
func ErrorBody(status int, msg string) []byte {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"type":"error","error":{"type":"`...)
	b = append(b, ErrorType(status)...)
	b = append(b, `","message":`...)
	b = provider.AppendJSONString(b, msg)
	return append(b, "}}"...)
}

// ErrorEvent is an SSE error event in Anthropic's shape.
func ErrorEvent(status int, msg string) []byte {
	b := append([]byte("event: error\ndata: "), ErrorBody(status, msg)...)
	return append(b, "\n\n"...)
}
