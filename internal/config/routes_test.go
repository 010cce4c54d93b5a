package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// routeAccounts is an account of each platform, Claude ones in group
// "max", OpenAI ones in "pro", a disabled Gemini one in "idle", and a group
// "mixed" over two platforms.
const routeAccounts = `
[[accounts]]
type = "claude-api"
id = "c1"
api_key = "k"
groups = ["max", "mixed"]

[[accounts]]
type = "openai-responses"
id = "o1"
api_key = "k"
groups = ["pro", "mixed"]

[[accounts]]
type = "gemini-api"
id = "g1"
api_key = "k"
enabled = false
groups = ["idle"]
`

func TestRoutesResolve(t *testing.T) {
	src := routeAccounts + `
[[routes]]
models = ["claude-sonnet-*", "claude-opus-*"]
to = ["claude", "openai:gpt-5-codex"]

[[routes]]
models = ["gpt-5*"]
to = ["pro", "max:claude-sonnet-4-5", "openai:ft:gpt-4o:org:1"]
`
	cfg, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 || len(cfg.Routes[0].Models) != 2 {
		t.Fatalf("routes: %+v", cfg.Routes)
	}
	got, ps := ResolveRoutes(cfg.Routes, cfg.Accounts)
	if len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	want := [][]RouteTarget{
		{{Platform: "claude"}, {Platform: "openai", Model: "gpt-5-codex"}},
		{{Platform: "openai", Group: "pro"}, {Platform: "claude", Group: "max", Model: "claude-sonnet-4-5"}, {Platform: "openai", Model: "ft:gpt-4o:org:1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// Every wrong route is a config error that names its line, at load (Parse)
// and so at reload, whose loader is Parse too.
func TestRoutesErrors(t *testing.T) {
	base := strings.Count(routeAccounts, "\n") // the [[routes]] header is on line base+2
	tests := []struct {
		name  string
		route string
		line  int // of the [[routes]] header + this
		want  []string
	}{
		{"empty models", "models = []\nto = [\"claude\"]\n", 1, []string{"routes[0].models", "is empty"}},
		{"missing models", "to = [\"claude\"]\n", 0, []string{"routes[0].models", "is empty"}},
		{"empty to", "models = [\"x\"]\nto = []\n", 2, []string{"routes[0].to", "is empty"}},
		{"bad glob", "models = [\"ok-*\", \"claude-[\"]\nto = [\"claude\"]\n", 1, []string{"routes[0].models", `entry 2, "claude-["`, "not a valid glob"}},
		{"blank glob", "models = [\" \"]\nto = [\"claude\"]\n", 1, []string{"not a valid glob"}},
		{"unknown target", "models = [\"x\"]\nto = [\"claude\", \"anthropic\"]\n", 2, []string{"routes[0].to", `entry 2, "anthropic"`, "unknown target", "no account has \"anthropic\" in its groups"}},
		{"platform without account", "models = [\"x\"]\nto = [\"claude\"]\n", 2, nil}, // placeholder, replaced below
		{"platform only disabled", "models = [\"x\"]\nto = [\"gemini\"]\n", 2, []string{`"gemini"`, "no enabled account serves the gemini platform"}},
		{"group only disabled", "models = [\"x\"]\nto = [\"idle\"]\n", 2, []string{`"idle"`, "no enabled account is in group \"idle\""}},
		{"group of two platforms", "models = [\"x\"]\nto = [\"mixed\"]\n", 2, []string{`"mixed"`, "several platforms (claude, openai)"}},
		{"no pool", "models = [\"x\"]\nto = [\":gpt-5\"]\n", 2, []string{"no platform or group before the colon"}},
		{"no model", "models = [\"x\"]\nto = [\"openai:\"]\n", 2, []string{"no model after the colon"}},
		{"spaces", "models = [\"x\"]\nto = [\"openai: gpt-5\"]\n", 2, []string{"must not contain spaces"}},
		{"unknown key", "models = [\"x\"]\nto = [\"claude\"]\nfallback = true\n", 3, []string{"routes[0].fallback", "unknown key"}},
		{"to not an array", "models = [\"x\"]\nto = \"claude\"\n", 2, []string{"routes[0].to", "must be an array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := routeAccounts
			want := tt.want
			if tt.want == nil { // a config without a Claude account
				accounts = strings.Replace(routeAccounts, `type = "claude-api"`, `type = "gemini-api"`, 1)
				want = []string{`"claude"`, "no enabled account serves the claude platform"}
			}
			_, err := Parse([]byte(accounts + "\n[[routes]]\n" + tt.route))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a config error", err)
			}
			if len(ce.Problems) != 1 {
				t.Fatalf("problems: %v", ce.Problems)
			}
			if wantLine := base + 2 + tt.line; ce.Problems[0].Line != wantLine {
				t.Errorf("line %d, want %d (%v)", ce.Problems[0].Line, wantLine, ce.Problems[0])
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The line is the one of the route's own key, not of the first route's.
func TestRoutesErrorLineOfSecondRoute(t *testing.T) {
	src := routeAccounts + `
[[routes]]
models = ["claude-*"]
to = ["claude"]

[[routes]]
models = ["gpt-*"]
to = ["openai", "nowhere"]
`
	_, err := Parse([]byte(src))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Fatalf("err = %v", err)
	}
	wantLine := strings.Count(routeAccounts, "\n") + 8
	if p := ce.Problems[0]; p.Line != wantLine || p.Key != "routes[1].to" {
		t.Fatalf("problem %v, want line %d routes[1].to", p, wantLine)
	}
}

// Every problem of every route is reported at once.
func TestRoutesAllProblemsAtOnce(t *testing.T) {
	_, ps := ResolveRoutes([]RouteConfig{
		{Models: []string{"["}, To: []string{"nowhere", "openai:"}},
		{},
	}, nil)
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key)
	}
	want := []string{"routes[0].models", "routes[0].to", "routes[0].to", "routes[1].models", "routes[1].to"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

func TestSplitRouteTarget(t *testing.T) {
	for _, tt := range []struct{ in, pool, model string }{
		{"claude", "claude", ""},
		{"openai:gpt-5-codex", "openai", "gpt-5-codex"},
		{"bedrock:anthropic.claude-v2:1", "bedrock", "anthropic.claude-v2:1"},
	} {
		if p, m := SplitRouteTarget(tt.in); p != tt.pool || m != tt.model {
			t.Errorf("%q: %q %q", tt.in, p, m)
		}
	}
}
