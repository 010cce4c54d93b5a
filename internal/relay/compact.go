package relay

import (
	"context"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
)

// compactAdapter passes Codex's remote compaction (POST
// /v1/responses/compact) through to the openai pool: {base}/responses/compact
// on both account kinds, the API's (https://api.openai.com/v1) and the
// ChatGPT backend's (https://chatgpt.com/backend-api/codex), which is the URL
// Codex itself calls with a ChatGPT sign-in (codex-api endpoint/compact.rs:
// the provider's base URL plus "responses/compact"). The request is one JSON
// body ({model, input, instructions, tools, parallel_tool_calls, reasoning,
// text}) and so is the answer ({id, object:"response.compaction", output:
// [items ending in a {"type":"compaction","encrypted_content":...} item],
// usage}); neither streams, so openai.CodexTransport leaves both alone.
type compactAdapter struct{ responsesAdapter }

func (compactAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	return openaiPost(ctx, c, up, secret, "/responses/compact")
}

// compactRead are the top-level members the compact route reads.
var compactRead = [...]string{"model", "prompt_cache_key"}

// handleCompact serves POST /v1/responses/compact: the same intake, policy,
// routing and failover as POST /v1/responses, a JSON answer whose usage is
// recorded like any other. An OpenAI account passes it through; an account
// of another API writes a summary (compact_convert.go).
func (r *Relay) handleCompact(w http.ResponseWriter, req *http.Request, d dialect) {
	c := r.intake(w, req, d, compactAdapter{responsesAdapter{now: r.now, quota: r.quota}}, intakeOpts{body: jsonObject})
	if c == nil {
		return
	}
	var vals [len(compactRead)][]byte
	if rep, _ := provider.PickMembers(c.body, compactRead[:], vals[:]); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	c.model = gjson.ParseBytes(vals[0]).Str
	if k := openai.SessionKey(c.body, req.Header); k != "" {
		c.sessionKey = "openai:" + k
	}
	r.plan(c, compactSide(c.body, r.now))
	r.serve(c)
}
