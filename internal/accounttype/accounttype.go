// Package accounttype holds one description per account type: which pool it
// serves, what credential it holds and how that credential is refreshed, its
// upstream's default URL, how a request to that upstream is authenticated and
// probed, how an operator gets a new credential, and how it is named. Every
// layer that used to switch on the type string (config validation, the relay's
// upstream requests, app assembly, `accounts test`, `accounts list`, `login`)
// reads the one Spec instead.
//
// Adding a type is one file here (its Spec), one line in registry, and its
// tests; docs/ARCHITECTURE.md ("Recipe: add an account type") walks through it.
//
// The package knows the provider packages (URLs, header names) but nothing of
// the config file, the scheduler, the store or cobra, so config can import it.
package accounttype

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// Platforms: the pools the scheduler keeps. Accounts of one platform fail
// over to each other.
const (
	PlatformClaude = "claude"
	PlatformGemini = "gemini"
	PlatformOpenAI = "openai"
	// PlatformCompat is the pool of Chat Completions upstreams
	// (openai-compatible accounts): apart from the OpenAI pool, so a
	// DeepSeek account never fails over to an OpenAI Responses one; within
	// it a request goes only to the accounts that list its model.
	PlatformCompat = "compat"
)

// Credential is the kind of secret an account holds.
type Credential int

const (
	// APIKey is a static provider key in api_key; it never changes.
	APIKey Credential = iota
	// OAuth is a refresh token in refresh_token from which short-lived access
	// tokens are obtained (see Refresh); rotated refresh tokens are persisted.
	OAuth
	// Token is a static long-lived bearer token in token; it is not
	// refreshed, and once the upstream rejects it (401) only a new token
	// from the operator helps.
	Token
)

// String returns "api_key", "oauth" or "token".
func (c Credential) String() string {
	switch c {
	case OAuth:
		return "oauth"
	case Token:
		return "token"
	}
	return "api_key"
}

// Refresh says how an OAuth account's access token is refreshed.
type Refresh struct {
	// TokenURL is the default token endpoint (token_url overrides it).
	TokenURL string
	// ClientID is the default OAuth client (client_id overrides it).
	ClientID string
	// ClientSecret goes with ClientID only (an installed app's public
	// secret); a client_id override without client_secret sends none.
	ClientSecret string
	// Form selects a form-encoded refresh request (Google); otherwise JSON.
	Form bool
	// Scope, when set, is sent with every refresh.
	Scope string
}

// Client resolves an account's overrides against the defaults: each of
// tokenURL, clientID and clientSecret wins when set, and the default secret
// applies only to the default client id.
func (r *Refresh) Client(tokenURL, clientID, clientSecret string) (string, string, string) {
	if tokenURL == "" {
		tokenURL = r.TokenURL
	}
	if clientID == "" {
		clientID = r.ClientID
	}
	if clientSecret == "" && clientID == r.ClientID {
		clientSecret = r.ClientSecret
	}
	return tokenURL, clientID, clientSecret
}

// Login is the interactive sign-in `ccrelay login <Name>` performs for an
// OAuth type: the authorization server as the vendor's own CLI uses it, and
// the help text of the command.
type Login struct {
	// Name is the argument of `ccrelay login`, e.g. "claude".
	Name string
	// AuthURL is the authorization endpoint the browser opens.
	AuthURL string
	// Scopes are requested space-separated.
	Scopes []string
	// ManualRedirectURL is the provider's page that shows a code to paste;
	// "" when the provider has none (the pasted value is then the address of
	// the page the browser ended on).
	ManualRedirectURL string
	// LoopbackHost is the host written into the loopback redirect_uri
	// ("localhost" or "127.0.0.1"); the listener binds 127.0.0.1 whatever it says.
	LoopbackHost string
	// LoopbackPath is the path of the loopback redirect_uri.
	LoopbackPath string
	// LoopbackPorts are the ports the client id allows in its redirect_uri,
	// tried in order; empty means any free port.
	LoopbackPorts []int
	// ExtraAuthParams are added to the authorize URL.
	ExtraAuthParams map[string]string
	// JSONExchange selects a JSON code exchange that includes the state
	// (Claude); otherwise the standard form-encoded one.
	JSONExchange bool
	// Short, Long and Example are the cobra help of `ccrelay login <Name>`.
	Short, Long, Example string
	// Note is printed before the sign-in starts (the vendor's terms).
	Note string
}

// Account is what a type's functions need of one configured account.
type Account struct {
	// ID is the account's id in the config.
	ID string
	// APIURL is the configured api_url; "" means the type's default.
	APIURL string
	// UpstreamAccount is the account id on the provider's side where the
	// type needs one (codex-oauth: chatgpt_account_id); "" otherwise.
	UpstreamAccount string
}

// Spec describes one account type. Every field is set for every type unless
// its comment says otherwise.
type Spec struct {
	// Type is the config's type string, e.g. "claude-oauth".
	Type string
	// Display is a short human description, e.g. "Claude Pro/Max subscription (OAuth)".
	Display string
	// Platform is the pool the type serves (PlatformClaude ...).
	Platform string
	// Credential is the kind of secret the account holds.
	Credential Credential
	// SecretKey is the config key holding it: "api_key", "refresh_token" or "token".
	SecretKey string
	// Refresh is set for OAuth types.
	Refresh *Refresh
	// Login is set for types `ccrelay login` can sign in.
	Login *Login
	// Obtain says how to get a credential when the type has no Login, e.g.
	// "claude setup-token"; "" when the provider's console is the only way.
	Obtain string
	// BaseURL turns an account's api_url into the upstream's API root,
	// giving the type's default for "".
	BaseURL func(apiURL string) string
	// Authenticate puts the account's credential (secret: the API key or
	// the current access token) on an upstream request's headers.
	Authenticate func(h http.Header, a Account, secret string)
	// Probe builds the smallest free request that proves the credential
	// works (`ccrelay accounts test`).
	Probe func(ctx context.Context, a Account, secret string) (*http.Request, error)
	// Transport, when set, wraps the account's HTTP transport for upstream
	// requests (not for token refreshes): a type whose upstream speaks a
	// variant of its platform's API presents it as that API here. The
	// wrapper must forward CloseIdleConnections to the transport it wraps,
	// so a reload that drops the account closes its idle connections.
	Transport func(http.RoundTripper) http.RoundTripper
	// IDTokenAccount, when set, reads the provider-side account id
	// (Account.UpstreamAccount) from an OpenID id token, the one a login's
	// code exchange or a refresh returns; "" when the token has none.
	IDTokenAccount func(idToken string) string
	// UpstreamAccountKey is the config key that holds the provider-side
	// account id ("chatgpt_account_id"); login writes the id there. Set
	// together with IDTokenAccount.
	UpstreamAccountKey string
	// NoModelList marks an upstream without the platform's public model
	// list (the ChatGPT backend's needs a client version and has its own
	// shape; the Code Assist API has none): the platform's models routes
	// do not ask such accounts, and answer 501 when no other account can.
	NoModelList bool
	// NoTokenCount marks an upstream without its platform's token-count
	// method (the ChatGPT backend has no /responses/input_tokens; a Chat
	// Completions vendor has none): a count_tokens, countTokens or
	// input_tokens request is counted by another account, else answered
	// with the relay's documented estimate (docs/matrix.md).
	NoTokenCount bool
	// CodeAssist marks an upstream that speaks Google's Code Assist API
	// (v1internal) rather than its platform's public one: every request
	// names a Cloud project, which the relay discovers per account
	// (loadCodeAssist, onboardUser) unless project_id pins it, and the
	// relay wraps each request and unwraps each answer.
	CodeAssist bool
	// Usage, when set, is the type's subscription usage endpoint, which the
	// quota prober reads for idle accounts (scheduler.quota_probe_minutes).
	Usage *Usage
	// URLRequired: the type has no default upstream, api_url is required
	// (config validation) and BaseURL("") is "".
	URLRequired bool
	// SecretOptional: the credential may be left out (a local server that
	// takes no key); Authenticate then sends none.
	SecretOptional bool
	// ListsModels: the account's `models` (globs) say which models it
	// serves; required, and the routing sends a listed model to its pool.
	ListsModels bool
}

// Usage is a subscription's usage endpoint: how to ask it with an
// account's current access token, and how to read its answer.
type Usage struct {
	// Request builds the request with the account's access token.
	Request func(ctx context.Context, a Account, accessToken string) (*http.Request, error)
	// Parse reads the answer's windows; ok is false when it holds none.
	Parse func(body []byte, now time.Time) (s quota.Snapshot, ok bool)
}

// Renew is the command that gets the account a new credential, or "" when
// the type has none (API keys come from the provider's console).
func (s *Spec) Renew(id string) string {
	switch {
	case s.Login != nil:
		return fmt.Sprintf("ccrelay login %s --account %s", s.Login.Name, id)
	case s.Obtain != "":
		return s.Obtain
	}
	return ""
}

// Rejected says that the upstream rejected account id's credential and what
// gets it a new one, e.g. "the refresh token was rejected; run: ccrelay
// login codex --account codex-1". Every presenter of an account's state
// (accounts list, the admin API, the dashboard) and the refresh error use it.
func (s *Spec) Rejected(id string) string {
	what := "the " + strings.ReplaceAll(s.SecretKey, "_", " ") + " was rejected"
	if fix := s.Renew(id); fix != "" {
		return what + "; run: " + fix
	}
	return what + "; replace " + s.SecretKey + " in the config"
}

// registry is every account type, in documentation order. It is a constant
// table: nothing writes to it after initialisation.
var registry = []*Spec{
	&claudeOAuth,
	&claudeAPI,
	&geminiOAuth,
	&geminiAPI,
	&openaiResponses,
	&claudeToken,
	&codexOAuth,
	&openaiCompatible,
}

// All returns every type in documentation order. The Specs are shared:
// callers must not modify them.
func All() []*Spec { return registry }

// Lookup returns the type named t, or nil.
func Lookup(t string) *Spec {
	for _, s := range registry {
		if s.Type == t {
			return s
		}
	}
	return nil
}

// Names lists every type string in documentation order.
func Names() []string {
	out := make([]string, len(registry))
	for i, s := range registry {
		out[i] = s.Type
	}
	return out
}

// LoginFor returns the type `ccrelay login name` signs in, or nil.
func LoginFor(name string) *Spec {
	for _, s := range registry {
		if s.Login != nil && s.Login.Name == name {
			return s
		}
	}
	return nil
}

// get builds a GET request with no body.
func get(ctx context.Context, url string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
}

// bearer sets Authorization: Bearer secret.
func bearer(h http.Header, secret string) { h.Set("Authorization", "Bearer "+secret) }

// trimBase trims trailing slashes from apiURL, defaulting to def.
func trimBase(def string) func(string) string {
	return func(apiURL string) string {
		if apiURL == "" {
			return def
		}
		return strings.TrimRight(apiURL, "/")
	}
}
