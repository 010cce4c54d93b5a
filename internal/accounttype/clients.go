package accounttype

// The OAuth clients of the vendors' own CLIs, as ccrelay signs in and
// refreshes with them. This is the only place they are written down: the
// login (internal/oauth), the refresh (internal/credential) and the specs
// read them from here.
const (
	// ClaudeAuthURL is Claude Code's authorization endpoint (Pro/Max login).
	ClaudeAuthURL = "https://claude.ai/oauth/authorize"
	// ClaudeTokenURL is Anthropic's token endpoint (exchange and refresh).
	ClaudeTokenURL = "https://platform.claude.com/v1/oauth/token"
	// ClaudeClientID is Claude Code's public OAuth client.
	ClaudeClientID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
	// ClaudeManualRedirectURL shows the code#state to paste.
	ClaudeManualRedirectURL = "https://platform.claude.com/oauth/code/callback"

	// GoogleAuthURL is Google's authorization endpoint.
	GoogleAuthURL = "https://accounts.google.com/o/oauth2/v2/auth"
	// GoogleTokenURL is Google's token endpoint.
	GoogleTokenURL = "https://oauth2.googleapis.com/token"
	// GoogleClientID is Gemini CLI's installed-app OAuth client.
	GoogleClientID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
	// GoogleClientSecret is Gemini CLI's installed-app secret: public by
	// design, but still kept out of errors and logs like any secret.
	GoogleClientSecret = "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"
	// GoogleManualRedirectURL shows the code to paste.
	GoogleManualRedirectURL = "https://codeassist.google.com/authcode"
)

// Codex CLI's "Sign in with ChatGPT" client.
const (
	// OpenAIAuthURL is OpenAI's authorization endpoint.
	OpenAIAuthURL = "https://auth.openai.com/oauth/authorize"
	// OpenAITokenURL is OpenAI's token endpoint (exchange and refresh).
	OpenAITokenURL = "https://auth.openai.com/oauth/token"
	// CodexClientID is Codex CLI's public OAuth client.
	CodexClientID = "app_EMoamEEZ73f0CkXaXp7hrann"
)
