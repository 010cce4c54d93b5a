package accounttype

import (
	"context"
	"net/http"

	"github.com/ccrelay/ccrelay/internal/provider/openai"
)

// codexOAuth is a ChatGPT Plus/Pro subscription as Codex CLI uses it: an
// OAuth refresh token (rotating) and the ChatGPT backend, which the relay
// serves from the Responses route through openai.CodexTransport, in the same
// pool as openai-responses accounts.
var codexOAuth = Spec{
	Type:         "codex-oauth",
	Display:      "ChatGPT subscription for Codex (OAuth)",
	Platform:     PlatformOpenAI,
	Credential:   OAuth,
	SecretKey:    "refresh_token",
	Refresh:      &Refresh{TokenURL: OpenAITokenURL, ClientID: CodexClientID, Scope: "openid profile email"},
	Obtain:       "Codex CLI's 'codex login', then copy tokens.refresh_token and tokens.account_id from ~/.codex/auth.json (ccrelay login codex is not built yet)",
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
	Transport: func(rt http.RoundTripper) http.RoundTripper { return &openai.CodexTransport{Base: rt} },
}

// codexAuth sets the access token, the ChatGPT account (the configured
// chatgpt_account_id, else the token's claim) and Codex CLI's originator
// unless the client (Codex itself) sent its own.
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
