package anthropic

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

func TestSessionKey(t *testing.T) {
	sys := `"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.197.123;"},{"type":"text","text":"You are a Claude agent.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"main prompt","cache_control":{"type":"ephemeral"}}]`
	turn1 := `{"model":"m",` + sys + `,"messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>"},{"type":"text","text":"say hi","cache_control":{"type":"ephemeral"}}]}]}`
	turn2 := `{"model":"m",` + sys + `,"messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>"},{"type":"text","text":"say hi"}]},{"role":"assistant","content":"hi"},{"role":"user","content":[{"type":"text","text":"more","cache_control":{"type":"ephemeral"}}]}]}`
	tests := []struct {
		name string
		body string
		hdr  map[string]string
		want string
	}{
		{"current claude code json user_id", `{"metadata":{"user_id":"{\"device_id\":\"abc\",\"account_uuid\":\"\",\"session_id\":\"9f1c0e34-5b7a-4d2e-8c61-0a1b2c3d4e5f\"}"},"messages":[]}`, nil, "9f1c0e34-5b7a-4d2e-8c61-0a1b2c3d4e5f"},
		{"legacy user_id", `{"metadata":{"user_id":"user_abc_account__session_12345678-1234-1234-1234-123456789012"},"messages":[]}`, nil, "12345678-1234-1234-1234-123456789012"},
		{"session header", `{"messages":[{"role":"user","content":"x"}]}`, map[string]string{"X-Claude-Code-Session-Id": "hdr-sess"}, "hdr-sess"},
		{"user_id wins over header", `{"metadata":{"user_id":"{\"session_id\":\"from-body\"}"}}`, map[string]string{"X-Claude-Code-Session-Id": "hdr"}, "from-body"},
		{"cache-marked system and first marked message", turn1, nil, hashContent("You are a Claude agent.main prompt" + "<system-reminder>say hi")},
		{"system string", `{"system":"be brief","messages":[{"role":"user","content":"q"}]}`, nil, hashContent("be brief")},
		{"first message", `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}]}]}`, nil, hashContent("ab")},
		{"nothing", `{"messages":[]}`, nil, ""},
		{"not json", `nope`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.hdr {
				h.Set(k, v)
			}
			if got := SessionKey([]byte(tt.body), h); got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
	// A second turn of the same conversation (JSON user_id) keeps the key.
	a := SessionKey([]byte(`{"metadata":{"user_id":"{\"session_id\":\"s1\"}"},"messages":[{"role":"user","content":"1"}]}`), http.Header{})
	b := SessionKey([]byte(`{"metadata":{"user_id":"{\"session_id\":\"s1\"}"},"messages":[{"role":"user","content":"1"},{"role":"assistant","content":"2"},{"role":"user","content":"3"}]}`), http.Header{})
	if a != b {
		t.Fatal("second turn changed the key")
	}
	// Without ids, the system-prompt hash is stable across turns even though
	// the cache marker moved to a later message.
	k1, k2 := SessionKey([]byte(turn1), http.Header{}), SessionKey([]byte(turn2), http.Header{})
	if k1 == "" || k2 == "" {
		t.Fatal("no key")
	}
}

func TestClassify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := func(kv ...string) http.Header {
		x := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			x.Set(kv[i], kv[i+1])
		}
		return x
	}
	tests := []struct {
		name   string
		status int
		hdr    http.Header
		body   string
		kind   provider.Kind
		until  time.Time
		model  string
	}{
		{"429 retry-after seconds", 429, h("retry-after", "30"), `{}`, provider.RateLimited, now.Add(30 * time.Second), ""},
		{"429 retry-after date", 429, h("retry-after", now.Add(time.Minute).UTC().Format(http.TimeFormat)), `{}`, provider.RateLimited, now.Add(time.Minute), ""},
		{"429 api reset header", 429, h("anthropic-ratelimit-requests-reset", now.Add(20*time.Second).UTC().Format(time.RFC3339)), `{}`, provider.RateLimited, now.Add(20 * time.Second), ""},
		{"429 no hint", 429, h(), `{}`, provider.RateLimited, time.Time{}, ""},
		{"429 5h window", 429, h("anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", "1800003600"), `{}`, provider.QuotaExhausted, time.Unix(1800003600, 0), ""},
		{"429 7d window via unified reset", 429, h("anthropic-ratelimit-unified-7d-status", "rejected", "anthropic-ratelimit-unified-reset", "1800100000"), `{}`, provider.QuotaExhausted, time.Unix(1800100000, 0), ""},
		{"429 opus weekly header", 429, h("anthropic-ratelimit-unified-7d_oi-status", "rejected", "anthropic-ratelimit-unified-7d_oi-reset", "1800200000"), `{}`, provider.QuotaExhausted, time.Unix(1800200000, 0), "claude-opus-4-8"},
		{"429 opus weekly body", 429, h(), `{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your weekly usage limit for Opus"}}`, provider.QuotaExhausted, time.Time{}, "claude-opus-4-8"},
		{"429 fast mode", 429, h(), `{"error":{"message":"Usage credits are required for fast mode"}}`, provider.ClientError, time.Time{}, ""},
		{"529", 529, h(), `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, provider.Overloaded, time.Time{}, ""},
		{"401", 401, h(), `{}`, provider.Unavailable, time.Time{}, ""},
		{"402", 402, h(), `{}`, provider.Unavailable, time.Time{}, ""},
		{"402 billing_error", 402, h(), `{"type":"error","error":{"type":"billing_error","message":"out of credits"}}`, provider.Unavailable, time.Time{}, ""},
		{"400 billing_error", 400, h(), `{"type":"error","error":{"type":"billing_error","message":"out of credits"}}`, provider.Unavailable, time.Time{}, ""},
		{"403 org disabled", 403, h(), `{"error":{"message":"This organization has been disabled."}}`, provider.Unavailable, time.Time{}, ""},
		{"403 authentication_error", 403, h(), `{"type":"error","error":{"type":"authentication_error","message":"OAuth token revoked"}}`, provider.Unavailable, time.Time{}, ""},
		{"403 subscription lapsed", 403, h(), `{"error":{"type":"forbidden","message":"Request not allowed"}}`, provider.Unavailable, time.Time{}, ""},
		{"403 other", 403, h(), `{"error":{"type":"permission_error","message":"no access to model"}}`, provider.ClientError, time.Time{}, ""},
		// A permission_error that repeats a client-chosen model name full of
		// the words the old classifier looked for is still the request's.
		{"403 permission_error echoing the client", 403, h(), `{"error":{"type":"permission_error","message":"model organization-disabled-oauth not allowed"}}`, provider.ClientError, time.Time{}, ""},
		// Anthropic's real low-credit answer is shaped like a client's
		// mistake, and a validation error can repeat the request's text:
		// neither cools the account.
		{"400 low credit", 400, h(), `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`, provider.ClientError, time.Time{}, ""},
		{"400 org disabled text", 400, h(), `{"type":"error","error":{"type":"invalid_request_error","message":"This organization has been disabled."}}`, provider.ClientError, time.Time{}, ""},
		{"400 echoing the client", 400, h(), `{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content.0.text: credit balance is too low; organization has been disabled"}}`, provider.ClientError, time.Time{}, ""},
		{"400", 400, h(), `{"error":{"type":"invalid_request_error"}}`, provider.ClientError, time.Time{}, ""},
		{"500", 500, h(), `{}`, provider.ServerError, time.Time{}, ""},
		{"503", 503, h(), `{}`, provider.ServerError, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Classify(tt.status, tt.hdr, []byte(tt.body), "claude-opus-4-8", now)
			if v.Kind != tt.kind || !v.Until.Equal(tt.until) || v.Model != tt.model {
				t.Fatalf("got %+v", v)
			}
		})
	}
}

func TestBaseURLAndBeta(t *testing.T) {
	for in, want := range map[string]string{"": DefaultBaseURL, "https://x.y/": "https://x.y", "https://x.y/v1": "https://x.y", "https://x.y/v1/messages": "https://x.y", "https://x.y/api": "https://x.y/api"} {
		if got := BaseURL(in); got != want {
			t.Errorf("BaseURL(%q)=%q want %q", in, got, want)
		}
	}
	if got := MergeBeta("a,b", OAuthBeta); got != "a,b,"+OAuthBeta {
		t.Fatal(got)
	}
	if got := MergeBeta("a, "+OAuthBeta, OAuthBeta); got != "a, "+OAuthBeta {
		t.Fatal(got)
	}
	if got := MergeBeta("", OAuthBeta); got != OAuthBeta {
		t.Fatal(got)
	}
}

func TestStreamEventsAndErrorBody(t *testing.T) {
	var u provider.Usage
	if ClassifyEvent([]byte("message_start"), []byte(`{"message":{"usage":{"input_tokens":5,"cache_read_input_tokens":2,"output_tokens":1}}}`), &u) != provider.Preamble {
		t.Fatal("message_start")
	}
	if ClassifyEvent([]byte("message_delta"), []byte(`{"usage":{"output_tokens":9}}`), &u) != provider.Content || u.OutputTokens != 9 || u.InputTokens != 5 || u.CacheReadTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
	if ClassifyEvent(nil, []byte(`{"type":"message_stop"}`), &u) != provider.Terminal {
		t.Fatal("unnamed event by type")
	}
	if v := ClassifyStreamError([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"weekly opus limit, says the client"}}`), "m"); v.Kind != provider.ClientError || v.Model != "" {
		t.Fatalf("an invalid_request_error event repeating the client's words: %+v", v)
	}
	if v := ClassifyStreamError([]byte(`{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your weekly usage limit for Opus"}}`), "m"); v.Kind != provider.QuotaExhausted || v.Model != "m" {
		t.Fatalf("weekly opus rate limit event: %+v", v)
	}
	if v := ClassifyStreamError([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "m"); v.Kind != provider.Overloaded {
		t.Fatal(v)
	}
	if b := string(ErrorBody(413, "too \"big\"\n")); b != `{"type":"error","error":{"type":"request_too_large","message":"too \"big\"\n"}}` {
		t.Fatal(b)
	}
}

// Every time the upstream names is bounded to [1 s, 31 days]; nonsense is
// ignored (the default cooldown applies) and named in BadHint.
func TestClassifyBoundsTimeHints(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		status  int
		hdr     []string
		kind    provider.Kind
		until   time.Time
		wantBad string // prefix of BadHint; "" = none
	}{
		{"retry-after 1e300", 429, []string{"retry-after", "1e300"}, provider.RateLimited, time.Time{}, "retry-after=1e300"},
		{"retry-after +Inf", 429, []string{"retry-after", "+Inf"}, provider.RateLimited, time.Time{}, "retry-after=+Inf"},
		{"retry-after NaN", 429, []string{"retry-after", "NaN"}, provider.RateLimited, time.Time{}, "retry-after=NaN"},
		{"retry-after negative", 429, []string{"retry-after", "-30"}, provider.RateLimited, time.Time{}, "retry-after=-30"},
		{"retry-after 0", 429, []string{"retry-after", "0"}, provider.RateLimited, now.Add(provider.MinHint), ""},
		{"retry-after a year", 429, []string{"retry-after", "31536000"}, provider.RateLimited, now.Add(provider.MaxHint), ""},
		{"529 retry-after nonsense", 529, []string{"retry-after", "Infinity"}, provider.Overloaded, time.Time{}, "retry-after="},
		{"5h reset in year 2100", 429, []string{"anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", "4102444800"}, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"5h reset in milliseconds, far", 429, []string{"anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", "9223372036854775807"}, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"5h reset negative", 429, []string{"anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", "-1"}, provider.QuotaExhausted, time.Time{}, "anthropic-ratelimit-unified-5h-reset=-1"},
		{"7d reset garbage", 429, []string{"anthropic-ratelimit-unified-7d-status", "rejected", "anthropic-ratelimit-unified-7d-reset", "1e300"}, provider.QuotaExhausted, time.Time{}, "anthropic-ratelimit-unified-7d-reset=1e300"},
		{"7d reset past", 429, []string{"anthropic-ratelimit-unified-7d-status", "rejected", "anthropic-ratelimit-unified-7d-reset", "1700000000"}, provider.QuotaExhausted, now.Add(provider.MinHint), ""},
		{"opus reset far", 429, []string{"anthropic-ratelimit-unified-7d_oi-status", "rejected", "anthropic-ratelimit-unified-7d_oi-reset", "99999999999"}, provider.QuotaExhausted, now.Add(provider.MaxHint), ""},
		{"api reset far", 429, []string{"anthropic-ratelimit-tokens-reset", "2200-01-01T00:00:00Z"}, provider.RateLimited, now.Add(provider.MaxHint), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i < len(tt.hdr); i += 2 {
				h.Set(tt.hdr[i], tt.hdr[i+1])
			}
			v := Classify(tt.status, h, []byte(`{}`), "claude-opus-4-8", now)
			if v.Kind != tt.kind || !v.Until.Equal(tt.until) {
				t.Fatalf("got %v until %v, want %v until %v", v.Kind, v.Until, tt.kind, tt.until)
			}
			if (tt.wantBad == "") != (v.BadHint == "") || !strings.HasPrefix(v.BadHint, tt.wantBad) {
				t.Fatalf("BadHint = %q, want prefix %q", v.BadHint, tt.wantBad)
			}
		})
	}
}

// Cache writes keep their total in CacheCreationTokens and the 1-hour part
// apart, from JSON answers and from both stream events that carry usage.
func TestUsageOneHourCacheWrites(t *testing.T) {
	const usage = `{"input_tokens":10,"cache_creation_input_tokens":600,"cache_read_input_tokens":70,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":400},"output_tokens":%d}`
	want := provider.Usage{InputTokens: 10, OutputTokens: 9, CacheCreationTokens: 600, CacheCreation1hTokens: 400, CacheReadTokens: 70}
	u, ok := ParseUsage([]byte(`{"type":"message","usage":` + fmt.Sprintf(usage, 9) + `}`))
	if !ok || u != want {
		t.Fatalf("JSON: %+v; want %+v", u, want)
	}
	var s provider.Usage
	ClassifyEvent([]byte("message_start"), []byte(`{"type":"message_start","message":{"usage":`+fmt.Sprintf(usage, 1)+`}}`), &s)
	if s.CacheCreation1hTokens != 400 || s.CacheCreationTokens != 600 {
		t.Fatalf("message_start: %+v", s)
	}
	ClassifyEvent([]byte("message_delta"), []byte(`{"type":"message_delta","usage":`+fmt.Sprintf(usage, 9)+`}`), &s)
	if s != want {
		t.Fatalf("stream: %+v; want %+v", s, want)
	}
	// Without the split (older answers) every write is a 5-minute one.
	if u, _ := ParseUsage([]byte(`{"usage":{"cache_creation_input_tokens":600}}`)); u.CacheCreation1hTokens != 0 || u.CacheCreationTokens != 600 {
		t.Fatalf("no split: %+v", u)
	}
}
