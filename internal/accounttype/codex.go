package accounttype

import (
	"context"
	"net/http"
	"strings"

	"github.com/ccrelay/ccrelay/internal/provider/openai"
	"github.com/ccrelay/ccrelay/internal/quota"
)

// codexOAuth is a ChatGPT Plus/Pro subscription as Codex CLI uses it: an
// OAuth refresh token (rotating) and the ChatGPT backend, which the relay
// serves from the Responses route through openai.CodexTransport, in the same
// pool as openai-responses accounts.
var codexOAuth = Spec{
	Type:       "codex-oauth",
	Display:    "ChatGPT subscription for Codex (OAuth)",
	Platform:   PlatformOpenAI,
	Credential: OAuth,
	SecretKey:  "refresh_token",
	Refresh:    &Refresh{TokenURL: OpenAITokenURL, ClientID: CodexClientID, Scope: "openid profile email"},
	// Codex CLI's "Sign in with ChatGPT" (codex-rs login/src/server.rs): its
	// scopes and extra parameters, and the only redirect URIs its client id
	// allows, http://localhost:1455/auth/callback and port 1457 as fallback.
	Login: &Login{
		Name:          "codex",
		AuthURL:       OpenAIAuthURL,
		Scopes:        []string{"openid", "profile", "email", "offline_access", "api.connectors.read", "api.connectors.invoke"},
		LoopbackHost:  "localhost",
		LoopbackPath:  "/auth/callback",
		LoopbackPorts: []int{1455, 1457},
		ExtraAuthParams: map[string]string{
			"id_token_add_organizations": "true",
			"codex_cli_simplified_flow":  "true",
			"originator":                 "codex_cli_rs",
		},
		Short: "Sign in to a ChatGPT Plus/Pro subscription as Codex CLI does (codex-oauth account)",
		Long: `Sign in with a ChatGPT account as Codex CLI does ("Sign in with ChatGPT", OAuth
with PKCE) and store the refresh token and the ChatGPT account id in the
config as a type = "codex-oauth" account.

ccrelay opens the sign-in page in your browser and waits for it to come back
to http://localhost:1455/auth/callback (port 1457 when 1455 is taken, e.g. by
a running 'codex login': OpenAI's client allows only these two), served on
127.0.0.1. On a headless server over SSH, open the printed URL in a browser
on any machine and sign in; the browser then ends on a localhost address that
does not load there. Copy that whole address from the address bar and paste
it into the terminal. Whichever arrives first wins.

Without --account a new [[accounts]] entry is appended (id "codex-<n>", name =
the account's email, chatgpt_account_id from the id token); with --account ID
that entry's refresh_token and chatgpt_account_id are replaced, or a new entry
with that id is added if none exists. The rest of the file, comments and
order included, stays as it was; the file is replaced atomically and left at
mode 0600. With no config file anywhere, ./config.toml is created. Ctrl-C
leaves the config untouched.

The refresh token rotates: from now on only the relay may use it (do not
also use it from Codex CLI, or one of the two loses the chain).

Terms: OpenAI grants ChatGPT subscriptions for use with its own clients such
as Codex CLI. Using one from other software, a relay included, may breach
OpenAI's terms and can get the account suspended. Where that matters, use an
openai-responses account with an API key from the OpenAI platform instead.
`,
		Example: `# On a desktop: the browser opens, you sign in, done
$ ccrelay login codex

# Over SSH: open the printed URL on your laptop, then paste the address it ends on
$ ccrelay login codex --no-browser

# Replace the token of an existing account
$ ccrelay login codex --account codex-2
`,
		Note: "Note: OpenAI grants ChatGPT subscriptions for use with its own clients such as\nCodex CLI; using one through other software may breach its terms (see\n'ccrelay login codex --help').\n\n",
	},
	BaseURL:      trimBase(openai.CodexBaseURL),
	Authenticate: codexAuth,
	// The backend's model list (3P-observed; needs client_version).
	Probe: func(ctx context.Context, a Account, secret string) (*http.Request, error) {
		req, err := get(ctx, trimBase(openai.CodexBaseURL)(a.APIURL)+"/models?client_version=0.1.0")
		if err != nil {
			return nil, err
		}
		codexAuth(req.Header, a, secret)
		return req, nil
	},
	Transport:          func(rt http.RoundTripper) http.RoundTripper { return &openai.CodexTransport{Base: rt} },
	IDTokenAccount:     openai.ChatGPTAccountID,
	UpstreamAccountKey: "chatgpt_account_id",
	NoModelList:        true,
	NoTokenCount:       true,
	// The subscription's primary and secondary windows: the usage endpoint
	// sits beside the Codex backend, {root}/backend-api/wham/usage next to
	// {root}/backend-api/codex.
	Usage: &Usage{
		Request: func(ctx context.Context, a Account, accessToken string) (*http.Request, error) {
			account := a.UpstreamAccount
			if account == "" {
				account = openai.ChatGPTAccountID(accessToken)
			}
			base := strings.TrimSuffix(trimBase(openai.CodexBaseURL)(a.APIURL), "/codex")
			return quota.CodexUsageRequest(ctx, base, accessToken, account)
		},
		Parse: quota.ParseCodexUsage,
	},
}

// codexAuth sets the access token, the ChatGPT account (the one the latest
// id token named, else the configured chatgpt_account_id, else the access
// token's claim) and Codex CLI's originator unless the client (Codex
// itself) sent its own.
func codexAuth(h http.Header, a Account, secret string) {
	bearer(h, secret)
	id := a.UpstreamAccount
	if id == "" {
		id = openai.ChatGPTAccountID(secret)
	}
	if id != "" {
		h.Set("Chatgpt-Account-Id", id)
	}
	if h.Get("Originator") == "" {
		h.Set("Originator", "codex_cli_rs")
	}
}
