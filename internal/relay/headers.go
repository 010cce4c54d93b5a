package relay

import (
	"net/http"
	"strings"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// Headers pass by allow-list, both ways: what the real clients send and the
// upstream needs (anthropic-*, x-stainless-*, x-app, user agent, session and
// Codex headers), and what clients read back (rate limits, request ids,
// content type). Everything else is dropped: a client's OpenAI-Organization
// must not choose which organization the relay's key bills, and an upstream's
// organization id is not the client's business.

// headerList is a set of header names (case-insensitive) and name prefixes.
// It is built once: a request's header is checked with one map lookup (keys
// of an http.Header are canonical already) and, failing that, the prefixes.
type headerList struct {
	names    map[string]bool // canonical form
	prefixes []string
}

func newHeaderList(names, prefixes []string) *headerList {
	l := &headerList{names: make(map[string]bool, len(names)), prefixes: prefixes}
	for _, n := range names {
		l.names[http.CanonicalHeaderKey(n)] = true
	}
	return l
}

func (l *headerList) allows(k string) bool {
	if l.names[k] {
		return true
	}
	for _, p := range l.prefixes {
		if len(k) >= len(p) && strings.EqualFold(k[:len(p)], p) {
			return true
		}
	}
	// A key set by hand, not canonical (Go leaves some as sent).
	return l.names[http.CanonicalHeaderKey(k)]
}

// commonRequestHeaders are sent by every client and needed by every upstream.
var commonRequestHeaders = []string{"Accept", "Accept-Language", "Content-Type", "User-Agent", "X-Client-Request-Id"}

// claudeRequestHeaders go to Anthropic: the Anthropic SDKs' and Claude
// Code's headers (anthropic-version, anthropic-beta, x-stainless-*, x-app,
// the session id header).
var claudeRequestHeaders = newHeaderList(
	append([]string{"X-App", "X-Claude-Code-Session-Id"}, commonRequestHeaders...),
	[]string{"Anthropic-", "X-Stainless-"})

// openaiRequestHeaders go to the Responses API: the OpenAI SDKs' and Codex
// CLI's headers (session_id, originator, version, x-codex-*, OpenAI-Beta),
// never OpenAI-Organization or OpenAI-Project.
var openaiRequestHeaders = newHeaderList(
	append([]string{
		"Session_id", "Session-Id", "Conversation_id", "Conversation-Id", "Originator", "Version",
		"Openai-Beta", "X-Openai-Subagent", "Thread-Id",
	}, commonRequestHeaders...),
	[]string{"X-Codex-", "X-Stainless-"})

// geminiRequestHeaders go to Google: the genai SDKs' and Gemini CLI's
// headers, never X-Goog-User-Project (it picks whom Google bills).
var geminiRequestHeaders = newHeaderList(append([]string{"X-Goog-Api-Client"}, commonRequestHeaders...), nil)

// responseHeaders reach the client from any upstream.
var responseHeaders = newHeaderList([]string{
	"Content-Type", "Retry-After", "Request-Id", "X-Request-Id", "Openai-Processing-Ms", "Openai-Version",
	"X-Models-Etag", "Cache-Control",
}, []string{"Anthropic-Ratelimit-", "X-Ratelimit-", "X-Codex-"})

// copyRequestHeader copies the client's headers that l allows upstream.
// Credentials never pass (the account sets its own), whatever l says.
func copyRequestHeader(dst, src http.Header, l *headerList) {
	for k, vv := range src {
		if l.allows(k) {
			dst[k] = vv
		}
	}
}

// copyResponseHeader copies the upstream's headers that reach the client.
func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		if responseHeaders.allows(k) {
			dst[k] = vv
		}
	}
}

// redactor removes secrets from what the relay hands a client of an
// upstream's error, and from the failure reasons it logs and stores: every
// configured account secret, and anything shaped like a provider key or
// token (provider.RedactSecrets, JSON Web Tokens included).
type redactor struct {
	exact *strings.Replacer
}

// redacted replaces a secret in error text.
const redacted = "[redacted]"

func newRedactor(ups []*Upstream) *redactor {
	var pairs []string
	for _, up := range ups {
		if up == nil {
			continue
		}
		for _, s := range []string{up.Config.APIKey, up.Config.RefreshToken, up.Config.Token, up.Config.ClientSecret} {
			if len(s) >= 8 {
				pairs = append(pairs, s, redacted)
			}
		}
	}
	rd := &redactor{}
	if len(pairs) > 0 {
		rd.exact = strings.NewReplacer(pairs...)
	}
	return rd
}

// text returns s without secrets.
func (rd *redactor) text(s string) string {
	if rd != nil && rd.exact != nil {
		s = rd.exact.Replace(s)
	}
	return provider.RedactSecrets(s)
}

// body returns b without secrets; b itself when it holds none.
func (rd *redactor) body(b []byte) []byte {
	s := string(b)
	if out := rd.text(s); out != s {
		return []byte(out)
	}
	return b
}
