package routing

import (
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
)

// teamAccounts: Claude Max accounts in group "max", ChatGPT Pro accounts
// in "pro", a Gemini API key.
var teamAccounts = []config.AccountConfig{
	{Type: config.TypeClaudeOAuth, ID: "c1", Enabled: true, Groups: []string{"max"}},
	{Type: config.TypeClaudeAPI, ID: "c2", Enabled: true},
	{Type: config.TypeCodexOAuth, ID: "x1", Enabled: true, Groups: []string{"pro"}},
	{Type: config.TypeOpenAIResponses, ID: "o1", Enabled: true},
	{Type: config.TypeGeminiAPI, ID: "g1", Enabled: true},
}

var (
	claude = Target{Platform: "claude"}
	openai = Target{Platform: "openai"}
	gemini = Target{Platform: "gemini"}
)

func TestTargetsDefault(t *testing.T) {
	tab, err := New(nil, teamAccounts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model, route string
		want         Target
	}{
		{"claude-sonnet-4-5", "openai", claude},
		{"claude-opus-4-1-20250805", "claude", claude},
		{"claude-3-5-haiku-latest", "gemini", claude},
		{"gpt-5-codex", "claude", openai},
		{"gpt-4o", "claude", openai},
		{"o1", "claude", openai},
		{"o3-mini", "claude", openai},
		{"o4-mini-2025-04-16", "gemini", openai},
		{"codex-mini-latest", "claude", openai},
		{"gemini-2.5-pro", "claude", gemini},
		{"gemini-2.0-flash", "openai", gemini},
		// Not the model's own pool: the route the client called.
		{"omni-moderation-latest", "claude", claude}, // "o" not followed by a digit
		{"o", "openai", openai},
		{"claude", "gemini", gemini}, // no "claude-" prefix
		{"gpt5", "claude", claude},
		{"Claude-Sonnet-4-5", "openai", openai}, // provider names are lower case
		{"my-finetune", "openai", openai},
		{"", "gemini", gemini},
		{"text-embedding-3-small", "claude", claude},
	}
	for _, tt := range tests {
		got := tab.Targets(tt.model, tt.route)
		if !reflect.DeepEqual(got, []Target{tt.want}) {
			t.Errorf("Targets(%q, %q) = %v, want [%v]", tt.model, tt.route, got, tt.want)
		}
	}
	if got := tab.Targets("my-model", "bedrock"); got != nil {
		t.Errorf("an unknown route platform: %v, want none", got)
	}
}

func TestTargetsRoutes(t *testing.T) {
	routes := []config.RouteConfig{
		// Claude first; when no Claude account can serve, OpenAI as gpt-5-codex.
		{Models: []string{"claude-sonnet-*", "claude-opus-*"}, To: []string{"claude", "openai:gpt-5-codex"}},
		// Codex users on Claude: Claude Max accounts, then ChatGPT Pro.
		{Models: []string{"gpt-5-codex", "gpt-5.[0-9]-codex"}, To: []string{"max:claude-sonnet-4-5", "pro"}},
		// A later route never sees what an earlier one matched.
		{Models: []string{"claude-*"}, To: []string{"gemini:gemini-2.5-pro"}},
		{Models: []string{"?4-mini"}, To: []string{"openai"}},
		{Models: []string{"vendor/*"}, To: []string{"claude"}},
	}
	tab, err := New(routes, teamAccounts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model, route string
		want         []Target
	}{
		{"claude-sonnet-4-5", "claude", []Target{claude, {Platform: "openai", Model: "gpt-5-codex"}}},
		{"claude-opus-4-1", "openai", []Target{claude, {Platform: "openai", Model: "gpt-5-codex"}}},
		{"gpt-5-codex", "openai", []Target{{Platform: "claude", Group: "max", Model: "claude-sonnet-4-5"}, {Platform: "openai", Group: "pro"}}},
		{"gpt-5.1-codex", "openai", []Target{{Platform: "claude", Group: "max", Model: "claude-sonnet-4-5"}, {Platform: "openai", Group: "pro"}}},
		{"gpt-5.10-codex", "openai", []Target{openai}}, // [0-9] is one character: the default
		{"claude-3-5-haiku", "claude", []Target{{Platform: "gemini", Model: "gemini-2.5-pro"}}},
		{"o4-mini", "claude", []Target{openai}},
		{"vendor/model", "gemini", []Target{claude}},
		{"vendor/a/b", "gemini", []Target{gemini}}, // "*" does not match "/"
		{"gpt-4o", "claude", []Target{openai}},     // no route: the default
		{"llama-3", "gemini", []Target{gemini}},
	}
	for _, tt := range tests {
		got := tab.Targets(tt.model, tt.route)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Targets(%q, %q) = %v, want %v", tt.model, tt.route, got, tt.want)
		}
	}
	if tab.Len() != len(routes) {
		t.Errorf("Len %d", tab.Len())
	}
}

// The compiled globs (exact, prefix) answer as path.Match does.
func TestGlobMatchesPathMatch(t *testing.T) {
	patterns := []string{"claude-*", "claude-sonnet-4-5", "*", "", "gpt-?", "a[bc]*", `x\*`, "*-codex", "vendor/*"}
	models := []string{"", "claude-", "claude-x", "claude-x/y", "claude-sonnet-4-5", "claude-sonnet-4-55", "gpt-5", "gpt-55", "ab", "ac-1", "x*", "xy", "gpt-5-codex", "vendor/m", "vendor/m/n", "a/b"}
	for _, p := range patterns {
		g := compileGlob(p)
		for _, m := range models {
			want, _ := path.Match(p, m)
			if got := g.match(m); got != want {
				t.Errorf("glob %q (kind %d) on %q: %v, path.Match %v", p, g.kind, m, got, want)
			}
		}
	}
}

func TestNilTable(t *testing.T) {
	var tab *Table
	if got := tab.Targets("gpt-5", "claude"); !reflect.DeepEqual(got, []Target{openai}) {
		t.Fatalf("nil table: %v", got)
	}
	if tab.Len() != 0 {
		t.Fatal("nil table has routes")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		routes []config.RouteConfig
		want   []string
	}{
		{"bad glob", []config.RouteConfig{{Models: []string{"claude-["}, To: []string{"claude"}}}, []string{"routes[0].models", "not a valid glob"}},
		{"unknown group", []config.RouteConfig{{Models: []string{"x"}, To: []string{"claude", "team-z"}}}, []string{"routes[0].to", `"team-z"`, "unknown target"}},
		{"no account", []config.RouteConfig{{Models: []string{"x"}, To: []string{"claude"}}}, nil},
		{"empty", []config.RouteConfig{{}, {Models: []string{"x"}, To: []string{"openai:"}}}, []string{"routes[0].models", "routes[0].to", "routes[1].to", "no model after the colon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := teamAccounts
			want := tt.want
			if want == nil {
				accounts = teamAccounts[2:] // no Claude account
				want = []string{"no enabled account serves the claude platform"}
			}
			tab, err := New(tt.routes, accounts)
			if err == nil {
				t.Fatalf("no error, table %+v", tab)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestGroupSpanningPlatformsIsAnError(t *testing.T) {
	accounts := []config.AccountConfig{
		{Type: config.TypeClaudeAPI, ID: "c", Enabled: true, Groups: []string{"team"}},
		{Type: config.TypeGemini, ID: "g", Enabled: true, Groups: []string{"team"}},
	}
	_, err := New([]config.RouteConfig{{Models: []string{"*"}, To: []string{"team"}}}, accounts)
	if err == nil || !strings.Contains(err.Error(), "several platforms (claude, gemini)") {
		t.Fatalf("err = %v", err)
	}
}

func TestTargetString(t *testing.T) {
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{claude, "claude"},
		{Target{Platform: "openai", Model: "gpt-5-codex"}, "openai:gpt-5-codex"},
		{Target{Platform: "claude", Group: "max"}, "max"},
		{Target{Platform: "claude", Group: "max", Model: "claude-opus-4-1"}, "max:claude-opus-4-1"},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.t, got, tt.want)
		}
		if got := (&tt.t).String(); got != tt.want {
			t.Errorf("pointer %+v: %q", tt.t, got)
		}
	}
}

// String writes what a route's `to` reads: a target printed and parsed
// again is the same target.
func TestTargetStringRoundTrips(t *testing.T) {
	routes := []config.RouteConfig{{Models: []string{"*"}, To: []string{"claude", "openai:gpt-5-codex", "max", "pro:gpt-5", "gemini:gemini-2.5-pro"}}}
	tab, err := New(routes, teamAccounts)
	if err != nil {
		t.Fatal(err)
	}
	var back []string
	for _, tg := range tab.Targets("any", "claude") {
		back = append(back, tg.String())
	}
	if !reflect.DeepEqual(back, routes[0].To) {
		t.Fatalf("%v, want %v", back, routes[0].To)
	}
}

// The request path pays nothing for routing: no allocation, with or
// without routes.
func TestTargetsAllocatesNothing(t *testing.T) {
	plain, _ := New(nil, teamAccounts)
	routed, err := New([]config.RouteConfig{
		{Models: []string{"claude-sonnet-*"}, To: []string{"claude", "openai:gpt-5-codex"}},
		{Models: []string{"gpt-5.[0-9]-codex"}, To: []string{"max"}},
	}, teamAccounts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range []*Table{plain, routed, nil} {
		for _, m := range []string{"claude-sonnet-4-5", "gpt-5.1-codex", "o3", "unknown-model"} {
			if n := testing.AllocsPerRun(100, func() { _ = tab.Targets(m, "claude") }); n != 0 {
				t.Errorf("Targets(%q) allocates %v times", m, n)
			}
		}
	}
}

func BenchmarkTargets(b *testing.B) {
	plain, _ := New(nil, teamAccounts)
	routed, err := New([]config.RouteConfig{
		{Models: []string{"claude-opus-*"}, To: []string{"max"}},
		{Models: []string{"gpt-5.[0-9]-codex"}, To: []string{"max:claude-sonnet-4-5", "pro"}},
		{Models: []string{"claude-sonnet-*", "claude-haiku-*"}, To: []string{"claude", "openai:gpt-5-codex"}},
	}, teamAccounts)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		tab   *Table
		model string
	}{
		{"default/claude", plain, "claude-sonnet-4-5"},
		{"default/o-series", plain, "o4-mini"},
		{"default/other", plain, "llama-3.1-70b"},
		{"routes/prefix-hit", routed, "claude-sonnet-4-5"},
		{"routes/match-hit", routed, "gpt-5.1-codex"},
		{"routes/miss", routed, "gemini-2.5-pro"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(bc.tab.Targets(bc.model, "claude")) == 0 {
					b.Fatal("no target")
				}
			}
		})
	}
}

// A model an enabled openai-compatible account lists goes to the compat
// pool, before the name conventions; a disabled account's list counts for
// nothing; routes still come first; no allocation.
func TestTargetsCompatListed(t *testing.T) {
	accounts := append(slices.Clone(teamAccounts),
		config.AccountConfig{Type: config.TypeOpenAICompat, ID: "ds", Enabled: true, APIURL: "https://api.deepseek.com/v1", Models: []string{"deepseek-*", "gpt-oss-*"}},
		config.AccountConfig{Type: config.TypeOpenAICompat, ID: "off", Enabled: false, APIURL: "http://h", Models: []string{"llama*"}})
	tab, err := New([]config.RouteConfig{{Models: []string{"deepseek-coder"}, To: []string{"claude"}}}, accounts)
	if err != nil {
		t.Fatal(err)
	}
	compat := Target{Platform: "compat"}
	tests := []struct {
		model string
		want  Target
	}{
		{"deepseek-chat", compat},
		{"gpt-oss-120b", compat},
		{"gpt-5", openai},
		{"llama3", claude},
		{"deepseek-coder", claude},
	}
	for _, tt := range tests {
		if got := tab.Targets(tt.model, "claude"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("Targets(%q) = %v, want %v", tt.model, got, tt.want)
		}
		if n := testing.AllocsPerRun(100, func() { _ = tab.Targets(tt.model, "claude") }); n != 0 {
			t.Errorf("Targets(%q) allocates %v times", tt.model, n)
		}
	}
	if !Serves([]string{"deepseek-*"}, "deepseek-chat") || Serves([]string{"deepseek-*"}, "kimi-k2") {
		t.Fatal("Serves")
	}
}
