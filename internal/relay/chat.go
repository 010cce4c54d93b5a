package relay

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
)

// handleChat serves OpenAI Chat Completions. openai-compatible accounts
// speak it: a model they list passes through to them (chatPassthrough,
// compat.go). No Claude, OpenAI Responses or Gemini account does, so every
// other target converts (matrix.go): the body is decoded once into
// convert's neutral form and encoded for each target's API. A model no pool
// claims goes to the Claude accounts, as it always has.
func (r *Relay) handleChat(w http.ResponseWriter, req *http.Request, d dialect) {
	c := r.intake(w, req, d, chatPassthrough{now: r.now}, intakeOpts{body: jsonObject, home: accounttype.PlatformClaude})
	if c == nil {
		return
	}
	// The decoder reads every member, so no key may come twice.
	var vals [len(chatRead)][]byte
	if rep, _ := provider.PickMembers(c.body, chatRead[:], vals[:]); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	c.model, c.stream = gjson.ParseBytes(vals[0]).Str, gjson.ParseBytes(vals[1]).Bool()
	side := clientSides["openai"]
	r.plan(c, side)
	if len(c.targets) == 0 {
		// Passed through to compat accounts: their API judges the body (it
		// may take what a conversion refuses, n > 1 or logprobs).
		cv := &conversion{side: side}
		if in, err := cv.decoded(c.body); err == nil {
			c.conv = cv
			keyChat(c, in)
			c.conv = nil
		}
		r.serve(c)
		return
	}
	in, err := c.conv.decoded(c.body)
	if err != nil {
		r.refuseConversion(c, "", err)
		r.finish(c)
		return
	}
	c.model, c.stream, c.conv.model = in.Model, in.Stream, in.Model
	keyChat(c, in)
	r.serve(c)
}

// chatRead are the top-level members the Chat route reads before it
// decodes (model and stream, for routing).
var chatRead = [...]string{"model", "stream"}

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
