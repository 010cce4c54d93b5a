package gemini

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	// Quota days end at midnight Pacific time; embed the zone database so
	// that holds on hosts without tzdata.
	_ "time/tzdata"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

const (
	// longRetry is the suggested wait past which Gemini CLI stops treating a
	// limit as transient; a QUOTA_EXHAUSTED hint at least this long is
	// believed instead of waiting for midnight.
	longRetry = 5 * time.Minute
	// maxReasonLen bounds Verdict.Reason.
	maxReasonLen = 200
)

var (
	// retryInRE matches "Please retry in 32.86s." in public-API 429 messages.
	retryInRE = regexp.MustCompile(`(?i)retry in ([0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))\b`)
	// resetAfterRE matches "Your quota will reset after 3h14m2s." in Code
	// Assist messages.
	resetAfterRE = regexp.MustCompile(`(?i)reset after ((?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+)`)
	// secretRE matches credentials that upstream messages are known to echo
	// (CONSUMER_SUSPENDED quotes "api_key:AIza..."), so Reason never carries
	// them.
	secretRE = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{10,}|ya29\.[0-9A-Za-z_\-.]+|1//[0-9A-Za-z_\-]{10,}|(?i:api_key:)[^\s'",]+|(?i:bearer)\s+[0-9A-Za-z._~+/=\-]{8,}`)
	// pacific is loaded once; it is nil only if the embedded zone database
	// somehow lacks the zone.
	pacific = sync.OnceValue(func() *time.Location {
		loc, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			return nil
		}
		return loc
	})
)

// rpcError is the part of a google.rpc error that classification reads.
type rpcError struct {
	code    int
	status  string
	message string
	// reason and model come from ErrorInfo; model may also come from a
	// QuotaFailure violation's quotaDimensions.
	reason string
	model  string
	// retryDelay is RetryInfo.retryDelay; zero when absent or unparsable.
	retryDelay time.Duration
	// resetAt and resetDelay are Code Assist's ErrorInfo metadata
	// quotaResetTimeStamp and quotaResetDelay.
	resetAt    time.Time
	resetDelay time.Duration
	// daily and perMinute say a violated quota is per day or per minute.
	daily     bool
	perMinute bool
	// bad names the first time hint that made no sense (Verdict.BadHint).
	bad string
}

func (r *rpcError) note(name, v string) {
	if r.bad == "" {
		r.bad = provider.BadHint(name, v)
	}
}

// Classify reads a non-2xx answer from the public Gemini API or Code Assist
// and says what it means for the account that produced it. body is the
// google.rpc error {"error":{"code","message","status","details":[...]}}, or
// a one-element array of it (what streamGenerateContent without alt=sse
// returns); anything else is classified by status alone.
//
//   - An ErrorInfo reason that names the credential or project (API_KEY_*,
//     ACCESS_TOKEN_*, SERVICE_DISABLED, CONSUMER_SUSPENDED, BILLING_DISABLED,
//     VALIDATION_REQUIRED, IAM_PERMISSION_DENIED...) -> Unavailable, whatever
//     the status (API_KEY_INVALID arrives as a 400).
//   - MODEL_CAPACITY_EXHAUSTED -> Overloaded; the capacity is the model's, so
//     the verdict is scoped to it when named.
//   - QUOTA_EXHAUSTED, INSUFFICIENT_G1_CREDITS_BALANCE, or a QuotaFailure
//     violation whose quotaId says PerDay/Daily -> QuotaExhausted, scoped to
//     the model the error names. Until is Code Assist's quotaResetTimeStamp
//     or quotaResetDelay or "reset after X" when given; else, for a non-daily
//     QUOTA_EXHAUSTED, a RetryInfo of at least five minutes; else the next
//     midnight in America/Los_Angeles, when Google's daily quotas reset.
//     (The public API attaches a RetryInfo of seconds even to daily quotas; it
//     is ignored for them.) Credits have no daily reset: Until stays zero.
//   - RATE_LIMIT_EXCEEDED, RESOURCE_QUOTA_EXCEEDED, or any other 429 ->
//     RateLimited until now plus RetryInfo.retryDelay, else the Retry-After
//     header, else "Please retry in Xs"/"reset after X" in the message, else
//     60s for a per-minute quota, else zero (the default cooldown). Scoped to
//     the model when the violated quota names one.
//   - 503 -> Overloaded (Until from the same hints).
//   - 401 -> Unavailable.
//   - 403 -> Unavailable, except a reason-less PERMISSION_DENIED about a
//     resource the request names ("You do not have permission to access the
//     File x or it may not exist", "CachedContent not found (or permission
//     denied)", tunedModels/, files/, cachedContents/, corpora/): that is the
//     caller's reference, another account would not have it either, so
//     ClientError.
//   - 400 (without one of the reasons above), 404, 413 and other 4xx ->
//     ClientError; 408 and 499 -> ServerError.
//   - Other 5xx (and anything else) -> ServerError, with Retry-After if sent.
//
// The message decides nothing that could cool an account: Google's
// validation errors repeat the request's own field names and text, so a
// client could write "API key not valid" or "enable billing" there. Only the
// status, the google.rpc status and the ErrorInfo reason (which the
// upstream sets, never the request) do. So a 400 FAILED_PRECONDITION "User
// location is not supported" (no reason) passes through uncooled: the same
// status also answers requests for a file that is not ready yet. The message
// is read only where it cannot cool: a 429's retry hint, and a 403 naming a
// resource of the request, which makes it the client's.
//
// A 2xx status is OK. Reason is built from the status, the ErrorInfo reason
// and the upstream message with credentials redacted, at most 200 bytes.
func Classify(status int, h http.Header, body []byte, now time.Time) provider.Verdict {
	if status >= 200 && status < 300 {
		return provider.Verdict{Kind: provider.OK}
	}
	return classify(status, h, parseRPCError(errorObject(body)), now)
}

// StreamEventError reports whether an SSE data payload (a bare or Code
// Assist-wrapped response, with or without a leading "data:") is an error
// object {"error":{...}} rather than a response, and if so classifies it as
// Classify would, taking the HTTP status from error.code (or, failing that,
// from error.status; 500 when neither is usable).
func StreamEventError(data []byte, now time.Time) (provider.Verdict, bool) {
	e := errorObject(data)
	if !e.IsObject() {
		return provider.Verdict{}, false
	}
	r := parseRPCError(e)
	code := r.code
	if code < 100 || code > 599 {
		code = codeForStatus(r.status)
	}
	return classify(code, nil, r, now), true
}

// errorObject finds the google.rpc error object in a body or SSE payload.
// The result owns its memory (GetBytes copies), so strings from it may be
// kept.
func errorObject(body []byte) gjson.Result {
	b := bytes.TrimSpace(body)
	if rest, ok := bytes.CutPrefix(b, []byte("data:")); ok {
		b = bytes.TrimSpace(rest)
	}
	if len(b) > 0 && b[0] == '[' {
		return gjson.GetBytes(b, "0.error")
	}
	e := gjson.GetBytes(b, "error")
	if !e.Exists() {
		e = gjson.GetBytes(b, "response.error")
	}
	return e
}

// parseRPCError reads the fields classification needs from an error object.
func parseRPCError(e gjson.Result) rpcError {
	var r rpcError
	if e.Type == gjson.String {
		r.message = e.Str
		return r
	}
	if !e.IsObject() {
		return r
	}
	r.code = int(e.Get("code").Int())
	r.status = e.Get("status").String()
	r.message = e.Get("message").String()
	var infoModel, dailyModel, anyModel string
	e.Get("details").ForEach(func(_, d gjson.Result) bool {
		typ := d.Get("@type").Str
		switch typ[strings.LastIndexByte(typ, '/')+1:] {
		case "google.rpc.ErrorInfo":
			if r.reason == "" {
				r.reason = d.Get("reason").String()
			}
			md := d.Get("metadata")
			if m := md.Get("model").String(); m != "" && infoModel == "" {
				infoModel = m
			}
			if ql := md.Get("quota_limit").String(); ql != "" {
				r.daily = r.daily || isDaily(ql)
				r.perMinute = r.perMinute || strings.Contains(ql, "PerMinute")
			}
			if ts := md.Get("quotaResetTimeStamp").String(); ts != "" {
				if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
					r.resetAt = t
				} else {
					r.note("quotaResetTimeStamp", ts)
				}
			}
			r.resetDelay = r.delay("quotaResetDelay", md.Get("quotaResetDelay"))
		case "google.rpc.RetryInfo":
			r.retryDelay = r.delay("retryDelay", d.Get("retryDelay"))
		case "google.rpc.QuotaFailure":
			d.Get("violations").ForEach(func(_, v gjson.Result) bool {
				id := v.Get("quotaId").String()
				m := v.Get("quotaDimensions.model").String()
				if isDaily(id) {
					r.daily = true
					if dailyModel == "" {
						dailyModel = m
					}
				}
				if strings.Contains(id, "PerMinute") {
					r.perMinute = true
				}
				if anyModel == "" {
					anyModel = m
				}
				return true
			})
		}
		return true
	})
	for _, m := range []string{dailyModel, infoModel, anyModel} {
		m = strings.TrimPrefix(m, "models/")
		if ValidModel(m) {
			r.model = m
			break
		}
	}
	return r
}

// isDaily reports whether a quota id or limit name is a per-day quota, as
// Gemini CLI decides it.
func isDaily(id string) bool {
	return strings.Contains(id, "PerDay") || strings.Contains(id, "Daily")
}

// delay reads a google.protobuf.Duration: the JSON form "32s", "1.5s",
// "900ms", or the object form {"seconds":32,"nanos":5e8}, bounded to
// [provider.MinHint, provider.MaxHint]. It returns 0 when v is absent and
// when it is unusable (negative, NaN, infinite, too large, not a
// duration), noting the latter.
func (r *rpcError) delay(name string, v gjson.Result) time.Duration {
	var (
		d  time.Duration
		ok bool
	)
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return 0
	case v.Type == gjson.String:
		// ParseDuration refuses what a Duration cannot hold.
		pd, err := time.ParseDuration(strings.TrimSpace(v.Str))
		d, ok = provider.ClampHint(pd), err == nil && pd >= 0
	case v.IsObject():
		nanos := v.Get("nanos").Float()
		d, ok = provider.HintDelay(v.Get("seconds").Float()+nanos/1e9, time.Second)
		ok = ok && nanos > -1e9 && nanos < 1e9
	}
	if !ok {
		r.note(name, v.Raw)
		return 0
	}
	return d
}

// classify turns a parsed error and its HTTP status into a verdict.
func classify(status int, h http.Header, r rpcError, now time.Time) provider.Verdict {
	v := provider.Verdict{Reason: reasonText(status, r)}
	switch {
	case accountReason(r.reason):
		v.Kind = provider.Unavailable
	case r.reason == "MODEL_CAPACITY_EXHAUSTED":
		v.Kind, v.Model, v.Until = provider.Overloaded, r.model, retryHint(&r, h, now)
	case r.reason == "INSUFFICIENT_G1_CREDITS_BALANCE":
		v.Kind = provider.QuotaExhausted
	case r.reason == "QUOTA_EXHAUSTED" || r.daily:
		v.Kind, v.Model, v.Until = provider.QuotaExhausted, r.model, quotaReset(r, now)
	case status == http.StatusTooManyRequests || r.reason == "RATE_LIMIT_EXCEEDED" || r.reason == "RESOURCE_QUOTA_EXCEEDED":
		v.Kind, v.Model, v.Until = provider.RateLimited, r.model, retryHint(&r, h, now)
		if v.Until.IsZero() && r.perMinute {
			v.Until = now.Add(time.Minute)
		}
	case status == http.StatusServiceUnavailable:
		v.Kind, v.Until = provider.Overloaded, retryHint(&r, h, now)
	case status == http.StatusUnauthorized:
		v.Kind = provider.Unavailable
	case status == http.StatusForbidden:
		v.Kind = provider.Unavailable
		if r.reason == "" && aboutRequestedResource(r.message) {
			v.Kind = provider.ClientError
		}
	case status == http.StatusRequestTimeout || status == 499:
		v.Kind = provider.ServerError
	case status >= 400 && status < 500:
		v.Kind = provider.ClientError
	default:
		v.Kind, v.Until = provider.ServerError, headerHint(&r, h, now)
	}
	v.BadHint = r.bad
	return v
}

// accountReason reports whether an ErrorInfo reason is about the credential,
// project or account rather than the request.
func accountReason(reason string) bool {
	if strings.HasPrefix(reason, "API_KEY_") || strings.HasPrefix(reason, "ACCESS_TOKEN_") {
		return true
	}
	switch reason {
	case "SERVICE_DISABLED", "SERVICE_NOT_VISIBLE", "CONSUMER_SUSPENDED", "CONSUMER_INVALID",
		"BILLING_DISABLED", "ACCOUNT_STATE_INVALID", "CREDENTIALS_MISSING", "RESOURCE_PROJECT_INVALID",
		"USER_BLOCKED_BY_ADMIN", "GCP_SUSPENDED", "ORG_RESTRICTION_VIOLATION", "VALIDATION_REQUIRED",
		"IAM_PERMISSION_DENIED", "SECURITY_POLICY_VIOLATED", "LOCATION_POLICY_VIOLATED":
		return true
	}
	return false
}

// aboutRequestedResource reports whether a PERMISSION_DENIED message is about
// a file, cached content, tuned model or corpus the request refers to.
func aboutRequestedResource(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"may not exist", "(or permission denied)", "files/", "cachedcontents/", "tunedmodels/", "corpora/"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// quotaReset decides when an exhausted quota comes back. A reset timestamp
// already past gives way to the other hints.
func quotaReset(r rpcError, now time.Time) time.Time {
	switch {
	case r.resetAt.After(now):
		return provider.HintTime(r.resetAt, now)
	case r.resetDelay > 0:
		return now.Add(r.resetDelay)
	}
	if d := messageDelay(resetAfterRE, r.message); d > 0 {
		return now.Add(d)
	}
	if !r.daily && r.retryDelay >= longRetry {
		return now.Add(r.retryDelay)
	}
	return nextPacificMidnight(now)
}

// nextPacificMidnight is the next 00:00 in America/Los_Angeles after now.
func nextPacificMidnight(now time.Time) time.Time {
	loc := pacific()
	if loc == nil {
		return now.Add(24 * time.Hour)
	}
	t := now.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
}

// retryHint is the first of RetryInfo, Retry-After and a delay named in the
// message, as an absolute time; zero when there is none.
func retryHint(r *rpcError, h http.Header, now time.Time) time.Time {
	if r.retryDelay > 0 {
		return now.Add(r.retryDelay)
	}
	if t := headerHint(r, h, now); !t.IsZero() {
		return t
	}
	if d := messageDelay(retryInRE, r.message); d > 0 {
		return now.Add(d)
	}
	if d := messageDelay(resetAfterRE, r.message); d > 0 {
		return now.Add(d)
	}
	return time.Time{}
}

// headerHint reads Retry-After as seconds or an HTTP date (see
// provider.ParseRetryAfter), noting a nonsensical one in r.
func headerHint(r *rpcError, h http.Header, now time.Time) time.Time {
	v := h.Get("Retry-After")
	t, ok := provider.ParseRetryAfter(v, now)
	if !ok {
		r.note("Retry-After", v)
	}
	return t
}

// messageDelay extracts a duration captured by re from msg, bounded to
// [provider.MinHint, provider.MaxHint]; 0 when there is none.
func messageDelay(re *regexp.Regexp, msg string) time.Duration {
	m := re.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	// ParseDuration refuses what a Duration cannot hold.
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return 0
	}
	return provider.ClampHint(d)
}

// reasonText is a short summary of an upstream error from its structured
// fields only: the HTTP status, the google.rpc status and the ErrorInfo
// reason. The message is left out: it can repeat the request (a model or
// file name, the client's text), and a Reason is logged, stored with the
// cooldown, shown by accounts list and the dashboard, and sent to alert
// webhooks, where a client's "<!channel>" or link must not arrive.
func reasonText(status int, r rpcError) string {
	var b strings.Builder
	b.WriteString("gemini ")
	b.WriteString(strconv.Itoa(status))
	st := r.status
	if st == "" || !isUpperIdent(st) {
		st = StatusName(status)
	}
	b.WriteByte(' ')
	b.WriteString(st)
	if r.reason != "" && isUpperIdent(r.reason) {
		b.WriteString(" (")
		b.WriteString(r.reason)
		b.WriteByte(')')
	}
	return truncate(b.String(), maxReasonLen)
}

// isUpperIdent reports whether s looks like an enum name (RESOURCE_EXHAUSTED),
// so odd upstream values are not pasted into Reason.
func isUpperIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// sanitize redacts credentials and folds control characters and runs of
// whitespace into single spaces.
func sanitize(msg string) string {
	if msg == "" {
		return ""
	}
	if len(msg) > 4*maxReasonLen {
		msg = truncate(msg, 4*maxReasonLen)
	}
	msg = provider.RedactSecrets(secretRE.ReplaceAllString(msg, provider.Redacted))
	var b strings.Builder
	b.Grow(len(msg))
	space := false
	for _, c := range msg {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(c)
	}
	return b.String()
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// ErrorBody returns a Google-shaped error body
// {"error":{"code":code,"message":msg,"status":status}}, as clients of both
// the public API and Code Assist parse it. An empty status is filled in with
// StatusName(code).
func ErrorBody(code int, status, msg string) []byte {
	if status == "" {
		status = StatusName(code)
	}
	type rpcStatus struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	}
	b, err := json.Marshal(struct {
		Error rpcStatus `json:"error"`
	}{rpcStatus{Code: code, Message: msg, Status: status}})
	if err != nil { // unreachable: every field is a plain string or int
		return []byte(`{"error":{"code":500,"message":"internal error","status":"INTERNAL"}}`)
	}
	return b
}

// StatusName maps an HTTP status to the google.rpc.Code name Google pairs
// with it (google/rpc/code.proto). 413 has no pairing there; it is reported
// as INVALID_ARGUMENT, the code Google uses for oversized requests, rather
// than RESOURCE_EXHAUSTED, which clients read as a quota error. Unlisted
// 4xx and 5xx codes map to FAILED_PRECONDITION and INTERNAL, 2xx to OK, and
// anything else to UNKNOWN.
func StatusName(code int) string {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong,
		http.StatusRequestHeaderFieldsTooLarge, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusPaymentRequired, http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusPreconditionFailed:
		return "FAILED_PRECONDITION"
	case http.StatusRequestedRangeNotSatisfiable:
		return "OUT_OF_RANGE"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	switch {
	case code >= 200 && code < 300:
		return "OK"
	case code >= 400 && code < 500:
		return "FAILED_PRECONDITION"
	case code >= 500 && code < 600:
		return "INTERNAL"
	}
	return "UNKNOWN"
}

// codeForStatus is the inverse of StatusName for the canonical pairings; it
// returns 500 for names it does not know.
func codeForStatus(status string) int {
	switch status {
	case "INVALID_ARGUMENT", "OUT_OF_RANGE":
		return http.StatusBadRequest
	case "FAILED_PRECONDITION":
		return http.StatusBadRequest
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	case "ABORTED", "ALREADY_EXISTS":
		return http.StatusConflict
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "CANCELLED":
		return 499
	case "UNIMPLEMENTED":
		return http.StatusNotImplemented
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
