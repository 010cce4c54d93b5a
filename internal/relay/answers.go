package relay

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// The answers a failed call ends with: no account to serve it, a
// relay-made error, or an upstream's error answer handed on.

func (r *Relay) writeNoAccount(c *call, e *scheduler.NoAccountError) {
	msg := e.Error()
	if e.Configured == 0 {
		msg += r.addAccountHint()
		if _, chat := c.ad.(*chatAdapter); chat {
			msg += r.chatWithoutClaude()
		}
	}
	if !e.RetryAt.IsZero() {
		secs := int(time.Until(e.RetryAt).Seconds()) + 1
		if secs < 1 {
			secs = 1
		}
		c.resp.Header().Set("Retry-After", strconv.Itoa(secs))
		msg += fmt.Sprintf("; the first one comes back at %s", e.RetryAt.UTC().Format(time.RFC3339))
	}
	r.writeError(c, http.StatusServiceUnavailable, msg)
}

// addAccountHint tells the operator of a relay without accounts how to add
// one: a relay that follows its config file applies the change within
// seconds; one without a file to follow needs a file and a restart.
func (r *Relay) addAccountHint() string {
	const how = "an [[accounts]] entry (see config.example.toml; `ccrelay login claude|gemini|codex` writes one)"
	if r.configFollowed.Load() {
		return "; add " + how + " to the config file: this relay applies it within seconds"
	}
	return "; this relay runs without a config file to follow: create one (`ccrelay config init`), add " + how + ", and restart ccrelay serve"
}

// chatWithoutClaude explains a Chat Completions request that found no Claude
// account while OpenAI accounts exist: they serve the Responses API only
// (codex-oauth cannot take Chat Completions at all), so the client must
// switch routes or the operator add a Claude account. "" without OpenAI
// accounts.
func (r *Relay) chatWithoutClaude() string {
	var types []string
	for _, up := range r.Upstreams() {
		if up != nil && up.Account.Platform == accounttype.PlatformOpenAI && !slices.Contains(types, up.Config.Type) {
			types = append(types, up.Config.Type)
		}
	}
	if len(types) == 0 {
		return ""
	}
	return ". Chat Completions is served by Claude accounts (the request is converted to Anthropic Messages); this relay's " +
		strings.Join(types, " and ") + " accounts serve only the Responses API: POST /openai/v1/responses"
}

// writeError writes a relay-made error in the route's shape, or as an error
// event when the stream has begun.
func (r *Relay) writeError(c *call, status int, msg string) {
	d := c.dialect
	if c.resp.started {
		c.resp.failed(status, msg)
		c.resp.flushWrite(d.streamError(status, msg))
		return
	}
	c.resp.Header().Set("Content-Type", "application/json")
	c.resp.whole(status, d.errorBody(status, msg))
	c.resp.errMsg = msg
}

// writeAnswer hands an upstream error answer to the client with its wording
// intact (clients match on it) and every secret removed.
func (r *Relay) writeAnswer(c *call, a *upstreamAnswer) {
	body := r.table.Load().redact.body(a.body)
	if a.foreign {
		msg := upstreamMessage(body)
		if c.resp.started {
			c.resp.failed(a.status, "upstream "+strconv.Itoa(a.status))
			c.resp.flushWrite(c.dialect.streamError(a.status, msg))
			return
		}
		c.resp.Header().Set("Content-Type", "application/json")
		c.resp.whole(a.status, c.dialect.errorBody(a.status, msg))
		c.resp.errMsg = "upstream " + strconv.Itoa(a.status)
		return
	}
	if c.resp.started {
		c.resp.failed(a.status, "upstream "+strconv.Itoa(a.status))
		c.resp.flushWrite(c.dialect.streamError(a.status, string(bytes.TrimSpace(body))))
		return
	}
	copyResponseHeader(c.resp.Header(), a.header)
	c.resp.whole(a.status, body)
	c.resp.errMsg = "upstream " + strconv.Itoa(a.status)
}
