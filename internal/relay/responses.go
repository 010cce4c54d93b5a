package relay

import (
	"context"
	"net/http"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// responsesAdapter passes OpenAI Responses requests (Codex) through to the
// openai-responses pool.
type responsesAdapter struct {
	now   func() time.Time
	quota QuotaObserver
}

func (responsesAdapter) platform() string { return "openai" }
func (a responsesAdapter) newStream(c *call, _ *Upstream) streamer {
	return &responsesStream{now: a.now, quota: a.quota, account: c.account}
}

func (responsesAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	return openaiPost(ctx, c, up, secret, "/responses")
}

// openaiPost is the passthrough POST of c's body to path under an OpenAI
// account's base URL, with the client's OpenAI headers and the account's
// credential (Responses, compact, input_tokens).
func openaiPost(ctx context.Context, c *call, up *Upstream, secret, path string) (*http.Request, error) {
	req, err := newUpstreamRequest(ctx, c, http.MethodPost, up.baseURL()+path, c.body)
	if err != nil {
		return nil, err
	}
	copyRequestHeader(req.Header, c.req.Header, openaiRequestHeaders)
	up.authenticate(req.Header, secret)
	return req, nil
}

func (a responsesAdapter) classify(c *call, status int, h http.Header, body []byte) provider.Verdict {
	return openai.Classify(status, h, body, a.now())
}

func (responsesAdapter) decode(c *call, _ *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if !gjson.ValidBytes(body) {
		return nil, provider.Usage{}, errMalformed
	}
	u, _ := openai.ParseUsage(body)
	return body, u, nil
}

type responsesStream struct {
	now     func() time.Time
	u       provider.Usage
	quota   QuotaObserver
	account string
}

func (s *responsesStream) observe(ev *sse.Event) provider.EventClass {
	observeCodexEvent(s.quota, s.account, ev.Name, ev.Data)
	return openai.ClassifyEvent(ev.Name, ev.Data, &s.u)
}
func (s *responsesStream) transform(dst []byte, ev *sse.Event) []byte { return append(dst, ev.Raw...) }
func (s *responsesStream) passthrough() bool                          { return true }
func (s *responsesStream) errVerdict(ev *sse.Event) provider.Verdict {
	return openai.ClassifyStreamError(ev.Data, s.now())
}
func (s *responsesStream) end(dst []byte) []byte { return dst }
func (s *responsesStream) needsTerminal() bool   { return true }
func (s *responsesStream) usage() provider.Usage { return s.u }

// responsesRead are the top-level members the Responses route reads (model
// and stream here, prompt_cache_key for the session key, max_output_tokens
// for a budget's estimate).
var responsesRead = [...]string{"model", "stream", "prompt_cache_key", "max_output_tokens"}

func (r *Relay) handleResponses(w http.ResponseWriter, req *http.Request, d dialect) {
	c := r.intake(w, req, d, responsesAdapter{now: r.now, quota: r.quota}, intakeOpts{body: jsonObject})
	if c == nil {
		return
	}
	var vals [len(responsesRead)][]byte
	if rep, _ := provider.PickMembers(c.body, responsesRead[:], vals[:]); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	c.model, c.stream = gjson.ParseBytes(vals[0]).Str, gjson.ParseBytes(vals[1]).Bool()
	c.maxTokens = gjson.ParseBytes(vals[3]).Int()
	if k := openai.SessionKey(c.body, req.Header); k != "" {
		c.sessionKey = "openai:" + k
	}
	r.plan(c, clientSides["responses"])
	if c.conv != nil && compactionTriggered(c.body) {
		c.conv.side = triggerSide(r.now) // compact_trigger.go
	}
	r.serve(c)
}

// handleInputTokens serves POST /v1/responses/input_tokens, the Responses
// API's token count (count.go): passed through to openai-responses
// accounts (the ChatGPT backend has none), converted for the route's other
// targets, else estimated.
func (r *Relay) handleInputTokens(w http.ResponseWriter, req *http.Request, d dialect) {
	c := r.intake(w, req, d, inputTokensAdapter{responsesAdapter{now: r.now}}, intakeOpts{body: jsonObject})
	if c == nil {
		return
	}
	// A conversion reads every member: no key may come twice.
	if rep, _ := provider.PickMembers(c.body, nil, nil); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	c.model = gjson.GetBytes(c.body, "model").Str
	r.serveCount(c, clientSides["responses"], responsesCount)
}

// handleOpenAIModels lists models from the accounts with the public model
// list: accounts whose type has none (accounttype.Spec.NoModelList, the
// ChatGPT backend's) are skipped (their backend's list needs a
// client version and has its own shape, and their models serve only the
// Responses route). A pool of only such accounts answers 501, as the Gemini
// model routes do for Code Assist accounts.
func (r *Relay) handleOpenAIModels(w http.ResponseWriter, req *http.Request, d dialect) {
	compat := compatModels(r.Upstreams())
	c := r.intake(w, req, d, modelsAdapter{compat: compat}, intakeOpts{})
	if c == nil {
		return
	}
	exclude, without, listing := modelListers(r.Upstreams(), accounttype.PlatformOpenAI)
	if listing == 0 && len(compat) > 0 {
		// Only openai-compatible accounts name models here: the list is theirs.
		c.resp.Header().Set("Content-Type", "application/json")
		c.resp.whole(http.StatusOK, append(appendModelEntries([]byte(`{"object":"list","data":[`), compat), "]}"...))
		r.finish(c)
		return
	}
	if listing == 0 && len(exclude) > 0 {
		r.writeError(c, http.StatusNotImplemented, noModelList(accounttype.PlatformOpenAI, without)+
			" (ChatGPT subscriptions) and serve only the Responses API (POST /openai/v1/responses); name the model there directly")
		r.finish(c)
		return
	}
	c.exclude = exclude
	r.serve(c)
}

// modelsAdapter forwards GET /models to the openai pool's accounts that
// have a public model list (openai-responses), and adds the models
// openai-compatible accounts serve by name (compatModels) to the answer.
type modelsAdapter struct {
	responsesAdapter
	compat []string
}

func (modelsAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.baseURL()+"/models", nil)
	if err != nil {
		return nil, err
	}
	copyRequestHeader(req.Header, c.req.Header, openaiRequestHeaders)
	up.authenticate(req.Header, secret)
	return req, nil
}

func (a modelsAdapter) decode(c *call, _ *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if !gjson.ValidBytes(body) {
		return nil, provider.Usage{}, errMalformed
	}
	if len(a.compat) > 0 && gjson.GetBytes(body, "data").IsArray() {
		out, err := withCompatModels(body, a.compat)
		return out, provider.Usage{}, err
	}
	return body, provider.Usage{}, nil
}

// inputTokensAdapter passes a Responses token count through to an
// openai-responses account.
type inputTokensAdapter struct{ responsesAdapter }

func (inputTokensAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	return openaiPost(ctx, c, up, secret, "/responses/input_tokens")
}

func (inputTokensAdapter) decode(c *call, _ *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if !gjson.ValidBytes(body) {
		return nil, provider.Usage{}, errMalformed
	}
	return body, provider.Usage{}, nil
}
