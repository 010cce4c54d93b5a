package openai

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

func TestClassify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reset := now.Add(4 * time.Hour)
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		wantKind  provider.Kind
		wantUntil time.Time
	}{
		{"429 retry-after", 429, map[string]string{"Retry-After": "30"}, `{"error":{"code":"rate_limit_exceeded"}}`, provider.RateLimited, now.Add(30 * time.Second)},
		{"429 retry-after-ms", 429, map[string]string{"Retry-After-Ms": "1500"}, `{}`, provider.RateLimited, now.Add(1500 * time.Millisecond)},
		{"429 x-ratelimit resets, latest wins", 429, map[string]string{"X-Ratelimit-Reset-Requests": "6s", "X-Ratelimit-Reset-Tokens": "1m0s"}, `{}`, provider.RateLimited, now.Add(time.Minute)},
		{"429 no hint", 429, nil, `{}`, provider.RateLimited, time.Time{}},
		{"429 insufficient_quota", 429, nil, `{"error":{"type":"insufficient_quota","code":"insufficient_quota"}}`, provider.QuotaExhausted, time.Time{}},
		{"429 quota words in the message only", 429, nil, `{"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"insufficient_quota usage_limit_reached"}}`, provider.RateLimited, time.Time{}},
		{"400 echoing quota words", 400, nil, `{"error":{"type":"invalid_request_error","message":"insufficient_quota: your API key is invalid, credit balance is too low"}}`, provider.ClientError, time.Time{}},
		{"429 codex window at 100%", 429, map[string]string{"X-Codex-Primary-Used-Percent": "100", "X-Codex-Primary-Reset-At": strconv.FormatInt(reset.Unix(), 10), "X-Codex-Secondary-Used-Percent": "20", "X-Codex-Secondary-Reset-At": "1"}, `{}`, provider.QuotaExhausted, reset},
		{"429 codex usage_limit_reached body resets_at", 429, nil, `{"error":{"type":"usage_limit_reached","resets_at":` + strconv.FormatInt(reset.Unix(), 10) + `}}`, provider.QuotaExhausted, reset},
		{"429 codex usage_limit_reached body resets_in_seconds", 429, nil, `{"error":{"type":"usage_limit_reached","resets_in_seconds":600}}`, provider.QuotaExhausted, now.Add(10 * time.Minute)},
		{"401", 401, nil, `{"error":{"code":"invalid_api_key"}}`, provider.Unavailable, time.Time{}},
		{"403", 403, nil, `{}`, provider.Unavailable, time.Time{}},
		{"503 overloaded", 503, nil, `{"error":{"message":"The engine is currently overloaded"}}`, provider.Overloaded, time.Time{}},
		{"500", 500, nil, `{}`, provider.ServerError, time.Time{}},
		{"400 codex detail", 400, nil, `{"detail":"Store must be set to false"}`, provider.ClientError, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			v := Classify(tt.status, h, []byte(tt.body), now)
			if v.Kind != tt.wantKind || !v.Until.Equal(tt.wantUntil) {
				t.Fatalf("got %s until %v, want %s until %v", v.Kind, v.Until, tt.wantKind, tt.wantUntil)
			}
		})
	}
}

func TestClassifyEvent(t *testing.T) {
	tests := []struct {
		name, event, data string
		want              provider.EventClass
		wantUsage         provider.Usage
	}{
		{"created", "response.created", `{"type":"response.created","response":{"id":"r"}}`, provider.Preamble, provider.Usage{}},
		{"rate limits", "codex.rate_limits", `{}`, provider.Preamble, provider.Usage{}},
		{"delta", "response.output_text.delta", `{"delta":"x"}`, provider.Content, provider.Usage{}},
		{"completed with usage", "response.completed", `{"response":{"usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":8},"output_tokens":9}}}`, provider.Terminal, provider.Usage{InputTokens: 12, CacheReadTokens: 8, OutputTokens: 9}},
		{"incomplete", "response.incomplete", `{"response":{"usage":{"input_tokens":5,"output_tokens":1}}}`, provider.Terminal, provider.Usage{InputTokens: 5, OutputTokens: 1}},
		{"unnamed completed", "", `{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":2}}}`, provider.Terminal, provider.Usage{InputTokens: 3, OutputTokens: 2}},
		{"failed", "response.failed", `{"response":{"error":{"code":"server_error"}}}`, provider.ErrorEvent, provider.Usage{}},
		{"error", "error", `{"type":"error","code":"rate_limit_exceeded"}`, provider.ErrorEvent, provider.Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u provider.Usage
			if got := ClassifyEvent([]byte(tt.event), []byte(tt.data), &u); got != tt.want || u != tt.wantUsage {
				t.Fatalf("class %v usage %+v, want %v %+v", got, u, tt.want, tt.wantUsage)
			}
		})
	}
}

func TestClassifyStreamError(t *testing.T) {
	tests := []struct {
		data string
		want provider.Kind
	}{
		{`{"type":"response.failed","response":{"error":{"code":"rate_limit_exceeded","message":"try again in 2s"}}}`, provider.RateLimited},
		{`{"type":"response.failed","response":{"error":{"code":"insufficient_quota"}}}`, provider.QuotaExhausted},
		{`{"type":"response.failed","response":{"error":{"code":"context_length_exceeded"}}}`, provider.ClientError},
		{`{"type":"error","code":"server_is_overloaded"}`, provider.Overloaded},
		{`{"type":"error","error":{"code":"usage_not_included"}}`, provider.QuotaExhausted},
		{`{"type":"response.failed","response":{"error":{"code":"server_error"}}}`, provider.ServerError},
	}
	for _, tt := range tests {
		if v := ClassifyStreamError([]byte(tt.data), time.Now()); v.Kind != tt.want {
			t.Errorf("%s: got %s, want %s", tt.data, v.Kind, tt.want)
		}
	}
}

func TestSessionKey(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   string
	}{
		{"session-id header", http.Header{"Session-Id": {"a"}}, `{"prompt_cache_key":"p"}`, "a"},
		{"session_id header", http.Header{"Session_id": {"b"}}, `{"prompt_cache_key":"p"}`, "b"},
		{"conversation_id header (older codex)", http.Header{"Conversation_id": {"c"}}, `{}`, "c"},
		{"prompt_cache_key", http.Header{}, `{"prompt_cache_key":"p"}`, "p"},
		{"nothing", http.Header{}, `{"input":"hi"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionKey([]byte(tt.body), tt.header); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{"": DefaultBaseURL, "https://x.example/v1/": "https://x.example/v1", "http://127.0.0.1:9/v1": "http://127.0.0.1:9/v1"} {
		if got := BaseURL(in); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ResponsesURL(""); got != "https://api.openai.com/v1/responses" {
		t.Errorf("ResponsesURL = %q", got)
	}
}

// Every time the upstream names is bounded to [1 s, 31 days]; nonsense is
// ignored (the default cooldown applies) and named in BadHint.
func TestClassifyBoundsTimeHints(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name      string
		header    map[string]string
		body      string
		wantKind  provider.Kind
		wantUntil time.Time
		wantBad   string // prefix of BadHint; "" = none
	}{
		{"resets_in_seconds beyond a Duration", nil, `{"error":{"type":"usage_limit_reached","resets_in_seconds":10000000000000}}`, provider.QuotaExhausted, time.Time{}, "error.resets_in_seconds="},
		{"resets_in_seconds 1e300", nil, `{"error":{"type":"usage_limit_reached","resets_in_seconds":1e300}}`, provider.QuotaExhausted, time.Time{}, "error.resets_in_seconds="},
		{"resets_in_seconds 60 days", nil, `{"error":{"type":"usage_limit_reached","resets_in_seconds":5184000}}`, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"resets_in_seconds negative", nil, `{"error":{"type":"usage_limit_reached","resets_in_seconds":-5}}`, provider.QuotaExhausted, time.Time{}, "error.resets_in_seconds="},
		{"resets_at 1e300", nil, `{"error":{"type":"usage_limit_reached","resets_at":1e300}}`, provider.QuotaExhausted, time.Time{}, "error.resets_at="},
		{"resets_at year 2100", nil, `{"error":{"type":"usage_limit_reached","resets_at":4102444800}}`, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"resets_at in the past", nil, `{"error":{"type":"usage_limit_reached","resets_at":1000}}`, provider.QuotaExhausted, now.Add(provider.MinHint), ""},
		{"codex reset-at garbage", map[string]string{"X-Codex-Primary-Used-Percent": "100", "X-Codex-Primary-Reset-At": "99999999999999999999"}, `{}`, provider.QuotaExhausted, time.Time{}, "x-codex-primary-reset-at="},
		{"codex reset-at year 2100", map[string]string{"X-Codex-Primary-Used-Percent": "100", "X-Codex-Primary-Reset-At": "4102444800"}, `{}`, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"retry-after +Inf", map[string]string{"Retry-After": "+Inf"}, `{}`, provider.RateLimited, time.Time{}, "retry-after=+Inf"},
		{"retry-after NaN", map[string]string{"Retry-After": "NaN"}, `{}`, provider.RateLimited, time.Time{}, "retry-after=NaN"},
		{"retry-after 1e300", map[string]string{"Retry-After": "1e300"}, `{}`, provider.RateLimited, time.Time{}, "retry-after=1e300"},
		{"retry-after 0", map[string]string{"Retry-After": "0"}, `{}`, provider.RateLimited, now.Add(provider.MinHint), ""},
		{"retry-after-ms NaN", map[string]string{"Retry-After-Ms": "NaN"}, `{}`, provider.RateLimited, time.Time{}, "retry-after-ms=NaN"},
		{"retry-after-ms 1e300", map[string]string{"Retry-After-Ms": "1e300"}, `{}`, provider.RateLimited, time.Time{}, "retry-after-ms="},
		{"x-ratelimit-reset 9000h", map[string]string{"X-Ratelimit-Reset-Requests": "9000h"}, `{}`, provider.RateLimited, now.Add(provider.MaxHint), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			v := Classify(429, h, []byte(tt.body), now)
			if v.Kind != tt.wantKind || !v.Until.Equal(tt.wantUntil) {
				t.Fatalf("got %v until %v, want %v until %v", v.Kind, v.Until, tt.wantKind, tt.wantUntil)
			}
			if (tt.wantBad == "") != (v.BadHint == "") || !strings.HasPrefix(v.BadHint, tt.wantBad) {
				t.Fatalf("BadHint = %q, want prefix %q", v.BadHint, tt.wantBad)
			}
		})
	}
}

// Every OpenAI-shaped error the relay makes is named by one mapping: a
// plain error body, a spent quota and a response.failed event agree on the
// type and code of each status (a relay-made 429 used to say
// rate_limit_error with no code while a refusal said rate_limit_exceeded).
func TestErrorNamesOneMapping(t *testing.T) {
	tests := []struct {
		status    int
		typ, code string
	}{
		{400, "invalid_request_error", ""},
		{401, "authentication_error", ""},
		{403, "permission_error", "permission_denied"},
		{404, "invalid_request_error", ""},
		{429, "requests", "rate_limit_exceeded"},
		{500, "server_error", ""},
		{502, "server_error", ""},
	}
	for _, tt := range tests {
		b := ErrorBody(tt.status, "m", "")
		if gjson.GetBytes(b, "error.type").Str != tt.typ || gjson.GetBytes(b, "error.code").Str != tt.code {
			t.Errorf("ErrorBody(%d) = %s; want type %q code %q", tt.status, b, tt.typ, tt.code)
		}
		ev := FailedEvent(tt.status, `say "hi"`)
		data, ok := strings.CutPrefix(string(ev), "event: response.failed\ndata: ")
		if !ok || !strings.HasSuffix(data, "\n\n") || !gjson.Valid(data) {
			t.Fatalf("FailedEvent(%d) = %q", tt.status, ev)
		}
		want := tt.code
		if want == "" {
			want = tt.typ
		}
		if got := gjson.Get(data, "response.error.code").Str; got != want || gjson.Get(data, "response.error.message").Str != `say "hi"` {
			t.Errorf("FailedEvent(%d) code %q, want %q: %s", tt.status, got, want, data)
		}
		if ClassifyStreamError([]byte(data), time.Time{}).Kind == provider.OK {
			t.Errorf("FailedEvent(%d) does not read back as an error", tt.status)
		}
	}
	b := QuotaErrorBody("spent")
	if gjson.GetBytes(b, "error.type").Str != "insufficient_quota" || gjson.GetBytes(b, "error.code").Str != "insufficient_quota" {
		t.Errorf("QuotaErrorBody = %s", b)
	}
	if v := Classify(429, nil, b, time.Time{}); v.Kind != provider.QuotaExhausted {
		t.Errorf("QuotaErrorBody classifies as %v, want QuotaExhausted", v.Kind)
	}
}
