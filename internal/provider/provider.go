// Package provider holds the small vocabulary that every upstream API package
// (anthropic, openai, gemini) speaks: token usage and the verdict on an
// upstream outcome. It has no knowledge of accounts, pools or storage.
package provider

import (
	"time"
	"unicode/utf8"
)

// Usage is the token accounting of one request, as the upstream reported it.
type Usage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// CacheCreationTokens is every cache write; CacheCreation1hTokens is
	// the part written for one hour (Anthropic's
	// cache_creation.ephemeral_1h_input_tokens), priced higher than the
	// 5-minute rest.
	CacheCreationTokens   int64 `json:"cache_creation_tokens"`
	CacheCreation1hTokens int64 `json:"cache_creation_1h_tokens,omitempty"`
	CacheReadTokens       int64 `json:"cache_read_tokens"`
}

// IsZero reports whether no token count was seen.
func (u Usage) IsZero() bool {
	return u.InputTokens == 0 && u.OutputTokens == 0 && u.CacheCreationTokens == 0 && u.CacheReadTokens == 0
}

// Merge takes the larger of each counter. Upstreams repeat and grow their
// counters across a stream (message_start, then cumulative message_delta), so
// the maximum is the final figure.
func (u *Usage) Merge(o Usage) {
	if o.InputTokens > u.InputTokens {
		u.InputTokens = o.InputTokens
	}
	if o.OutputTokens > u.OutputTokens {
		u.OutputTokens = o.OutputTokens
	}
	if o.CacheCreationTokens > u.CacheCreationTokens {
		u.CacheCreationTokens = o.CacheCreationTokens
	}
	if o.CacheReadTokens > u.CacheReadTokens {
		u.CacheReadTokens = o.CacheReadTokens
	}
	if o.CacheCreation1hTokens > u.CacheCreation1hTokens {
		u.CacheCreation1hTokens = o.CacheCreation1hTokens
	}
}

// Kind says what an upstream outcome means for the account that produced it.
type Kind int

const (
	// OK is a success: the account is healthy.
	OK Kind = iota
	// ClientError is the caller's fault (400, 404, 413...): no cooldown, no failover.
	ClientError
	// RateLimited is a short-lived limit (429): cool down until the hinted time.
	RateLimited
	// QuotaExhausted is a long window (5h/7d subscription limit, daily quota):
	// cool down until the reset the upstream named.
	QuotaExhausted
	// Overloaded is the provider saying it is overloaded (529): cool down briefly.
	Overloaded
	// Unavailable is a revoked, disabled or unpaid account (401/403/402): cool
	// down for unavailable_cooldown_seconds.
	Unavailable
	// ServerError is a 5xx or a malformed answer: short cooldown, fail over.
	ServerError
	// Network is a connect, TLS, proxy or timeout failure: short cooldown, fail over.
	Network
	// TokenInvalid is an OAuth refresh token the provider rejected
	// (invalid_grant): the account needs a new login.
	TokenInvalid
)

var kindNames = [...]string{"ok", "client_error", "rate_limited", "quota_exhausted", "overloaded", "unavailable", "server_error", "network", "token_invalid"}

// String returns the stable snake_case name stored in the database and shown by the CLI.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind is the inverse of Kind.String; unknown names map to ServerError.
func ParseKind(s string) Kind {
	for i, n := range kindNames {
		if n == s {
			return Kind(i)
		}
	}
	return ServerError
}

// Failover reports whether a request that met this outcome should be tried on
// another account.
func (k Kind) Failover() bool {
	switch k {
	case OK, ClientError:
		return false
	}
	return true
}

// Verdict is a provider's reading of one upstream outcome.
type Verdict struct {
	Kind Kind
	// Until is when the account (or model) may be used again; zero means "use
	// the default cooldown for Kind".
	Until time.Time
	// Model, when set, scopes the cooldown to that model on the account (a
	// per-model weekly limit); other models stay usable.
	Model string
	// Reason is a short human explanation with no secrets in it.
	Reason string
	// BadHint, when set, names an upstream time hint that made no sense
	// (negative, NaN, infinite, too large for a Duration) and was ignored, so
	// Until fell back to the default; the scheduler logs it. See HintDelay.
	BadHint string
}

// EventClass is what one SSE event of a response stream means for failover.
type EventClass int

const (
	// Preamble events (message_start, ping, response.created) carry no answer
	// yet: on failover the next account's preamble is dropped, so a client
	// that already received one sees a single coherent stream.
	Preamble EventClass = iota
	// Content commits the response to the account that sent it.
	Content
	// ErrorEvent is an error reported inside a 200 stream.
	ErrorEvent
	// Terminal marks a complete stream (message_stop, response.completed).
	Terminal
)

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does, so the result is always valid JSON (an
// upstream's error text may hold any bytes).
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// LooksLikeJSONObject is the relay's cheap check of a body it passes through:
// a JSON object, not truncated ('{' ... '}'). A full validation costs more
// than everything else the relay does to a 100 KB request; a body that passes
// this check but is still malformed gets the provider's own 400.
func LooksLikeJSONObject(b []byte) bool {
	i, j := 0, len(b)-1
	for i <= j && isSpace(b[i]) {
		i++
	}
	for j >= i && isSpace(b[j]) {
		j--
	}
	return i < j && b[i] == '{' && b[j] == '}'
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
