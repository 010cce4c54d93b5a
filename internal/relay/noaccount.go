package relay

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// writeNoAccount answers a call no account of its pool could take: a 503
// saying why, when the first one comes back (Retry-After), and, for a pool
// with no account at all, how to add one.
func (r *Relay) writeNoAccount(c *call, e *scheduler.NoAccountError) {
	msg := e.Error()
	if e.Configured == 0 {
		msg += r.addAccountHint()
		if _, chat := c.dialect.(openaiDialect); chat && c.platform() == accounttype.PlatformClaude {
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
// account while OpenAI accounts exist: its model's name places it in no
// pool, so it went to the Chat route's own (Claude); the OpenAI accounts
// serve OpenAI's model names, or what a route sends them. "" without
// OpenAI accounts.
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
	return ". A Chat Completions request for a model whose name places it in no pool is served by Claude accounts; this relay's " +
		strings.Join(types, " and ") + " accounts serve OpenAI's models (gpt-*, o<digit>*, codex-*), or any model a [[routes]] entry sends them"
}
