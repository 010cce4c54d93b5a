package oauth

import "github.com/ccrelay/ccrelay/internal/accounttype"

// ClaudeProvider is the Claude (Pro/Max subscription) login as Claude Code
// performs it.
func ClaudeProvider() Provider { return ProviderFor(accounttype.LoginFor("claude")) }

// GoogleProvider is the Google login of Gemini CLI (Code Assist).
func GoogleProvider() Provider { return ProviderFor(accounttype.LoginFor("gemini")) }

// CodexProvider is the ChatGPT login of Codex CLI ("Sign in with ChatGPT").
func CodexProvider() Provider { return ProviderFor(accounttype.LoginFor("codex")) }

// namedProvider is a Provider with a name and nothing else.
func namedProvider(name string) Provider { return Provider{Login: accounttype.Login{Name: name}} }
