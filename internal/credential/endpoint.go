package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ccrelay/ccrelay/internal/provider"
)

const (
	// maxTokenResponse bounds what is read from the token endpoint.
	maxTokenResponse = 1 << 20
	// maxDescription bounds the provider's error_description in messages.
	maxDescription = 200
	// defaultLifetime is assumed when an answer has no expires_in.
	defaultLifetime = time.Hour
	// minRateLimit and maxRateLimit clamp a 429's Retry-After.
	minRateLimit = 5 * time.Second
	maxRateLimit = 5 * time.Minute
)

// secretRE matches token shapes providers are known to echo, as a second line
// of defence behind replacing the exact secrets this source knows.
var secretRE = regexp.MustCompile(`sk-ant-[0-9A-Za-z]+-[0-9A-Za-z_\-]{8,}|ya29\.[0-9A-Za-z_\-.]+|1//[0-9A-Za-z_\-]{10,}|GOCSPX-[0-9A-Za-z_\-]+|(?i:bearer)\s+[0-9A-Za-z._~+/=\-]{8,}`)

// codeRE is what a provider's "error" code may look like; anything else is
// dropped rather than echoed.
var codeRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// tokenResponse is the part of a successful answer that matters.
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	// IDToken is sent by OpenID providers (OpenAI: it names the ChatGPT
	// account); see OAuthConfig.OnIDToken.
	IDToken string `json:"id_token"`
}

// lifetime reads expires_in, which some servers send as a string, bounded to
// [provider.MinHint, provider.MaxHint]. Absent, it is defaultLifetime; bad
// is set (and the lifetime is defaultLifetime) when it is present but makes
// no sense: zero, negative, NaN, infinite, too large for a Duration, not a
// number.
func (r *tokenResponse) lifetime() (d time.Duration, bad string) {
	raw := strings.TrimSpace(string(r.ExpiresIn))
	if raw == "" || raw == "null" {
		return defaultLifetime, ""
	}
	n, err := strconv.ParseFloat(strings.Trim(raw, `"`), 64)
	if err == nil && n > 0 {
		if d, ok := provider.HintDelay(n, time.Second); ok {
			return d, ""
		}
	}
	return defaultLifetime, provider.BadHint("expires_in", raw)
}

// errorBody is an OAuth error answer. Anthropic's API sometimes answers in
// its own shape, {"error":{"type":...,"message":...}}, so error is raw.
type errorBody struct {
	Error       json.RawMessage `json:"error"`
	Description string          `json:"error_description"`
	Message     string          `json:"message"`
}

// parse extracts the error code and description from an error answer.
func (b errorBody) parse() (code, desc string) {
	desc = b.Description
	if desc == "" {
		desc = b.Message
	}
	var s string
	if json.Unmarshal(b.Error, &s) == nil {
		return s, desc
	}
	var obj struct {
		Type    string `json:"type"`
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b.Error, &obj) == nil {
		code = obj.Type
		if code == "" {
			code = obj.Status
		}
		if desc == "" {
			desc = obj.Message
		}
	}
	return code, desc
}

// post performs one refresh_token grant with rt. The returned error is
// already scrubbed of every secret this source knows.
func (o *OAuth) post(ctx context.Context, rt string) (*tokenResponse, *RefreshError) {
	var (
		body  []byte
		ctype string
	)
	if o.cfg.Type.Refresh.Form {
		v := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {rt},
			"client_id":     {o.cfg.ClientID},
		}
		if o.cfg.ClientSecret != "" {
			v.Set("client_secret", o.cfg.ClientSecret)
		}
		if o.cfg.Scope != "" {
			v.Set("scope", o.cfg.Scope)
		}
		body, ctype = []byte(v.Encode()), "application/x-www-form-urlencoded"
	} else {
		var err error
		body, err = json.Marshal(struct {
			GrantType    string `json:"grant_type"`
			RefreshToken string `json:"refresh_token"`
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret,omitempty"`
			Scope        string `json:"scope,omitempty"`
		}{"refresh_token", rt, o.cfg.ClientID, o.cfg.ClientSecret, o.cfg.Scope})
		if err != nil {
			return nil, &RefreshError{Kind: provider.ServerError, Msg: "encode token request: " + err.Error()}
		}
		ctype = "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.cfg.TokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, &RefreshError{Kind: provider.ServerError, Msg: o.scrub("build token request: " + err.Error()), cause: err}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ccrelay")

	resp, err := o.hc.Do(req)
	if err != nil {
		return nil, &RefreshError{Kind: provider.Network, Msg: o.scrub("token endpoint: " + err.Error()), cause: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, &RefreshError{Kind: provider.Network, Msg: o.scrub(fmt.Sprintf("read token response (HTTP %d): %v", resp.StatusCode, err)), cause: err}
	}
	if len(data) > maxTokenResponse {
		return nil, &RefreshError{Kind: provider.ServerError, Msg: fmt.Sprintf("token endpoint: HTTP %d: response larger than %d bytes", resp.StatusCode, maxTokenResponse)}
	}

	if resp.StatusCode == http.StatusOK {
		var tr tokenResponse
		if err := json.Unmarshal(data, &tr); err != nil {
			// Deliberately not echoing the body or the decoder's message: a
			// 200 answer is full of tokens.
			return nil, &RefreshError{Kind: provider.ServerError, Msg: "token endpoint: HTTP 200 with a malformed JSON body"}
		}
		if tr.AccessToken == "" {
			return nil, &RefreshError{Kind: provider.ServerError, Msg: "token endpoint: HTTP 200 without an access_token"}
		}
		return &tr, nil
	}

	var eb errorBody
	_ = json.Unmarshal(data, &eb) // a non-JSON error page just has no code
	code, desc := eb.parse()
	if !codeRE.MatchString(code) {
		code = ""
	}
	msg := fmt.Sprintf("token endpoint: HTTP %d", resp.StatusCode)
	if code != "" {
		msg += ": " + code
	}
	if desc = o.scrub(desc); desc != "" {
		msg += ": " + desc
	}
	e := &RefreshError{Msg: msg}
	switch {
	case code == "invalid_grant" && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized):
		e.Kind = provider.TokenInvalid
		e.Msg = fmt.Sprintf("refresh token rejected (%s); %s", msg, o.loginHint())
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Kind = provider.RateLimited
		e.Until = o.now().Add(retryAfter(resp.Header, o.now()))
	case resp.StatusCode >= 500:
		e.Kind = provider.ServerError
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Kind = provider.Unavailable
	default:
		// 3xx (redirects are not followed: the body holds the refresh token),
		// 404 (a moved endpoint) and other refusals: short cooldown, fail over.
		e.Kind = provider.ServerError
	}
	return nil, e
}

// retryAfter reads Retry-After-Ms or Retry-After (seconds or an HTTP date),
// clamped to [minRateLimit, maxRateLimit]; absent or nonsense (negative,
// NaN, infinite, too large), it is minRateLimit.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil {
			d, _ = provider.HintDelay(ms, time.Millisecond)
		}
	}
	if t, _ := provider.ParseRetryAfter(h.Get("Retry-After"), now); d == 0 && !t.IsZero() {
		d = t.Sub(now)
	}
	return min(max(d, minRateLimit), maxRateLimit)
}

// scrub removes every secret this source knows, and anything shaped like a
// token, from text that may come from the provider or a transport error; it
// also folds control characters and bounds the length.
func (o *OAuth) scrub(text string) string {
	if text == "" {
		return ""
	}
	o.mu.Lock()
	secrets := []string{o.cfg.ConfigRefreshToken, o.cfg.ClientSecret, o.refreshTok, o.access, o.rejected}
	secrets = append(secrets, o.spent...)
	o.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	text = provider.RedactSecrets(secretRE.ReplaceAllString(text, provider.Redacted))
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(text) > maxDescription {
		cut := maxDescription
		for cut > 0 && !utf8Start(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
}

// utf8Start reports whether b begins a UTF-8 sequence (so a cut there keeps
// the text valid).
func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// noRedirect stops the client at a redirect: following one would resend the
// refresh token in the body to wherever the Location points.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
