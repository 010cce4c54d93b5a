package accounttype

import (
	"context"
	"net/http"
	"strings"

	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/quota"
)

// claudeOAuth is a Claude Pro/Max subscription signed in as Claude Code does.
var claudeOAuth = Spec{
	Type:       "claude-oauth",
	Display:    "Claude Pro/Max subscription (OAuth)",
	Platform:   PlatformClaude,
	Credential: OAuth,
	SecretKey:  "refresh_token",
	Refresh:    &Refresh{TokenURL: ClaudeTokenURL, ClientID: ClaudeClientID},
	Login: &Login{
		Name:              "claude",
		AuthURL:           ClaudeAuthURL,
		Scopes:            []string{"user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers", "user:file_upload"},
		ManualRedirectURL: ClaudeManualRedirectURL,
		LoopbackHost:      "localhost",
		LoopbackPath:      "/callback",
		ExtraAuthParams:   map[string]string{"code": "true"},
		JSONExchange:      true,
		Short:             "Sign in to a Claude Pro/Max subscription (claude-oauth account)",
		Long: `Sign in to a Claude Pro or Max subscription with OAuth (PKCE) and store the
account's refresh token in the config as a type = "claude-oauth" account.

ccrelay opens the sign-in page in your browser and waits for it to come back
to a local callback on 127.0.0.1. At the same time it accepts the code by
paste, so it also works on a headless server over SSH: open the second URL
it prints in a browser on any machine, sign in, and paste the code the page
shows (it looks like code#state), or the whole address of the page the
sign-in ended on. Whichever arrives first wins.

Without --account a new [[accounts]] entry is appended (id "claude-<n>", name
= the account's email); with --account ID that entry's refresh_token is
replaced, or a new entry with that id is added if none exists. The rest of the
file, comments and order included, stays as it was; the file is replaced
atomically and left at mode 0600. With no config file anywhere, ./config.toml
is created. Ctrl-C leaves the config untouched.

A token written by login takes precedence, at the next start of ccrelay serve,
over the token the relay saved from its own refreshes.

Terms: Anthropic grants subscription logins for use with Claude Code. Using
one from other software, a relay included, may breach Anthropic's terms and
can get the account suspended. Where that matters, use a claude-api account
with an API key from the Anthropic Console instead.
`,
		Example: `# On a desktop: the browser opens, you sign in, done
$ ccrelay login claude

# Over SSH: open the printed URL on your laptop, then paste the code it shows
$ ccrelay login claude --no-browser

# Replace the token of an existing account (e.g. after it was revoked)
$ ccrelay login claude --account claude-2

# Write into a specific config file
$ ccrelay login claude --config /etc/ccrelay/config.toml
`,
		Note: "Note: Anthropic grants subscription logins for use with Claude Code; using one\nthrough other software may breach its terms (see 'ccrelay login claude --help').\n\n",
	},
	BaseURL:      anthropic.BaseURL,
	Authenticate: claudeBearer,
	Probe:        claudeProbe(claudeBearer),
	// The subscription's 5h and 7d windows (api/oauth/usage).
	Usage: &Usage{
		Request: func(ctx context.Context, a Account, accessToken string) (*http.Request, error) {
			return quota.ClaudeUsageRequest(ctx, anthropic.BaseURL(a.APIURL), accessToken)
		},
		Parse: quota.ParseClaudeUsage,
	},
}

// claudeAPI is an Anthropic Console API key.
var claudeAPI = Spec{
	Type:         "claude-api",
	Display:      "Anthropic API key",
	Platform:     PlatformClaude,
	Credential:   APIKey,
	SecretKey:    "api_key",
	BaseURL:      anthropic.BaseURL,
	Authenticate: claudeKey,
	Probe:        claudeProbe(claudeKey),
}

// claudeKey authenticates with an API key.
func claudeKey(h http.Header, _ Account, secret string) {
	h.Set("X-Api-Key", secret)
	claudeVersion(h)
}

// claudeToken is a long-lived subscription token from `claude setup-token`:
// used like a refreshed access token, never refreshed (it carries the
// inference scope only, so profile calls would fail and are not made).
var claudeToken = Spec{
	Type:         "claude-token",
	Display:      "Claude long-lived token (claude setup-token)",
	Platform:     PlatformClaude,
	Credential:   Token,
	SecretKey:    "token",
	Obtain:       "claude setup-token (then put the sk-ant-oat01-... token it prints in the account's token)",
	BaseURL:      anthropic.BaseURL,
	Authenticate: claudeBearer,
	Probe:        claudeProbe(claudeBearer),
}

// claudeBearer authenticates with a subscription token (a refreshed access
// token or a long-lived one): Bearer, and the OAuth beta added to the
// client's own betas.
func claudeBearer(h http.Header, _ Account, secret string) {
	bearer(h, secret)
	h.Set("Anthropic-Beta", anthropic.MergeBeta(strings.Join(h.Values("Anthropic-Beta"), ","), anthropic.OAuthBeta))
	claudeVersion(h)
}

// claudeVersion sets anthropic-version unless the client sent one.
func claudeVersion(h http.Header) {
	if h.Get("Anthropic-Version") == "" {
		h.Set("Anthropic-Version", anthropic.Version)
	}
}

// claudeProbe lists the models (free, and it checks the credential),
// authenticated by auth.
func claudeProbe(auth func(http.Header, Account, string)) func(context.Context, Account, string) (*http.Request, error) {
	return func(ctx context.Context, a Account, secret string) (*http.Request, error) {
		req, err := get(ctx, anthropic.BaseURL(a.APIURL)+"/v1/models")
		if err != nil {
			return nil, err
		}
		auth(req.Header, a, secret)
		return req, nil
	}
}
