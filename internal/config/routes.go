package config

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ccrelay/ccrelay/internal/accounttype"
)

// RouteConfig is one [[routes]] entry: which pools serve the models it
// matches, in order. New.
type RouteConfig struct {
	// Models are globs (path.Match syntax: `*`, `?`, `[a-z]`; `*` does not
	// match "/") of the model a request names, after the [models] aliases.
	// The first route with a matching glob decides. Required.
	Models []string `toml:"models"`
	// To are the targets, tried in order: a platform ("claude", "openai",
	// "gemini", "compat") or an account group, each optionally ":model" to send that
	// model instead (e.g. "openai:gpt-5-codex"). Required.
	To []string `toml:"to"`
}

// RoutePlatforms are the platforms a route target may name, in
// documentation order.
var RoutePlatforms = []string{accounttype.PlatformClaude, accounttype.PlatformOpenAI, accounttype.PlatformGemini, accounttype.PlatformCompat}

// RouteTarget is one checked entry of a route's `to`.
type RouteTarget struct {
	// Platform is the pool that serves the target ("claude", "openai",
	// "gemini"); for a group, the one platform of the group's accounts.
	Platform string
	// Group is the account group the target names; "" for a whole platform.
	Group string
	// Model replaces the request's model; "" keeps it.
	Model string
}

// SplitRouteTarget splits a `to` entry at its first colon into the pool (a
// platform or a group) and the model ("" when there is no colon). A group
// named with a colon cannot be a target; a model may contain colons.
func SplitRouteTarget(s string) (pool, model string) {
	pool, model, _ = strings.Cut(s, ":")
	return pool, model
}

// ResolveRoutes checks routes against the accounts and returns the targets
// of each route (same index as routes). Problems name the key they are in
// ("routes[0].to"); Parse adds the line. A route is refused when a list is
// empty, a glob is malformed, a target is malformed or names neither a
// platform nor a group of any account, a group's accounts span several
// platforms, or no enabled account serves a target: a route is a promise
// that a target can serve, so a target that never could is an error here,
// not a 503 at request time.
func ResolveRoutes(routes []RouteConfig, accounts []AccountConfig) ([][]RouteTarget, []Problem) {
	var ps []Problem
	out := make([][]RouteTarget, len(routes))
	pools := routePools(accounts)
	for i, rc := range routes {
		key := fmt.Sprintf("routes[%d]", i)
		add := func(k, format string, args ...any) {
			ps = append(ps, Problem{Key: key + "." + k, Msg: fmt.Sprintf(format, args...)})
		}
		if len(rc.Models) == 0 {
			add("models", "is empty: list the model globs this route serves, e.g. [\"claude-sonnet-*\"]")
		}
		for j, m := range rc.Models {
			if _, err := path.Match(m, ""); err != nil || strings.TrimSpace(m) == "" {
				add("models", "entry %d, %q, is not a valid glob (path.Match syntax: *, ?, [a-z])", j+1, m)
			}
		}
		if len(rc.To) == 0 {
			add("to", "is empty: list the targets in order, e.g. [\"claude\", \"openai:gpt-5-codex\"]")
		}
		for j, s := range rc.To {
			t, msg := pools.resolve(s)
			if msg != "" {
				add("to", "entry %d, %q: %s", j+1, s, msg)
				continue
			}
			out[i] = append(out[i], t)
		}
	}
	return out, ps
}

// routePool is what the accounts say about one platform or group.
type routePool struct {
	platforms []string // of every account in it (a group may span several)
	enabled   int      // how many of them are enabled
}

type routePoolIndex struct {
	platforms map[string]*routePool
	groups    map[string]*routePool
}

func routePools(accounts []AccountConfig) routePoolIndex {
	ix := routePoolIndex{platforms: map[string]*routePool{}, groups: map[string]*routePool{}}
	note := func(m map[string]*routePool, name, platform string, enabled bool) {
		p := m[name]
		if p == nil {
			p = &routePool{}
			m[name] = p
		}
		if !slices.Contains(p.platforms, platform) {
			p.platforms = append(p.platforms, platform)
		}
		if enabled {
			p.enabled++
		}
	}
	for i := range accounts {
		a := &accounts[i]
		pl := a.Platform()
		if pl == "" {
			continue // an unknown type: Validate reports it
		}
		note(ix.platforms, pl, pl, a.Enabled)
		for _, g := range a.Groups {
			note(ix.groups, g, pl, a.Enabled)
		}
	}
	return ix
}

// resolve parses one `to` entry; msg says what is wrong ("" when nothing).
func (ix routePoolIndex) resolve(s string) (t RouteTarget, msg string) {
	pool, model := SplitRouteTarget(s)
	switch {
	case pool == "":
		return t, "names no platform or group before the colon"
	case strings.Contains(s, ":") && model == "":
		return t, "names no model after the colon (write the pool alone to keep the request's model)"
	case strings.ContainsAny(s, " \t\r\n"):
		return t, "must not contain spaces"
	}
	t.Model = model
	if slices.Contains(RoutePlatforms, pool) {
		t.Platform = pool
		if p := ix.platforms[pool]; p == nil || p.enabled == 0 {
			return t, fmt.Sprintf("no enabled account serves the %s platform: add one (ccrelay login, or an [[accounts]] entry) or remove the target", pool)
		}
		return t, ""
	}
	p := ix.groups[pool]
	if p == nil {
		return t, fmt.Sprintf("unknown target: not a platform (%s) and no account has %q in its groups", strings.Join(RoutePlatforms, ", "), pool)
	}
	if len(p.platforms) > 1 {
		return t, fmt.Sprintf("group %q has accounts of several platforms (%s); a target is served by one platform: give each platform's accounts a group of its own", pool, strings.Join(p.platforms, ", "))
	}
	if p.enabled == 0 {
		return t, fmt.Sprintf("no enabled account is in group %q", pool)
	}
	t.Platform, t.Group = p.platforms[0], pool
	return t, ""
}

// validateRoutes adds ResolveRoutes' problems.
func (c *Config) validateRoutes(add addFunc) {
	_, ps := ResolveRoutes(c.Routes, c.Accounts)
	for _, p := range ps {
		add(p.Key, "%s", p.Msg)
	}
}
