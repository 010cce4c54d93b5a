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
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
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
func Classify(status int, h http.Header, body []byte, now time.Time) provider.Verdict {
	lower := strings.ToLower(string(body))
	switch {
	case status == 429:
		if strings.Contains(lower, "insufficient_quota") || strings.Contains(lower, "usage_limit_reached") || codexExhausted(h) {
			until := codexReset(h)
			if until.IsZero() {
				until = bodyReset(body, now)
			}
			return provider.Verdict{Kind: provider.QuotaExhausted, Until: until, Reason: "quota exhausted (429)"}
		}
		until := anthropic.RetryAfter(h.Get("retry-after"), now)
		if until.IsZero() {
			if ms := h.Get("retry-after-ms"); ms != "" {
				if n, err := strconv.ParseFloat(ms, 64); err == nil {
					until = now.Add(time.Duration(n * float64(time.Millisecond)))
				}
			}
		}
		if until.IsZero() {
			for _, k := range []string{"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"} {
				if d, err := time.ParseDuration(h.Get(k)); err == nil && d > 0 {
					if t := now.Add(d); until.IsZero() || t.After(until) {
						until = t
					}
				}
			}
		}
		return provider.Verdict{Kind: provider.RateLimited, Until: until, Reason: "rate limited (429)"}
	case status == 401, status == 402:
		return provider.Verdict{Kind: provider.Unavailable, Reason: "unauthorized (" + strconv.Itoa(status) + ")"}
	case status == 403:
		return provider.Verdict{Kind: provider.Unavailable, Reason: "forbidden (403)"}
	case status == 503 && strings.Contains(lower, "overload"):
		return provider.Verdict{Kind: provider.Overloaded, Reason: "overloaded"}
	case status >= 500:
		return provider.Verdict{Kind: provider.ServerError, Until: anthropic.RetryAfter(h.Get("retry-after"), now), Reason: "upstream " + strconv.Itoa(status)}
	}
	return provider.Verdict{Kind: provider.ClientError, Reason: "upstream " + strconv.Itoa(status)}
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

// codexReset is the latest reset of an exhausted Codex window (unix seconds).
func codexReset(h http.Header) time.Time {
	var t time.Time
	for _, w := range []string{"primary", "secondary"} {
		used, _ := strconv.ParseFloat(h.Get("x-codex-"+w+"-used-percent"), 64)
		if used < 100 {
			continue
		}
		if n, err := strconv.ParseInt(h.Get("x-codex-"+w+"-reset-at"), 10, 64); err == nil {
			if r := time.Unix(n, 0); r.After(t) {
				t = r
			}
		}
	}
	return t
}

// bodyReset reads the reset the Codex backend puts in a usage_limit_reached
// body: error.resets_at (unix seconds) or error.resets_in_seconds.
func bodyReset(body []byte, now time.Time) time.Time {
	r := gjson.GetManyBytes(body, "error.resets_at", "error.resets_in_seconds")
	if n := r[0].Int(); n > 0 {
		return time.Unix(n, 0)
	}
	if n := r[1].Int(); n > 0 {
		return now.Add(time.Duration(n) * time.Second)
	}
	return time.Time{}
}

// ErrorType maps an HTTP status to OpenAI's error.type.
func ErrorType(status int) string {
	switch status {
	case 400, 404, 413, 431:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 429:
		return "rate_limit_error"
	}
	return "server_error"
}

// ErrorBody is an error in OpenAI's shape, naming the offending parameter
// (param "" is null), as OpenAI reports invalid requests.
func ErrorBody(status int, msg, param string) []byte {
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"type":"`...)
	b = append(b, ErrorType(status)...)
	b = append(b, `","param":`...)
	if param == "" {
		b = append(b, "null"...)
	} else {
		b = provider.AppendJSONString(b, param)
	}
	return append(b, `,"code":null}}`...)
}
