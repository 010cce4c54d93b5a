package reqlog

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// Redacted replaces every secret in stored text.
const Redacted = "[redacted]"

// credentialHeaders are the request headers whose values are never stored.
var credentialHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "X-Api-Key": true, "X-Goog-Api-Key": true,
	"Cookie": true, "Set-Cookie": true, "Api-Key": true, "Chatgpt-Account-Id": true,
}

// credentialField matches a JSON string member whose name says it holds a
// credential ("api_key": "...", "refresh_token": "...", "password": ...).
var credentialField = regexp.MustCompile(`(?i)("(?:api[_-]?key|x-api-key|x-goog-api-key|access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|secret|password|authorization|cookie|session[_-]?token|bearer)"\s*:\s*)"(?:[^"\\]|\\.)*"`)

// bearer matches an Authorization-style value anywhere in text.
var bearer = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[0-9A-Za-z_\-.~+/=]{8,}`)

// Fields replaces the values of credential-looking JSON members and
// Bearer/Basic credentials in b.
func Fields(b []byte) []byte {
	b = credentialField.ReplaceAll(b, []byte(`$1"`+Redacted+`"`))
	return bearer.ReplaceAll(b, []byte(`$1 `+Redacted))
}

// Exact replaces every occurrence of each secret (8 bytes or longer) in b.
func Exact(b []byte, secrets []string) []byte {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 8 {
			pairs = append(pairs, s, Redacted)
		}
	}
	if len(pairs) == 0 {
		return b
	}
	return []byte(strings.NewReplacer(pairs...).Replace(string(b)))
}

// Header renders h as "Name: value" lines, sorted, with credential headers'
// values replaced.
func Header(h http.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			if credentialHeaders[http.CanonicalHeaderKey(k)] {
				v = Redacted
			}
			sb.WriteString(k + ": " + v + "\n")
		}
	}
	return sb.String()
}
