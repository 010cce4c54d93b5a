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

// Provider describes one OAuth authorization server as ccrelay talks to it:
// an account type's login (accounttype.Login: endpoint, scopes, redirects,
// exchange format, name) and the client it signs in with. ProviderFor
// builds it from the type's Spec; tests point the URLs at fakes.
type Provider struct {
	accounttype.Login
	// TokenURL is the endpoint the authorization code is exchanged at.
	TokenURL string
	// ClientID is the public OAuth client id.
	ClientID string
	// ClientSecret is the installed-app client secret; empty for public
	// clients such as Claude Code's.
	ClientSecret string
	// IDTokenAccount, when set, reads the provider-side account id from the
	// exchange's id_token into Token.Account (OpenAI's chatgpt_account_id).
	IDTokenAccount func(idToken string) string
}

// ProviderFor returns the authorization server of an account type's login
// with its default client. A type without a login yields a Provider that
// fails validation.
func ProviderFor(s *accounttype.Spec) Provider {
	if s.Login == nil {
		return Provider{Login: accounttype.Login{Name: s.Type}}
	}
	p := Provider{Login: *s.Login, IDTokenAccount: s.IDTokenAccount}
	if s.Refresh != nil {
		p.TokenURL, p.ClientID, p.ClientSecret = s.Refresh.TokenURL, s.Refresh.ClientID, s.Refresh.ClientSecret
	}
	return p
}

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
