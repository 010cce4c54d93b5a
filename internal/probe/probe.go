// Package probe makes the smallest real call that proves an account works:
// its token refreshes (OAuth) and the provider accepts it, through the
// account's own proxy and URL. `ccrelay accounts test` uses it.
package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
	"github.com/ccrelay/ccrelay/internal/relay"
)

// Result is the outcome of one probe. Error never holds a secret.
type Result struct {
	AccountID string        `json:"account"`
	OK        bool          `json:"ok"`
	Status    int           `json:"status,omitempty"`
	Latency   time.Duration `json:"latency_ns"`
	Step      string        `json:"step"` // "token" or "request"
	Error     string        `json:"error,omitempty"`
}

// Run probes one account.
func Run(ctx context.Context, up *relay.Upstream) Result {
	res := Result{AccountID: up.Config.ID, Step: "token"}
	start := time.Now()
	defer func() { res.Latency = time.Since(start) }()
	secret, err := up.Token.Token(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Step = "request"
	req, err := request(ctx, up.Config, secret)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp, err := up.Client.Do(req)
	if err != nil {
		res.Error = scrub(err.Error(), secret)
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	res.Status = resp.StatusCode
	if resp.StatusCode/100 == 2 {
		res.OK = true
		return res
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	res.Error = scrub(fmt.Sprintf("upstream answered %d: %s", resp.StatusCode, msg), secret)
	return res
}

func scrub(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

func request(ctx context.Context, ac config.AccountConfig, secret string) (*http.Request, error) {
	switch ac.Type {
	case config.TypeClaudeAPI, config.TypeClaudeOAuth:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, anthropic.BaseURL(ac.APIURL)+"/v1/models", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Anthropic-Version", anthropic.Version)
		if ac.Type == config.TypeClaudeOAuth {
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Anthropic-Beta", anthropic.OAuthBeta)
		} else {
			req.Header.Set("X-Api-Key", secret)
		}
		return req, nil
	case config.TypeGeminiAPI:
		base := strings.TrimRight(ac.APIURL, "/")
		if base == "" {
			base = gemini.PublicBaseURL
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1beta/models?pageSize=1", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Goog-Api-Key", secret)
		return req, nil
	case config.TypeGemini:
		base := strings.TrimSuffix(strings.TrimRight(ac.APIURL, "/"), "/v1internal")
		if base == "" {
			base = gemini.CodeAssistBaseURL
		}
		body := `{"metadata":{"ideType":"IDE_UNSPECIFIED","platform":"PLATFORM_UNSPECIFIED","pluginType":"GEMINI"}}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1internal:loadCodeAssist", bytes.NewReader([]byte(body)))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	case config.TypeOpenAIResponses:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, openai.BaseURL(ac.APIURL)+"/models", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		return req, nil
	}
	return nil, fmt.Errorf("unknown account type %q", ac.Type)
}
