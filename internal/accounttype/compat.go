package accounttype

import (
	"context"
	"net/http"
)

// openaiCompatible is a Chat Completions upstream: a vendor's
// OpenAI-compatible API (DeepSeek, Kimi, GLM, Qwen, OpenRouter...) or a
// local server (Ollama, vLLM, llama.cpp). api_url is the root the vendor
// documents for OpenAI SDKs (the one before /chat/completions); the key is
// optional for servers that take none.
var openaiCompatible = Spec{
	Type:           "openai-compatible",
	Display:        "OpenAI-compatible Chat Completions API (DeepSeek, Kimi, GLM, OpenRouter, Ollama, vLLM...)",
	Platform:       PlatformCompat,
	Credential:     APIKey,
	SecretKey:      "api_key",
	URLRequired:    true,
	SecretOptional: true,
	ListsModels:    true,
	NoTokenCount:   true,
	BaseURL:        trimBase(""),
	Authenticate: func(h http.Header, _ Account, secret string) {
		if secret != "" {
			bearer(h, secret)
		}
	},
	// The model list: free, and served by every such API we know.
	Probe: func(ctx context.Context, a Account, secret string) (*http.Request, error) {
		req, err := get(ctx, trimBase("")(a.APIURL)+"/models")
		if err != nil {
			return nil, err
		}
		if secret != "" {
			bearer(req.Header, secret)
		}
		return req, nil
	},
}
