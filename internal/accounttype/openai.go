package accounttype

import (
	"context"
	"net/http"

	"github.com/ccrelay/ccrelay/internal/provider/openai"
)

// openaiResponses is an OpenAI API key on the public Responses API.
var openaiResponses = Spec{
	Type:       "openai-responses",
	Display:    "OpenAI API key (Responses API)",
	Platform:   PlatformOpenAI,
	Credential: APIKey,
	SecretKey:  "api_key",
	BaseURL:    openai.BaseURL,
	Authenticate: func(h http.Header, _ Account, secret string) {
		bearer(h, secret)
	},
	// The model list: free.
	Probe: func(ctx context.Context, a Account, secret string) (*http.Request, error) {
		req, err := get(ctx, openai.BaseURL(a.APIURL)+"/models")
		if err != nil {
			return nil, err
		}
		bearer(req.Header, secret)
		return req, nil
	},
}
