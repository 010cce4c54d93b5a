// Package routing decides which pools (targets) serve a model, in order:
// the first [[routes]] entry whose glob matches the model gives its
// targets; without one, the model decides the pool (a model an enabled
// openai-compatible account lists → those accounts; claude-* → Claude,
// gpt-* / o<digit>* / codex-* → OpenAI, gemini-* → Gemini) and any other
// name stays on the pool of the route the client called.
//
// It is pure: a Table is built once from the config (New) and never
// changes; a reload builds a new one. Targets runs on every request, so it
// allocates nothing: every answer is a slice built in New.
package routing

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/config"
)

// Target is one pool that may serve a request.
type Target struct {
	// Platform is "claude", "openai", "gemini" or "compat" (the
	// scheduler's pools).
	Platform string
	// Group, when set, narrows the platform to the accounts whose groups
	// include it; "" is the whole platform.
	Group string
	// Model is the model to send upstream; "" keeps the request's model
	// (the client's, after the [models] aliases).
	Model string
}

// String is the target as a route's `to` writes it: the group (else the
// platform), then ":model" when the target rewrites the model, e.g.
// "openai:gpt-5-codex" or "max". Logs and the request log show it.
func (t Target) String() string {
	name := t.Platform
	if t.Group != "" {
		name = t.Group
	}
	if t.Model == "" {
		return name
	}
	return name + ":" + t.Model
}

// Table is the routes in force. A nil *Table has no routes (the defaults
// only). It is immutable and safe for concurrent use.
type Table struct {
	routes []route
	// claude, openai, gemini and compat are the default answers, one
	// target each.
	claude, openai, gemini, compat []Target
	// listed are the model globs of the enabled openai-compatible accounts
	// (their `models`): a model one matches goes to the compat pool.
	listed []glob
}

// route is one [[routes]] entry.
type route struct {
	globs   []glob
	targets []Target
}

// glob is one of a route's model patterns, with the common shapes (no
// wildcard, one trailing "*") matched without path.Match.
type glob struct {
	kind    globKind
	literal string // the pattern (exact), its part before "*" (prefix)
	pattern string // for path.Match
}

type globKind uint8

const (
	globExact globKind = iota
	globPrefix
	globMatch
)

func compileGlob(p string) glob {
	const meta = `*?[\`
	if !strings.ContainsAny(p, meta) {
		return glob{kind: globExact, literal: p}
	}
	if i := strings.IndexAny(p, meta); i == len(p)-1 && p[i] == '*' {
		return glob{kind: globPrefix, literal: p[:i]}
	}
	return glob{kind: globMatch, pattern: p}
}

// match reports whether model matches the glob ("*" does not match "/", as
// in path.Match; a trailing "*" matches a rest without "/").
func (g *glob) match(model string) bool {
	switch g.kind {
	case globExact:
		return model == g.literal
	case globPrefix:
		return strings.HasPrefix(model, g.literal) && !strings.Contains(model[len(g.literal):], "/")
	}
	ok, _ := path.Match(g.pattern, model)
	return ok
}

// New builds the table of routes, checking them against accounts as config
// validation does (config.ResolveRoutes): a malformed glob or target, an
// unknown platform or group, a group spanning platforms or a target without
// an enabled account is an error naming the route. A config that Parse
// accepted never fails here.
func New(routes []config.RouteConfig, accounts []config.AccountConfig) (*Table, error) {
	resolved, problems := config.ResolveRoutes(routes, accounts)
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = errors.New(p.String())
		}
		return nil, fmt.Errorf("routes: %w", errors.Join(errs...))
	}
	t := newTable()
	for i, rc := range routes {
		r := route{targets: make([]Target, len(resolved[i]))}
		for _, m := range rc.Models {
			r.globs = append(r.globs, compileGlob(m))
		}
		for j, rt := range resolved[i] {
			r.targets[j] = Target{Platform: rt.Platform, Group: rt.Group, Model: rt.Model}
		}
		t.routes = append(t.routes, r)
	}
	for i := range accounts {
		a := &accounts[i]
		if a.Enabled && a.Platform() == accounttype.PlatformCompat {
			for _, m := range a.Models {
				t.listed = append(t.listed, compileGlob(m))
			}
		}
	}
	return t, nil
}

// Serves reports whether an openai-compatible account's model globs
// (config `models`) match model: the relay leaves the accounts of the
// compat pool that do not list a model out of its request.
func Serves(globs []string, model string) bool {
	for _, m := range globs {
		g := compileGlob(m)
		if g.match(model) {
			return true
		}
	}
	return false
}

func newTable() *Table {
	return &Table{
		claude: []Target{{Platform: accounttype.PlatformClaude}},
		openai: []Target{{Platform: accounttype.PlatformOpenAI}},
		gemini: []Target{{Platform: accounttype.PlatformGemini}},
		compat: []Target{{Platform: accounttype.PlatformCompat}},
	}
}

// noRoutes answers for a nil *Table; built once, never written.
var noRoutes = newTable()

// Targets returns the targets that may serve model, in the order to try
// them: the `to` of the first route with a glob that matches model, else
// the one pool t.ModelPlatform names, else routePlatform's pool (the route
// the client called: "claude", "openai" or "gemini"; any other value gives
// no target). model is the model the relay would send without a route: the
// client's, after the [models] aliases. The slice is the table's own: the
// caller must not change it.
func (t *Table) Targets(model string, routePlatform string) []Target {
	if t == nil {
		t = noRoutes
	}
	for i := range t.routes {
		r := &t.routes[i]
		for j := range r.globs {
			if r.globs[j].match(model) {
				return r.targets
			}
		}
	}
	p := t.ModelPlatform(model)
	if p == "" {
		p = routePlatform
	}
	switch p {
	case accounttype.PlatformClaude:
		return t.claude
	case accounttype.PlatformOpenAI:
		return t.openai
	case accounttype.PlatformGemini:
		return t.gemini
	case accounttype.PlatformCompat:
		return t.compat
	}
	return nil
}

// ModelPlatform is the pool a model points to when no route names it: a
// model an enabled openai-compatible account lists (its `models` globs) →
// "compat", before the names' conventions (an operator who lists a name
// means it); else ModelPlatform's answer by name.
func (t *Table) ModelPlatform(model string) string {
	if t == nil {
		t = noRoutes
	}
	for i := range t.listed {
		if t.listed[i].match(model) {
			return accounttype.PlatformCompat
		}
	}
	return ModelPlatform(model)
}

// Len is the number of routes.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.routes)
}

// ModelPlatform is the pool a model's name points to when no route names
// it: claude-* → "claude"; gpt-*, o<digit>* (o1, o3-mini, o4-mini) and
// codex-* → "openai"; gemini-* → "gemini"; "" for any other name (the route
// the client called decides). Names are matched as the providers write them
// (lower case).
func ModelPlatform(model string) string {
	switch {
	case strings.HasPrefix(model, "claude-"):
		return accounttype.PlatformClaude
	case strings.HasPrefix(model, "gpt-"), strings.HasPrefix(model, "codex-"),
		len(model) >= 2 && model[0] == 'o' && model[1] >= '0' && model[1] <= '9':
		return accounttype.PlatformOpenAI
	case strings.HasPrefix(model, "gemini-"):
		return accounttype.PlatformGemini
	}
	return ""
}
