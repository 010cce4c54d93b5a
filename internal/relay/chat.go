package relay

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
)

// handleChat serves OpenAI Chat Completions. No Claude, OpenAI Responses or
// Gemini account speaks it, so every target converts (matrix.go): the body
// is decoded once into convert's neutral form and encoded for each target's
// API. A model the name places in no pool goes to the Claude accounts, as
// it always has.
func (r *Relay) handleChat(w http.ResponseWriter, req *http.Request, d dialect) {
	c := r.intake(w, req, d, nil, intakeOpts{body: jsonObject, home: accounttype.PlatformClaude})
	if c == nil {
		return
	}
	// The decoder reads every member, so no key may come twice.
	if rep, _ := provider.PickMembers(c.body, nil, nil); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	side := clientSides["openai"]
	c.conv = &conversion{side: side}
	in, err := c.conv.decoded(c.body)
	if err != nil {
		c.model = gjson.GetBytes(c.body, "model").Str
		r.refuseConversion(c, "", err)
		r.finish(c)
		return
	}
	c.model, c.stream, c.conv.model = in.Model, in.Stream, in.Model
	r.plan(c, side)
	keyChat(c, in)
	r.serve(c)
}

// keyChat sets a Chat call's session key and, for a key with a dollar
// budget, its output allowance. The session key pins a conversation to one
// account: the client's own prompt_cache_key (OpenAI's hint for "these
// requests share a prefix") comes first; otherwise the request is keyed as
// the Messages route keys the Messages body it converts to (the encoder
// keeps the system prompt verbatim, so every turn of a conversation hashes
// alike). That body is kept for a Claude target, which would encode the
// same.
func keyChat(c *call, in *convert.Request) {
	if in.CacheKey != "" {
		c.sessionKey = "chat:" + in.CacheKey
	}
	budget := c.key.HasUSDBudget()
	if c.sessionKey != "" && !budget {
		return
	}
	model := in.Model
	for i := range c.targets {
		if c.targets[i].platform == accounttype.PlatformClaude {
			model = c.targets[i].model
			break
		}
	}
	body, err := c.conv.encode(upstreamAPIs[accounttype.PlatformClaude], model)
	if err != nil {
		// Claude would refuse it (a Claude-only limit): a Claude target
		// answers that when it is tried; the others may serve it. The
		// client's session header still keys it.
		body = []byte("{}")
	}
	if c.sessionKey == "" {
		c.sessionKey = anthropic.SessionKey(body, c.req.Header)
	}
	if budget {
		c.maxTokens = in.MaxTokens
		if n := gjson.GetBytes(body, "max_tokens").Int(); n > 0 {
			c.maxTokens = n
		}
	}
}
