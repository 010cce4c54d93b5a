package relay

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
)

// Token counts across the protocol matrix (docs/matrix.md, "Counting
// tokens"). Each dialect has a count method: Messages' count_tokens,
// Gemini's countTokens, Responses' input_tokens. A count is served like
// any call, by the route's targets: a target of the route's own API passes
// it through, a target of another API gets the request converted and sent
// to that API's count method, and the number comes back in the client's
// shape. Accounts whose upstream has no count method
// (accounttype.Spec.NoTokenCount: the ChatGPT backend, Chat Completions
// vendors) are left out; when no account of any target can count, the
// answer is the relay's estimate (convert.EstimateTokens), marked by the
// X-Ccrelay-Token-Count: estimate header.

// countAPI is an upstream API's count method.
type countAPI struct {
	// path is the method under the account's base URL (unless url is set).
	path string
	// keep are the top-level members of the API's encoded request the
	// method takes; it refuses the others (max_tokens, stream...).
	keep []string
	// url, when set, builds the URL and body from the kept members
	// (Gemini: the model is in the path, Code Assist has an envelope).
	url func(ctx context.Context, a *convAdapter, c *call, up *Upstream, secret string) (string, []byte, error)
	// total is the answer's member that holds the count.
	total string
}

var (
	claudeCounter = &countAPI{path: "/v1/messages/count_tokens", total: "input_tokens",
		keep: []string{"model", "messages", "system", "tools", "tool_choice", "thinking"}}
	openaiCounter = &countAPI{path: "/responses/input_tokens", total: "input_tokens",
		keep: []string{"model", "input", "instructions", "tools", "tool_choice", "reasoning", "text", "parallel_tool_calls", "truncation"}}
	geminiCounter = &countAPI{url: geminiCountURL, total: "totalTokens",
		keep: []string{"contents", "systemInstruction", "tools"}}
)

// anthropicCount is count_tokens' answer, without its closing brace.
func anthropicCount(n int64) []byte {
	return strconv.AppendInt([]byte(`{"input_tokens":`), n, 10)
}

// geminiCount is countTokens' answer, without its closing brace.
func geminiCount(n int64) []byte {
	return strconv.AppendInt([]byte(`{"totalTokens":`), n, 10)
}

// responsesCount is input_tokens' answer, without its closing brace.
func responsesCount(n int64) []byte {
	return strconv.AppendInt([]byte(`{"object":"response.input_tokens","input_tokens":`), n, 10)
}

// serveCount serves the token count c: answer writes the number in the
// client's shape, side is the route's client side. It is served by the
// route's targets whose pool has an account able to count it, in order;
// when none has, by the estimate. A route's own pool without any account
// is served as usual (its no-account error), as for every other call.
func (r *Relay) serveCount(c *call, side *clientSide, answer func(n int64) []byte) {
	c.count = answer
	r.plan(c, side)
	if len(c.targets) == 0 {
		home := target{platform: c.native.platform()}
		if r.canCount(c, &home) || !r.hasAccount(home.platform) {
			r.serve(c)
			return
		}
	} else {
		kept := c.targets[:0]
		for _, t := range c.targets {
			if r.canCount(c, &t) {
				kept = append(kept, t)
			}
		}
		if c.targets = kept; len(kept) > 0 {
			r.serve(c)
			return
		}
	}
	if c.conv == nil {
		c.conv = &conversion{side: side, model: c.model}
	}
	r.estimateCount(c)
}

// canCount reports whether target t has an account that can count c: one
// of its pool, not outside it (outside leaves out the accounts without a
// count method), whose API has a count method the relay can convert to.
func (r *Relay) canCount(c *call, t *target) bool {
	if !c.passes(t.platform) {
		if api := upstreamAPIs[t.platform]; api == nil || api.count == nil || c.conv == nil {
			return false
		}
	}
	out := r.outside(c, t)
	for _, up := range r.Upstreams() {
		if up != nil && up.Account.Platform == t.platform && !slices.Contains(out, up.Account.ID) {
			return true
		}
	}
	return false
}

// hasAccount reports whether the pool of platform has any account.
func (r *Relay) hasAccount(platform string) bool {
	for _, up := range r.Upstreams() {
		if up != nil && up.Account.Platform == platform {
			return true
		}
	}
	return false
}

// noCount is the accounts of t's pool whose upstream has no count method.
func (r *Relay) noCount(t *target) []string {
	var out []string
	for _, up := range r.Upstreams() {
		if up != nil && up.Account.Platform == t.platform && up.TypeSpec().NoTokenCount {
			out = append(out, up.Account.ID)
		}
	}
	return out
}

// estimateCount answers the count c with the relay's estimate,
// convert.EstimateTokens, said so in the X-Ccrelay-Token-Count header
// (docs/matrix.md). No account is used.
func (r *Relay) estimateCount(c *call) {
	if !r.admit(c) {
		r.finish(c)
		return
	}
	req, err := c.conv.decoded(c.body)
	if err != nil {
		r.refuseConversion(c, "", err)
		r.finish(c)
		return
	}
	n := convert.EstimateTokens(req)
	h := c.resp.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Ccrelay-Token-Count", "estimate")
	c.resp.whole(http.StatusOK, append(c.count(n), '}'))
	r.finish(c)
}

// countBody is the request encoded for a count method: the members it
// takes, in the encoder's order.
func countBody(body []byte, keep []string) []byte {
	out := make([]byte, 0, len(body))
	out = append(out, '{')
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if slices.Contains(keep, k.Str) {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(append(append(out, k.Raw...), ':'), v.Raw...)
		}
		return true
	})
	return append(out, '}')
}

// decodeCount is a count method's answer in the client's shape.
func (a *convAdapter) decodeCount(c *call, body []byte) ([]byte, provider.Usage, error) {
	n := gjson.GetBytes(body, a.count.total)
	if n.Type != gjson.Number {
		return nil, provider.Usage{}, errMalformed
	}
	return append(c.count(n.Int()), '}'), provider.Usage{}, nil
}

// geminiCountURL is a converted count's URL and body on a Gemini account:
// the public API's models/{model}:countTokens with the request as its
// generateContentRequest (so the system instruction and tools count too),
// or Code Assist's countTokens, which takes the contents alone.
func geminiCountURL(_ context.Context, a *convAdapter, _ *call, up *Upstream, _ string) (string, []byte, error) {
	call := gemini.Call{Version: "v1beta", Model: a.model, Method: gemini.MethodCountTokens}
	if codeAssist(up) {
		body, err := gemini.WrapCodeAssist(call, "", countBody(a.body, []string{"contents"}))
		return gemini.CodeAssistURL(up.Config.APIURL, call), body, err
	}
	b := make([]byte, 0, len(a.body)+len(a.model)+48)
	b = append(b, `{"generateContentRequest":{"model":`...)
	b = provider.AppendJSONString(b, "models/"+a.model)
	if inner := bytes.TrimSpace(a.body[1 : len(a.body)-1]); len(inner) > 0 {
		b = append(append(b, ','), inner...)
	}
	return gemini.PublicURL(up.Config.APIURL, call), append(b, "}}"...), nil
}
