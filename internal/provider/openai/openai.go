// Package openai knows the OpenAI Responses API as ccrelay relays it to
// openai-responses accounts: URLs, session keys, usage, error reading.
package openai

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// DefaultBaseURL is OpenAI's API root, /v1 included (as the original).
const DefaultBaseURL = "https://api.openai.com/v1"

// ResponsesURL is {api_url or default}/responses.
func ResponsesURL(apiURL string) string {
	return BaseURL(apiURL) + "/responses"
}

// BaseURL trims an account's api_url; "" gives DefaultBaseURL.
func BaseURL(apiURL string) string {
	if apiURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(apiURL, "/")
}

// SessionKey is Codex's session-id header, else the body's prompt_cache_key.
func SessionKey(body []byte, h http.Header) string {
	for _, k := range []string{"Session-Id", "Session_id", "Conversation-Id", "Conversation_id"} {
		if v := h.Get(k); v != "" {
			return v
		}
		if vv := h[k]; len(vv) > 0 && vv[0] != "" {
			return vv[0]
		}
	}
	return gjson.GetBytes(body, "prompt_cache_key").Str
}

func usageOf(u gjson.Result) provider.Usage {
	in := u.Get("input_tokens").Int()
	cached := u.Get("input_tokens_details.cached_tokens").Int()
	return provider.Usage{InputTokens: in - cached, CacheReadTokens: cached, OutputTokens: u.Get("output_tokens").Int()}
}

// ParseUsage reads a Responses object's usage.
func ParseUsage(body []byte) (provider.Usage, bool) {
	u := gjson.GetBytes(body, "usage")
	if !u.Exists() {
		return provider.Usage{}, false
	}
	return usageOf(u), true
}

// ClassifyEvent reads one Responses SSE event, merging usage from the terminal event.
func ClassifyEvent(name, data []byte, u *provider.Usage) provider.EventClass {
	n := string(name)
	if n == "" {
		n = gjson.GetBytes(data, "type").Str
	}
	switch n {
	case "response.created", "response.in_progress", "codex.rate_limits":
		return provider.Preamble
	case "response.completed", "response.incomplete":
		u.Merge(usageOf(gjson.GetBytes(data, "response.usage")))
		return provider.Terminal
	case "response.failed", "error":
		return provider.ErrorEvent
	}
	return provider.Content
}

// ClassifyStreamError reads an error or response.failed event.
func ClassifyStreamError(data []byte, now time.Time) provider.Verdict {
	code := gjson.GetBytes(data, "response.error.code").Str
	if code == "" {
		code = gjson.GetBytes(data, "error.code").Str
	}
	if code == "" {
		code = gjson.GetBytes(data, "code").Str
	}
	switch code {
	case "rate_limit_exceeded":
		return provider.Verdict{Kind: provider.RateLimited, Reason: "stream: rate_limit_exceeded"}
	case "insufficient_quota", "usage_not_included":
		return provider.Verdict{Kind: provider.QuotaExhausted, Reason: "stream: " + code}
	case "context_length_exceeded", "invalid_prompt", "invalid_request_error":
		return provider.Verdict{Kind: provider.ClientError, Reason: "stream: " + code}
	case "server_is_overloaded", "slow_down":
		return provider.Verdict{Kind: provider.Overloaded, Reason: "stream: " + code}
	}
	return provider.Verdict{Kind: provider.ServerError, Reason: "stream error " + code}
}

// Classify reads a non-2xx answer from the Responses API (or Codex backend).
// Every time hint is bounded (provider.HintTime); a nonsensical one is
// ignored and named in Verdict.BadHint.
func Classify(status int, h http.Header, body []byte, now time.Time) provider.Verdict {
	lower := strings.ToLower(string(body))
	var bad string
	note := func(name, v string) {
		if bad == "" {
			bad = provider.BadHint(name, v)
		}
	}
	retryAfter := func() time.Time {
		v := h.Get("retry-after")
		t, ok := provider.ParseRetryAfter(v, now)
		if !ok {
			note("retry-after", v)
		}
		return t
	}
	var v provider.Verdict
	switch {
	case status == 429:
		if quotaError(body) || codexExhausted(h) {
			until := codexReset(h, note)
			if until.IsZero() {
				until = bodyReset(body, now, note)
			}
			v = provider.Verdict{Kind: provider.QuotaExhausted, Until: provider.HintTime(until, now), Reason: "quota exhausted (429)"}
			break
		}
		until := retryAfter()
		if ms := h.Get("retry-after-ms"); until.IsZero() && ms != "" {
			n, err := strconv.ParseFloat(ms, 64)
			if d, ok := provider.HintDelay(n, time.Millisecond); err == nil && ok {
				until = now.Add(d)
			} else {
				note("retry-after-ms", ms)
			}
		}
		if until.IsZero() {
			for _, k := range []string{"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"} {
				// ParseDuration refuses what a Duration cannot hold.
				if d, err := time.ParseDuration(h.Get(k)); err == nil && d > 0 {
					if t := now.Add(provider.ClampHint(d)); until.IsZero() || t.After(until) {
						until = t
					}
				}
			}
		}
		v = provider.Verdict{Kind: provider.RateLimited, Until: until, Reason: "rate limited (429)"}
	case status == 401, status == 402:
		v = provider.Verdict{Kind: provider.Unavailable, Reason: "unauthorized (" + strconv.Itoa(status) + ")"}
	case status == 403:
		v = provider.Verdict{Kind: provider.Unavailable, Reason: "forbidden (403)"}
	case status == 503 && strings.Contains(lower, "overload"):
		v = provider.Verdict{Kind: provider.Overloaded, Reason: "overloaded"}
	case status >= 500:
		v = provider.Verdict{Kind: provider.ServerError, Until: retryAfter(), Reason: "upstream " + strconv.Itoa(status)}
	default:
		v = provider.Verdict{Kind: provider.ClientError, Reason: "upstream " + strconv.Itoa(status)}
	}
	v.BadHint = bad
	return v
}

// quotaError reports a 429 whose error.type or error.code names a spent
// quota (OpenAI's insufficient_quota, the Codex backend's
// usage_limit_reached). The structured fields decide, never the message.
func quotaError(body []byte) bool {
	for _, f := range gjson.GetManyBytes(body, "error.type", "error.code") {
		switch f.Str {
		case "insufficient_quota", "usage_limit_reached", "usage_not_included":
			return true
		}
	}
	return false
}

// codexExhausted reports a Codex window at 100%.
func codexExhausted(h http.Header) bool {
	for _, w := range []string{"primary", "secondary"} {
		if v, err := strconv.ParseFloat(h.Get("x-codex-"+w+"-used-percent"), 64); err == nil && v >= 100 {
			return true
		}
	}
	return false
}

// codexReset is the latest reset of an exhausted Codex window (unix
// seconds); note is told of a reset that is not a positive number.
func codexReset(h http.Header, note func(name, v string)) time.Time {
	var t time.Time
	for _, w := range []string{"primary", "secondary"} {
		used, _ := strconv.ParseFloat(h.Get("x-codex-"+w+"-used-percent"), 64)
		if used < 100 {
			continue
		}
		name := "x-codex-" + w + "-reset-at"
		v := h.Get(name)
		if v == "" {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			if r := time.Unix(n, 0); r.After(t) {
				t = r
			}
		} else {
			note(name, v)
		}
	}
	return t
}

// maxUnix bounds a unix time read from a body (year 33658): beyond it the
// value is nonsense, not a date.
const maxUnix = 1e12

// bodyReset reads the reset the Codex backend puts in a usage_limit_reached
// body: error.resets_at (unix seconds) or error.resets_in_seconds; note is
// told of a value that is present but unusable.
func bodyReset(body []byte, now time.Time, note func(name, v string)) time.Time {
	r := gjson.GetManyBytes(body, "error.resets_at", "error.resets_in_seconds")
	if r[0].Exists() && r[0].Type != gjson.Null {
		// Read as a float: converting a huge one to an integer is undefined.
		if n := r[0].Float(); r[0].Type == gjson.Number && n > 0 && n < maxUnix {
			return time.Unix(int64(n), 0)
		}
		note("error.resets_at", r[0].Raw)
	}
	if r[1].Exists() && r[1].Type != gjson.Null {
		if d, ok := provider.HintDelay(r[1].Float(), time.Second); ok && r[1].Type == gjson.Number {
			return now.Add(d)
		}
		note("error.resets_in_seconds", r[1].Raw)
	}
	return time.Time{}
}

// errorNames is OpenAI's name for an error the relay reports, the one
// mapping for every OpenAI-shaped error: error.type, and the error.code
// clients branch on ("" is null). A spent quota shares 429 with a rate
// limit, but clients must tell them apart (Codex waits out
// rate_limit_exceeded and stops on insufficient_quota), so it is named by
// quotaSpent rather than by its status.
func errorNames(status int, f fault) (typ, code string) {
	switch {
	case f == quotaSpent:
		return "insufficient_quota", "insufficient_quota"
	case status == 429:
		// As OpenAI names a request-rate limit.
		return "requests", "rate_limit_exceeded"
	case status == 400, status == 404, status == 413, status == 431:
		return "invalid_request_error", ""
	case status == 401:
		return "authentication_error", ""
	case status == 403:
		return "permission_error", "permission_denied"
	}
	return "server_error", ""
}

// fault says what named an error: its HTTP status, or a spent quota.
type fault int

const (
	byStatus fault = iota
	quotaSpent
)

// ErrorBody is an error in OpenAI's shape, naming the offending parameter
// (param "" is null), as OpenAI reports invalid requests.
func ErrorBody(status int, msg, param string) []byte {
	typ, code := errorNames(status, byStatus)
	return errorBody(typ, msg, param, code)
}

// QuotaErrorBody is the 429 of a spent budget in OpenAI's shape
// (insufficient_quota, which clients do not retry).
func QuotaErrorBody(msg string) []byte {
	typ, code := errorNames(http.StatusTooManyRequests, quotaSpent)
	return errorBody(typ, msg, "", code)
}

// FailedEvent is an error inside a Responses stream: a response.failed
// event, the terminal event Responses clients act on (Codex ignores a bare
// "error" event and then reports "stream closed before
// response.completed"). Its error.code is never null: the type stands in
// for an error OpenAI gives no code.
func FailedEvent(status int, msg string) []byte {
	typ, code := errorNames(status, byStatus)
	if code == "" {
		code = typ
	}
	b := []byte(`event: response.failed` + "\n" + `data: {"type":"response.failed","response":{"id":"resp_ccrelay_error","object":"response","status":"failed","error":{"code":"`)
	b = append(b, code...)
	b = append(b, `","message":`...)
	b = provider.AppendJSONString(b, msg)
	return append(b, "}}}\n\n"...)
}

func errorBody(typ, msg, param, code string) []byte {
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","param":`...)
	b = appendStringOrNull(b, param)
	b = append(b, `,"code":`...)
	b = appendStringOrNull(b, code)
	return append(b, "}}"...)
}

func appendStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return provider.AppendJSONString(b, s)
}
