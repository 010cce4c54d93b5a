package relay

import (
	"context"
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// claudeAdapter passes Anthropic Messages requests through to the Claude pool.
type claudeAdapter struct {
	// path is the upstream API path ("/v1/messages", ".../count_tokens", "/v1/models").
	path string
	now  func() time.Time
}

func (claudeAdapter) platform() string { return "claude" }
func (a claudeAdapter) newStream(c *call, _ *Upstream) streamer {
	return &claudeStream{model: c.model}
}

func (a claudeAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	u := up.baseURL() + a.path
	if q := c.req.URL.RawQuery; q != "" {
		u += "?" + q
	}
	method := http.MethodPost
	if c.body == nil {
		method = http.MethodGet
	}
	req, err := newUpstreamRequest(ctx, c, method, u, c.body)
	if err != nil {
		return nil, err
	}
	copyRequestHeader(req.Header, c.req.Header, claudeRequestHeaders)
	up.authenticate(req.Header, secret)
	return req, nil
}

func (a claudeAdapter) classify(c *call, status int, h http.Header, body []byte) provider.Verdict {
	return anthropic.Classify(status, h, body, c.model, a.now())
}

func (claudeAdapter) decode(c *call, _ *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if !provider.LooksLikeJSONObject(body) {
		return nil, provider.Usage{}, errMalformed
	}
	u, _ := anthropic.ParseUsage(body)
	return body, u, nil
}

// claudeStream watches a Messages stream that passes through unchanged.
type claudeStream struct {
	model string
	u     provider.Usage
}

func (s *claudeStream) observe(ev *sse.Event) provider.EventClass {
	return anthropic.ClassifyEvent(ev.Name, ev.Data, &s.u)
}
func (s *claudeStream) transform(dst []byte, ev *sse.Event) []byte { return append(dst, ev.Raw...) }
func (s *claudeStream) passthrough() bool                          { return true }
func (s *claudeStream) errVerdict(ev *sse.Event) provider.Verdict {
	return anthropic.ClassifyStreamError(ev.Data, s.model)
}
func (s *claudeStream) end(dst []byte) []byte { return dst }
func (s *claudeStream) needsTerminal() bool   { return true }
func (s *claudeStream) usage() provider.Usage { return s.u }

func (r *Relay) handleMessages(w http.ResponseWriter, req *http.Request, d dialect) {
	ad := claudeAdapter{path: "/v1/messages", now: r.now}
	c := r.intake(w, req, d, ad, intakeOpts{body: jsonObject})
	if c == nil {
		return
	}
	in := anthropic.Inspect(c.body, req.Header)
	if in.Repeated != "" {
		r.refuseRepeated(c, in.Repeated)
		return
	}
	c.model, c.stream, c.sessionKey, c.maxTokens = in.Model, in.Stream, in.SessionKey, in.MaxTokens
	r.plan(c, clientSides["anthropic"])
	r.serve(c)
}

func (r *Relay) handleCountTokens(w http.ResponseWriter, req *http.Request, d dialect) {
	ad := claudeAdapter{path: "/v1/messages/count_tokens", now: r.now}
	c := r.intake(w, req, d, ad, intakeOpts{body: jsonObject})
	if c == nil {
		return
	}
	in := anthropic.Inspect(c.body, req.Header)
	if in.Repeated != "" {
		r.refuseRepeated(c, in.Repeated)
		return
	}
	c.model, c.sessionKey = in.Model, in.SessionKey
	r.serveCount(c, clientSides["anthropic"], anthropicCount)
}

func (r *Relay) handleClaudeModels(w http.ResponseWriter, req *http.Request, d dialect) {
	ad := claudeAdapter{path: "/v1/models", now: r.now}
	c := r.intake(w, req, d, ad, intakeOpts{})
	if c == nil {
		return
	}
	r.serve(c)
}
