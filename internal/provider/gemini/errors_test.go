package gemini

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// now is 2026-07-01 10:00 PDT; the next Pacific midnight is 2026-07-02 07:00 UTC.
var (
	now          = time.Date(2026, 7, 1, 17, 0, 0, 0, time.UTC)
	nextMidnight = time.Date(2026, 7, 2, 7, 0, 0, 0, time.UTC)
)

const (
	publicPerMinute = `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.5-flash\nPlease retry in 32.118922316s.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "10"}]},
      {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "32s"}
    ]
  }
}`
	publicPerDay = `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 50, model: gemini-2.5-pro\nPlease retry in 15.3s.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"}, "quotaValue": "50"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s"}
    ]
  }
}`
	caQuotaExhausted = `{"error":{"code":429,"message":"You have exhausted your capacity on this model. Your quota will reset after 3h14m2s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"uiMessage":"true","model":"gemini-2.5-pro","quotaResetDelay":"3h14m2.5s","quotaResetTimeStamp":"2026-07-01T20:14:02Z"}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"11642.5s"}]}}`
	caQuotaNoHint    = `{"error":{"code":429,"message":"Quota exhausted.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"model":"gemini-2.5-flash"}}]}}`
	caRateLimit      = `{"error":{"code":429,"message":"You have exhausted your capacity on this model.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"cloudcode-pa.googleapis.com","metadata":{"uiMessage":"true","model":"gemini-2.5-pro"}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`
	caCapacity       = `{"error":{"code":429,"message":"No capacity available for model gemini-2.5-pro on the server","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_CAPACITY_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"model":"gemini-2.5-pro"}}]}}`
	overloaded503    = `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`
	serviceDisabled  = `{"error":{"code":403,"message":"Generative Language API has not been used in project 1234 before or it is disabled.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com","consumer":"projects/1234"}}]}}`
	suspended        = `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSyDUMMYDUMMYDUMMYDUMMYDUMMYDUMMYDUM' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com"}]}}`
	fileDenied       = `{"error":{"code":403,"message":"You do not have permission to access the File abc123 or it may not exist.","status":"PERMISSION_DENIED"}}`
	cachedDenied     = `{"error":{"code":403,"message":"CachedContent not found (or permission denied)","status":"PERMISSION_DENIED"}}`
	validationReq    = `{"error":{"code":403,"message":"Verify your account to continue.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"VALIDATION_REQUIRED","domain":"cloudcode-pa.googleapis.com","metadata":{"validation_link":"https://accounts.google.com/x"}}]}}`
	plain403         = `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`
	notFound         = `{"error":{"code":404,"message":"models/gemini-9-ultra is not found for API version v1beta, or is not supported for generateContent.","status":"NOT_FOUND"}}`
	badKey           = `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`
	badRequest       = `{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified\n","status":"INVALID_ARGUMENT"}}`
	location         = `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`
	echoed           = `{"error":{"code":400,"message":"* GenerateContentRequest.contents[0].parts[0].text: API key not valid. API key expired. Please enable billing. User location is not supported for the API use.\n","status":"INVALID_ARGUMENT"}}`
	unauthenticated  = `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.","status":"UNAUTHENTICATED"}}`
	internal         = `{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}`
)

func TestClassify(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		status int
		h      http.Header
		body   string
		want   provider.Verdict // Reason is checked separately
	}{
		{"ok", 200, nil, `{}`, provider.Verdict{Kind: provider.OK}},
		{"public per-minute RetryInfo 32s", 429, nil, publicPerMinute, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(32 * time.Second), Model: "gemini-2.5-flash"}},
		{"public per-day", 429, nil, publicPerDay, provider.Verdict{Kind: provider.QuotaExhausted, Until: nextMidnight, Model: "gemini-2.5-pro"}},
		{"code assist QUOTA_EXHAUSTED with reset timestamp", 429, nil, caQuotaExhausted, provider.Verdict{Kind: provider.QuotaExhausted, Until: time.Date(2026, 7, 1, 20, 14, 2, 0, time.UTC), Model: "gemini-2.5-pro"}},
		{"code assist QUOTA_EXHAUSTED no hint", 429, nil, caQuotaNoHint, provider.Verdict{Kind: provider.QuotaExhausted, Until: nextMidnight, Model: "gemini-2.5-flash"}},
		{"code assist RATE_LIMIT_EXCEEDED 1.5s", 429, nil, caRateLimit, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(1500 * time.Millisecond), Model: "gemini-2.5-pro"}},
		{"MODEL_CAPACITY_EXHAUSTED", 429, nil, caCapacity, provider.Verdict{Kind: provider.Overloaded, Model: "gemini-2.5-pro"}},
		{"503 overloaded", 503, nil, overloaded503, provider.Verdict{Kind: provider.Overloaded}},
		{"503 with retry-after", 503, hdr("Retry-After", "7"), overloaded503, provider.Verdict{Kind: provider.Overloaded, Until: now.Add(7 * time.Second)}},
		{"403 SERVICE_DISABLED", 403, nil, serviceDisabled, provider.Verdict{Kind: provider.Unavailable}},
		{"403 CONSUMER_SUSPENDED", 403, nil, suspended, provider.Verdict{Kind: provider.Unavailable}},
		{"403 VALIDATION_REQUIRED", 403, nil, validationReq, provider.Verdict{Kind: provider.Unavailable}},
		{"403 plain", 403, nil, plain403, provider.Verdict{Kind: provider.Unavailable}},
		{"403 file of the request", 403, nil, fileDenied, provider.Verdict{Kind: provider.ClientError}},
		{"403 cached content of the request", 403, nil, cachedDenied, provider.Verdict{Kind: provider.ClientError}},
		{"404 model", 404, nil, notFound, provider.Verdict{Kind: provider.ClientError}},
		{"400 bad key", 400, nil, badKey, provider.Verdict{Kind: provider.Unavailable}},
		{"400 bad request", 400, nil, badRequest, provider.Verdict{Kind: provider.ClientError}},
		// No ErrorInfo reason: FAILED_PRECONDITION also answers a request
		// for a file that is not ready, so the status alone cannot cool.
		{"400 location", 400, nil, location, provider.Verdict{Kind: provider.ClientError}},
		// A validation error repeating the client's text decides nothing.
		{"400 echoing the client", 400, nil, echoed, provider.Verdict{Kind: provider.ClientError}},
		{"400 BILLING_DISABLED", 400, nil, `{"error":{"code":400,"message":"x","status":"FAILED_PRECONDITION","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"BILLING_DISABLED","domain":"googleapis.com"}]}}`, provider.Verdict{Kind: provider.Unavailable}},
		{"403 SERVICE_DISABLED in an array", 403, nil, "[" + serviceDisabled + "]", provider.Verdict{Kind: provider.Unavailable}},
		{"401", 401, nil, unauthenticated, provider.Verdict{Kind: provider.Unavailable}},
		{"413 no body", 413, nil, ``, provider.Verdict{Kind: provider.ClientError}},
		{"500", 500, nil, internal, provider.Verdict{Kind: provider.ServerError}},
		{"502 html with retry-after", 502, hdr("Retry-After", "3"), `<html><body>Bad Gateway</body></html>`, provider.Verdict{Kind: provider.ServerError, Until: now.Add(3 * time.Second)}},
		{"504", 504, nil, ``, provider.Verdict{Kind: provider.ServerError}},
		{"499", 499, nil, `{"error":{"code":499,"message":"The operation was cancelled.","status":"CANCELLED"}}`, provider.Verdict{Kind: provider.ServerError}},
		{"429 bare retry-after seconds", 429, hdr("Retry-After", "12"), ``, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(12 * time.Second)}},
		{"429 retry-after date", 429, hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), ``, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(90 * time.Second)}},
		{"429 retry-after garbage", 429, hdr("Retry-After", "soon"), ``, provider.Verdict{Kind: provider.RateLimited}},
		{"429 RetryInfo beats header", 429, hdr("Retry-After", "99"), caRateLimit, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(1500 * time.Millisecond), Model: "gemini-2.5-pro"}},
		{"429 message only", 429, nil, `{"error":{"code":429,"message":"Resource exhausted. Please retry in 850ms.","status":"RESOURCE_EXHAUSTED"}}`, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(provider.MinHint)}},
		{"429 bare boilerplate", 429, nil, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`, provider.Verdict{Kind: provider.RateLimited}},
		{"429 per-minute without delay", 429, nil, `{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier"}]}]}}`, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(time.Minute)}},
		{"429 RetryInfo object form", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":{"seconds":4,"nanos":500000000}}]}}`, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(4500 * time.Millisecond)}},
		{"429 absurd RetryInfo clamped", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"99999999s"}]}}`, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(provider.MaxHint)}},
		{"429 array body", 429, nil, `[{"error":{"code":429,"message":"q","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}]`, provider.Verdict{Kind: provider.RateLimited, Until: now.Add(2 * time.Second)}},
		{"QUOTA_EXHAUSTED long RetryInfo", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3600s"}]}}`, provider.Verdict{Kind: provider.QuotaExhausted, Until: now.Add(time.Hour)}},
		{"QUOTA_EXHAUSTED short RetryInfo waits for midnight", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"30s"}]}}`, provider.Verdict{Kind: provider.QuotaExhausted, Until: nextMidnight}},
		{"daily quota_limit metadata", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","metadata":{"quota_limit":"GenerateRequestsPerDayPerProjectPerModel"}}]}}`, provider.Verdict{Kind: provider.QuotaExhausted, Until: nextMidnight}},
		{"credits exhausted", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"INSUFFICIENT_G1_CREDITS_BALANCE"}]}}`, provider.Verdict{Kind: provider.QuotaExhausted}},
		{"bogus violation model ignored", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"PerDay","quotaDimensions":{"model":"../../x"}}]}]}}`, provider.Verdict{Kind: provider.QuotaExhausted, Until: nextMidnight}},
		{"models/ prefix stripped", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","metadata":{"model":"models/gemini-2.5-pro"}}]}}`, provider.Verdict{Kind: provider.QuotaExhausted, Until: nextMidnight, Model: "gemini-2.5-pro"}},
		{"error as string", 500, nil, `{"error":"boom"}`, provider.Verdict{Kind: provider.ServerError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.status, tt.h, []byte(tt.body), now)
			if got.Kind != tt.want.Kind || !got.Until.Equal(tt.want.Until) || got.Model != tt.want.Model {
				t.Errorf("Classify = {%v until %v model %q}, want {%v until %v model %q} (reason %q)",
					got.Kind, got.Until, got.Model, tt.want.Kind, tt.want.Until, tt.want.Model, got.Reason)
			}
			if tt.status >= 300 && got.Reason == "" {
				t.Error("empty Reason")
			}
			if len(got.Reason) > maxReasonLen {
				t.Errorf("Reason is %d bytes", len(got.Reason))
			}
		})
	}
}

func TestClassifyReason(t *testing.T) {
	// The message never reaches Reason (logged, stored, sent to alert
	// webhooks): it can repeat what a client wrote.
	v0 := Classify(403, nil, []byte(`{"error":{"code":403,"message":"Permission denied on models/x <!channel> <https://evil.example|click>","status":"PERMISSION_DENIED"}}`), now)
	if v0.Kind != provider.Unavailable || v0.Reason != "gemini 403 PERMISSION_DENIED" {
		t.Errorf("Reason = %q (%v)", v0.Reason, v0.Kind)
	}
	v := Classify(403, nil, []byte(suspended), now)
	if strings.Contains(v.Reason, "AIza") {
		t.Errorf("Reason leaks the API key: %q", v.Reason)
	}
	if !strings.Contains(v.Reason, "CONSUMER_SUSPENDED") || !strings.Contains(v.Reason, "403") {
		t.Errorf("Reason = %q", v.Reason)
	}
	v = Classify(429, nil, []byte(publicPerMinute), now)
	if strings.ContainsAny(v.Reason, "\n\r\t") {
		t.Errorf("Reason has control characters: %q", v.Reason)
	}
	v = Classify(401, nil, []byte(`{"error":{"code":401,"message":"bad token ya29.a0AfH6SMBxyz-_.123 and Bearer abcdefghijkl","status":"UNAUTHENTICATED"}}`), now)
	if strings.Contains(v.Reason, "ya29") || strings.Contains(v.Reason, "abcdefghijkl") {
		t.Errorf("Reason leaks a token: %q", v.Reason)
	}
}

func TestNextPacificMidnight(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"summer", time.Date(2026, 7, 1, 17, 0, 0, 0, time.UTC), time.Date(2026, 7, 2, 7, 0, 0, 0, time.UTC)},
		{"winter", time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), time.Date(2026, 1, 16, 8, 0, 0, 0, time.UTC)},
		{"one second before midnight", time.Date(2026, 7, 2, 6, 59, 59, 0, time.UTC), time.Date(2026, 7, 2, 7, 0, 0, 0, time.UTC)},
		{"exactly midnight", time.Date(2026, 7, 2, 7, 0, 0, 0, time.UTC), time.Date(2026, 7, 3, 7, 0, 0, 0, time.UTC)},
		{"spring forward day", time.Date(2026, 3, 8, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 7, 0, 0, 0, time.UTC)},
		{"fall back day", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextPacificMidnight(tt.now); !got.Equal(tt.want) {
				t.Errorf("nextPacificMidnight(%v) = %v, want %v", tt.now, got.UTC(), tt.want)
			}
		})
	}
}

func TestStreamEventError(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		want   provider.Kind
		wantOK bool
	}{
		{"response", `{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}`, 0, false},
		{"wrapped response", `{"response":{"candidates":[]},"traceId":"t"}`, 0, false},
		{"bare error", `{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"5s"}]}}`, provider.RateLimited, true},
		{"wrapped error", `{"response":{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}}`, provider.Overloaded, true},
		{"data prefix", "data: {\"error\":{\"code\":500,\"message\":\"Internal error encountered.\",\"status\":\"INTERNAL\"}}", provider.ServerError, true},
		{"status without code", `{"error":{"message":"x","status":"PERMISSION_DENIED"}}`, provider.Unavailable, true},
		{"nothing usable", `{"error":{}}`, provider.ServerError, true},
		{"capacity", caCapacity, provider.Overloaded, true},
		{"daily quota", publicPerDay, provider.QuotaExhausted, true},
		{"error string is not an event error", `{"error":"x"}`, 0, false},
		{"garbage", `{{`, 0, false},
		{"empty", ``, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := StreamEventError([]byte(tt.data), now)
			if ok != tt.wantOK || (ok && v.Kind != tt.want) {
				t.Errorf("StreamEventError = %v (%q), %v; want %v, %v", v.Kind, v.Reason, ok, tt.want, tt.wantOK)
			}
		})
	}
	v, _ := StreamEventError([]byte(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"5s"}]}}`), now)
	if !v.Until.Equal(now.Add(5 * time.Second)) {
		t.Errorf("Until = %v, want now+5s", v.Until)
	}
}

func TestStreamEventErrorNoAllocOnResponses(t *testing.T) {
	data := []byte(`{"response":{"candidates":[{"content":{"parts":[{"text":"` + strings.Repeat("y", 2048) + `"}]}}]},"traceId":"t"}`)
	if n := testing.AllocsPerRun(100, func() { StreamEventError(data, now) }); n != 0 {
		t.Errorf("StreamEventError allocates %v times on a normal event, want 0", n)
	}
}

func TestErrorBody(t *testing.T) {
	tests := []struct {
		code   int
		status string
		msg    string
		want   string
	}{
		{429, "RESOURCE_EXHAUSTED", "all accounts are rate limited", `{"error":{"code":429,"message":"all accounts are rate limited","status":"RESOURCE_EXHAUSTED"}}`},
		{400, "", `bad "model" <x>`, `{"error":{"code":400,"message":"bad \"model\" \u003cx\u003e","status":"INVALID_ARGUMENT"}}`},
		{503, "", "", `{"error":{"code":503,"message":"","status":"UNAVAILABLE"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := ErrorBody(tt.code, tt.status, tt.msg)
			if string(got) != tt.want {
				t.Errorf("ErrorBody = %s, want %s", got, tt.want)
			}
			var back struct {
				Error struct {
					Code    int
					Message string
					Status  string
				}
			}
			if err := json.Unmarshal(got, &back); err != nil || back.Error.Message != tt.msg || back.Error.Code != tt.code {
				t.Errorf("does not round-trip: %+v %v", back, err)
			}
			// Our own error body must classify like the upstream one would.
			if v := Classify(tt.code, nil, got, now); tt.code == 429 && v.Kind != provider.RateLimited {
				t.Errorf("Classify(ErrorBody) = %v", v.Kind)
			}
		})
	}
}

func TestStatusName(t *testing.T) {
	tests := map[int]string{
		200: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "PERMISSION_DENIED", 403: "PERMISSION_DENIED",
		404: "NOT_FOUND", 405: "UNIMPLEMENTED", 408: "DEADLINE_EXCEEDED", 409: "ABORTED", 412: "FAILED_PRECONDITION",
		413: "INVALID_ARGUMENT", 416: "OUT_OF_RANGE", 418: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
		500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
		507: "INTERNAL", 0: "UNKNOWN", 302: "UNKNOWN",
	}
	for code, want := range tests {
		if got := StatusName(code); got != want {
			t.Errorf("StatusName(%d) = %q, want %q", code, got, want)
		}
	}
	// codeForStatus inverts the canonical names.
	for _, code := range []int{400, 401, 403, 404, 409, 429, 499, 501, 503, 504} {
		if got := codeForStatus(StatusName(code)); got != code {
			t.Errorf("codeForStatus(StatusName(%d)) = %d", code, got)
		}
	}
}

// Every time the upstream names is bounded to [1 s, 31 days]; nonsense is
// ignored (the default cooldown applies) and named in BadHint.
func TestClassifyBoundsTimeHints(t *testing.T) {
	retryInfo := func(delay string) string {
		return `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":` + delay + `}]}}`
	}
	quota := func(md string) string {
		return `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","metadata":` + md + `}]}}`
	}
	tests := []struct {
		name    string
		h       http.Header
		body    string
		kind    provider.Kind
		until   time.Time
		wantBad string // prefix of BadHint; "" = none
	}{
		{"RetryInfo object 1e300 seconds", nil, retryInfo(`{"seconds":1e300}`), provider.RateLimited, time.Time{}, "retryDelay="},
		{"RetryInfo object negative", nil, retryInfo(`{"seconds":-3}`), provider.RateLimited, time.Time{}, "retryDelay="},
		{"RetryInfo object absurd nanos", nil, retryInfo(`{"seconds":2678000,"nanos":9000000000000000000}`), provider.RateLimited, time.Time{}, "retryDelay="},
		{"RetryInfo string overflow", nil, retryInfo(`"99999999999999999999s"`), provider.RateLimited, time.Time{}, "retryDelay="},
		{"RetryInfo string negative", nil, retryInfo(`"-5s"`), provider.RateLimited, time.Time{}, "retryDelay="},
		{"RetryInfo 0s", nil, retryInfo(`"0s"`), provider.RateLimited, now.Add(provider.MinHint), ""},
		{"Retry-After +Inf", http.Header{"Retry-After": {"+Inf"}}, `{}`, provider.RateLimited, time.Time{}, "Retry-After=+Inf"},
		{"Retry-After NaN on a 500", http.Header{"Retry-After": {"NaN"}}, `{}`, provider.ServerError, time.Time{}, "Retry-After=NaN"},
		{"quotaResetDelay a year", nil, quota(`{"quotaResetDelay":"8760h"}`), provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"quotaResetTimeStamp year 2200", nil, quota(`{"quotaResetTimeStamp":"2200-01-01T00:00:00Z"}`), provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"quotaResetTimeStamp garbage", nil, quota(`{"quotaResetTimeStamp":"tomorrow"}`), provider.QuotaExhausted, nextMidnight, "quotaResetTimeStamp=tomorrow"},
		{"message reset after 9000h", nil, `{"error":{"code":429,"message":"Your quota will reset after 9000h.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED"}]}}`, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := 429
			if tt.kind == provider.ServerError {
				status = 500
			}
			v := Classify(status, tt.h, []byte(tt.body), now)
			if v.Kind != tt.kind || !v.Until.Equal(tt.until) {
				t.Fatalf("got %v until %v, want %v until %v", v.Kind, v.Until, tt.kind, tt.until)
			}
			if (tt.wantBad == "") != (v.BadHint == "") || !strings.HasPrefix(v.BadHint, tt.wantBad) {
				t.Fatalf("BadHint = %q, want prefix %q", v.BadHint, tt.wantBad)
			}
		})
	}
}
