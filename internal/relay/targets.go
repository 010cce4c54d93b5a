package relay

import (
	"slices"
	"strings"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/routing"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// targetOrder is the order c tries its targets in: as routed, except that a
// conversation bound to an account of a later target starts there (it stays
// on the target that served it while that target works: its prompt cache
// is there).
func (r *Relay) targetOrder(c *call, targets []target) []target {
	if len(targets) < 2 || c.sessionKey == "" {
		return targets
	}
	b, ok := r.sched.Session(c.sessionKey)
	if !ok {
		return targets
	}
	up := r.accountUpstream(b.AccountID)
	if up == nil {
		return targets
	}
	for i := 1; i < len(targets); i++ {
		t := &targets[i]
		if t.platform == up.Account.Platform && (t.group == "" || slices.Contains(up.Config.Groups, t.group)) {
			out := make([]target, 0, len(targets))
			out = append(out, *t)
			out = append(out, targets[:i]...)
			return append(out, targets[i+1:]...)
		}
	}
	return targets
}

// enter readies c for target t: its adapter (prepare, on a routed call),
// and the served model and target name the records show.
// False: prepare answered the client (a conversion it refused).
func (r *Relay) enter(c *call, t *target) bool {
	if len(c.targets) > 0 {
		if !r.prepare(c, t) {
			return false
		}
		c.target = t.String()
	}
	c.served = t.model
	return true
}

// outside is the configured accounts target t may not use for c: those
// outside its group, for a token count those without a count method
// (count.go), and in the compat pool those whose models do not list the
// model t sends (each openai-compatible account serves the models it
// lists).
func (r *Relay) outside(c *call, t *target) []string {
	out := r.outsideGroup(t.group)
	if c.count != nil {
		out = append(out, r.noCount(t)...)
	}
	if t.platform != accounttype.PlatformCompat {
		return out
	}
	for _, up := range r.Upstreams() {
		if up != nil && up.Account.Platform == accounttype.PlatformCompat && !routing.Serves(up.Config.Models, t.model) {
			out = append(out, up.Account.ID)
		}
	}
	return out
}

// accountUpstream is the configured upstream of the account id, nil if none.
func (r *Relay) accountUpstream(id string) *Upstream {
	for _, up := range r.Upstreams() {
		if up != nil && up.Account.ID == id {
			return up
		}
	}
	return nil
}

// outsideGroup is the configured accounts not in group (nil for "": the
// whole pool).
func (r *Relay) outsideGroup(group string) []string {
	if group == "" {
		return nil
	}
	var out []string
	for _, up := range r.Upstreams() {
		if up != nil && !slices.Contains(up.Config.Groups, group) {
			out = append(out, up.Account.ID)
		}
	}
	return out
}

// noteFallback records that target t had no account to serve c, so the
// call falls through to the next target.
func (r *Relay) noteFallback(c *call, t *target, e *scheduler.NoAccountError) {
	r.log.Info("route target has no available account; trying the next", "target", t.String(), "reason", e.Error())
	if c.fallback != "" {
		c.fallback += "; "
	}
	c.fallback += t.String() + ": " + e.Error()
}

// String names the target as routes do: platform or group, then ":model".
func (t *target) String() string {
	if t.name != "" {
		return t.name
	}
	var b strings.Builder
	if t.group != "" {
		b.WriteString(t.group)
	} else {
		b.WriteString(t.platform)
	}
	if t.model != "" {
		b.WriteString(":" + t.model)
	}
	return b.String()
}

// plan sets c's targets from its model and the routes in force
// (internal/routing: the first [[routes]] entry whose globs match, else the
// model's own pool by name, else the route's own). A call whose only target
// is the pool its route passes through to, model unchanged, gets none: that
// is today's traffic, served by the route's passthrough adapter with
// nothing added. A route without a passthrough always gets targets. A
// [models] alias names the model that is routed and sent (an existing
// "gpt-4o" = "claude-sonnet-4-5" keeps Chat requests on Claude); a key's
// models rule has already judged the model asked. side is the route's
// client side for conversions (nil: the route cannot convert); a
// conversion the handler started is kept.
func (r *Relay) plan(c *call, side *clientSide) {
	model := c.model
	if m, ok := r.modelMap()[model]; ok {
		model = m
	}
	ts := r.routesTable().Targets(model, c.home)
	if len(ts) == 0 && c.native == nil {
		ts = []routing.Target{{Platform: c.home}}
	}
	aliased := side != nil && side.aliased
	if len(ts) == 0 || len(ts) == 1 && c.passes(ts[0].Platform) && ts[0].Group == "" && c.sends(ts[0], model, aliased) == c.model {
		return
	}
	c.targets = make([]target, len(ts))
	for i, t := range ts {
		c.targets[i] = target{platform: t.Platform, group: t.Group, model: c.sends(t, model, aliased), name: t.String()}
	}
	if side != nil && c.conv == nil {
		c.conv = &conversion{side: side, model: c.model}
	}
}

// sends is the model target t sends: its own, else the routed model (after
// the [models] aliases), except that a passthrough sends the client's body
// as it is unless the route's aliases rename (aliased).
func (c *call) sends(t routing.Target, routed string, aliased bool) string {
	switch {
	case t.Model != "":
		return t.Model
	case c.passes(t.Platform) && !aliased:
		return c.model
	}
	return routed
}
