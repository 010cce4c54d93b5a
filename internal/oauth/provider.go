// Package oauth runs the interactive OAuth 2.0 authorization-code login with
// PKCE (S256) that `ccrelay login` uses to obtain a refresh token for a
// subscription account.
//
// A login listens on a loopback callback and, at the same time, accepts a
// pasted code or callback URL, so it works both on a desktop (the browser
// comes back to the loopback listener) and on a headless server over SSH
// (the user signs in on another machine and pastes what the provider shows).
// The package knows nothing about the config file or about cobra; the
// command layer stores the returned Token.
package oauth

import (
	"fmt"
	"strings"

	"github.com/ccrelay/ccrelay/internal/accounttype"
)

// Provider describes one OAuth authorization server as ccrelay talks to it.
// ProviderFor returns an account type's (ClaudeProvider, GoogleProvider and
// CodexProvider); tests point the URLs at fakes.
type Provider struct {
	// Name identifies the provider in messages: "claude", "gemini" or "codex".
	Name string
	// AuthURL is the authorization endpoint the browser opens.
	AuthURL string
	// TokenURL is the endpoint the authorization code is exchanged at.
	TokenURL string
	// ClientID is the public OAuth client id.
	ClientID string
	// ClientSecret is the installed-app client secret; empty for public
	// clients such as Claude Code's.
	ClientSecret string
	// Scopes are requested space-separated in the authorize URL.
	Scopes []string
	// ManualRedirectURL is the redirect_uri of the paste flow: a page of the
	// provider that shows the code to copy. Empty disables the bare-code
	// paste; a pasted callback URL is still accepted.
	ManualRedirectURL string
	// LoopbackHost is the host written into the loopback redirect_uri:
	// "localhost" (what Claude Code registers) or "127.0.0.1" (what Gemini CLI
	// uses). Empty means "127.0.0.1". Whatever it says, the listener binds
	// 127.0.0.1 only.
	LoopbackHost string
	// LoopbackPath is the path of the loopback redirect_uri, e.g. "/callback".
	LoopbackPath string
	// LoopbackPorts are the ports the client id allows in its loopback
	// redirect_uri (Codex CLI's: 1455, then 1457), tried in order; empty
	// means any free port.
	LoopbackPorts []int
	// ExtraAuthParams are added to the authorize URL (Claude: code=true;
	// Google: access_type=offline, prompt=consent).
	ExtraAuthParams map[string]string
	// JSONExchange selects a JSON token request that includes the state
	// (Claude); otherwise the standard form-encoded request is sent (Google).
	JSONExchange bool
	// IDTokenAccount, when set, reads the provider-side account id from the
	// exchange's id_token into Token.Account (OpenAI's chatgpt_account_id).
	IDTokenAccount func(idToken string) string
}

// ProviderFor returns the authorization server of an account type's login
// with its default client. A type without a login yields a Provider that
// fails validation.
func ProviderFor(s *accounttype.Spec) Provider {
	l := s.Login
	if l == nil {
		return Provider{Name: s.Type}
	}
	p := Provider{
		Name:              l.Name,
		AuthURL:           l.AuthURL,
		Scopes:            l.Scopes,
		ManualRedirectURL: l.ManualRedirectURL,
		LoopbackHost:      l.LoopbackHost,
		LoopbackPath:      l.LoopbackPath,
		LoopbackPorts:     l.LoopbackPorts,
		ExtraAuthParams:   l.ExtraAuthParams,
		JSONExchange:      l.JSONExchange,
		IDTokenAccount:    s.IDTokenAccount,
	}
	if s.Refresh != nil {
		p.TokenURL, p.ClientID, p.ClientSecret = s.Refresh.TokenURL, s.Refresh.ClientID, s.Refresh.ClientSecret
	}
	return p
}

// ClaudeProvider returns the Claude (Pro/Max subscription) login as Claude
// Code performs it.
func ClaudeProvider() Provider { return ProviderFor(accounttype.Lookup("claude-oauth")) }

// GoogleProvider returns the Google login of Gemini CLI (Code Assist). Its
// client secret belongs to an installed application and is public by design.
func GoogleProvider() Provider { return ProviderFor(accounttype.Lookup("gemini")) }

// CodexProvider returns the ChatGPT login of Codex CLI ("Sign in with
// ChatGPT"): a public client whose redirect URIs are fixed loopback ports.
func CodexProvider() Provider { return ProviderFor(accounttype.Lookup("codex-oauth")) }

// validate reports every missing field at once.
func (p Provider) validate() error {
	var missing []string
	if p.AuthURL == "" {
		missing = append(missing, "no authorize URL")
	}
	if p.TokenURL == "" {
		missing = append(missing, "no token URL")
	}
	if p.ClientID == "" {
		missing = append(missing, "no client id")
	}
	if !strings.HasPrefix(p.LoopbackPath, "/") {
		missing = append(missing, `loopback path must start with "/"`)
	}
	for _, port := range p.LoopbackPorts {
		if port < 1 || port > 65535 {
			missing = append(missing, fmt.Sprintf("loopback port %d out of range", port))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("oauth provider %q: %s", p.Name, strings.Join(missing, "; "))
	}
	return nil
}
