package provider

import "regexp"

// secretShapes match what looks like a provider credential in text an
// upstream wrote: Google API keys, OAuth access and refresh tokens and
// client secrets; Anthropic keys and tokens (sk-ant-api, sk-ant-oat,
// sk-ant-ort); OpenAI keys; and JSON Web Tokens, which is what an OpenAI
// (Codex, ChatGPT sign-in) access or id token is: base64url header and
// payload, both JSON objects, so both start "eyJ".
var secretShapes = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{10,}` +
	`|ya29\.[0-9A-Za-z_\-.]{10,}` +
	`|1//[0-9A-Za-z_\-]{10,}` +
	`|GOCSPX-[0-9A-Za-z_\-]{8,}` +
	`|sk-ant-[0-9A-Za-z_\-]{10,}` +
	`|sk-(?:proj-|svcacct-|admin-)?[0-9A-Za-z_\-]{20,}` +
	`|eyJ[0-9A-Za-z_\-]{4,}\.eyJ[0-9A-Za-z_\-]{4,}\.[0-9A-Za-z_\-]*`)

// Redacted is what a secret is replaced by.
const Redacted = "[redacted]"

// RedactSecrets replaces everything in s shaped like a provider credential
// (see secretShapes) by Redacted. It is the one pattern set that upstream
// error bodies handed to clients, cooldown reasons and log lines all go
// through; callers add the exact secrets they know.
func RedactSecrets(s string) string {
	return secretShapes.ReplaceAllString(s, Redacted)
}
