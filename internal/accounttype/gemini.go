package accounttype

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/ccrelay/ccrelay/internal/provider/gemini"
)

// geminiOAuth is a Google account signed in as Gemini CLI does, served
// through the Code Assist API.
var geminiOAuth = Spec{
	Type:       "gemini",
	Display:    "Google account via Gemini CLI's Code Assist login (OAuth)",
	Platform:   PlatformGemini,
	Credential: OAuth,
	SecretKey:  "refresh_token",
	Refresh:    &Refresh{TokenURL: GoogleTokenURL, ClientID: GoogleClientID, ClientSecret: GoogleClientSecret, Form: true},
	Login: &Login{
		Name:    "gemini",
		AuthURL: GoogleAuthURL,
		Scopes: []string{
			"https://www.googleapis.com/auth/cloud-platform",
			"https://www.googleapis.com/auth/userinfo.email",
			"https://www.googleapis.com/auth/userinfo.profile",
		},
		ManualRedirectURL: GoogleManualRedirectURL,
		LoopbackHost:      "127.0.0.1",
		LoopbackPath:      "/oauth2callback",
		ExtraAuthParams:   map[string]string{"access_type": "offline", "prompt": "consent"},
		Short:             "Sign in with Google as Gemini CLI does (gemini account)",
		Long: `Sign in with a Google account as Gemini CLI does (Code Assist OAuth, offline
access, consent prompt) and store the refresh token in the config as a
type = "gemini" account.

ccrelay opens the sign-in page in your browser and waits for it to come back
to a local callback on 127.0.0.1. At the same time it accepts the code by
paste, so it also works on a headless server over SSH: open the second URL
it prints in a browser on any machine, sign in, and paste the code the page
shows, or the whole address of the page the sign-in ended on.

Without --account a new [[accounts]] entry is appended (id "gemini-<n>", name
= the account's email); with --account ID that entry's refresh_token is
replaced, or a new entry with that id is added if none exists. The rest of the
file, comments and order included, stays as it was; the file is replaced
atomically and left at mode 0600. With no config file anywhere, ./config.toml
is created. Ctrl-C leaves the config untouched.

Terms and availability: Google's terms forbid using the Gemini CLI OAuth
client from third-party software, a relay included, and accounts have been
suspended for it. Google has also ended this login for consumer tiers (free,
Google One, AI Pro/Ultra); only paid Code Assist subscriptions remain. The
supported way is an API key: add a type = "gemini-api" account with a key
from Google AI Studio (or Vertex AI) instead.
`,
		Example: `$ ccrelay login gemini
$ ccrelay login gemini --no-browser --account gemini-work
`,
		Note: "Note: Google's terms forbid using the Gemini CLI login from third-party software,\nand consumer tiers can no longer use it; a gemini-api account (API key) is the\nsupported way (see 'ccrelay login gemini --help').\n\n",
	},
	// The Code Assist root; the relay's Gemini routes build their URLs with
	// gemini.CodeAssistURL from the account's api_url.
	BaseURL: func(apiURL string) string {
		return strings.TrimSuffix(gemini.LoadCodeAssistURL(apiURL), "/v1internal:loadCodeAssist")
	},
	Authenticate: func(h http.Header, _ Account, secret string) {
		bearer(h, secret)
	},
	// loadCodeAssist with Gemini CLI's metadata: the call every Code Assist
	// session starts with, free.
	Probe: func(ctx context.Context, a Account, secret string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, gemini.LoadCodeAssistURL(a.APIURL), bytes.NewReader(gemini.LoadCodeAssistBody()))
		if err != nil {
			return nil, err
		}
		bearer(req.Header, secret)
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	},
	CodeAssist:  true,
	NoModelList: true,
}

// geminiAPI is a Google AI Studio (or Vertex express) API key on the public
// Gemini API.
var geminiAPI = Spec{
	Type:       "gemini-api",
	Display:    "Gemini API key",
	Platform:   PlatformGemini,
	Credential: APIKey,
	SecretKey:  "api_key",
	BaseURL:    trimBase(gemini.PublicBaseURL),
	Authenticate: func(h http.Header, _ Account, secret string) {
		h.Set("X-Goog-Api-Key", secret)
	},
	// One page of one model: free.
	Probe: func(ctx context.Context, a Account, secret string) (*http.Request, error) {
		req, err := get(ctx, trimBase(gemini.PublicBaseURL)(a.APIURL)+"/v1beta/models?pageSize=1")
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Goog-Api-Key", secret)
		return req, nil
	},
}
