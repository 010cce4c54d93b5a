package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/routing"
)

// routesApp starts a relay on a config file whose accounts are a Claude and
// an OpenAI account (group "pro"), followed by routes.
func routesApp(t *testing.T, routes string) (*App, func(routes string)) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write := func(routes string) {
		t.Helper()
		text := fmt.Sprintf(`[server]
database_path = %q
[[accounts]]
type = "claude-api"
id = "c"
api_key = "k1"
[[accounts]]
type = "openai-responses"
id = "o"
api_key = "k2"
groups = ["pro"]
%s`, filepath.Join(dir, "relay.db"), routes)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(routes)
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a, write
}

func targetsOf(a *App, model, route string) []string {
	var out []string
	for _, tg := range a.Relay.Routes().Targets(model, route) {
		out = append(out, tg.String())
	}
	return out
}

// The relay starts with the file's routes, a reload swaps in new ones, and
// a reload whose route no account can serve is refused with its line while
// the routes in force keep serving.
func TestRoutesAtStartAndReload(t *testing.T) {
	a, write := routesApp(t, "[[routes]]\nmodels = [\"claude-sonnet-*\"]\nto = [\"claude\", \"openai:gpt-5-codex\"]\n")
	if got := targetsOf(a, "claude-sonnet-4-5", "claude"); !reflect.DeepEqual(got, []string{"claude", "openai:gpt-5-codex"}) {
		t.Fatalf("at start: %v", got)
	}
	ctx := context.Background()

	write("[[routes]]\nmodels = [\"gpt-5*\"]\nto = [\"claude:claude-sonnet-4-5\", \"pro\"]\n")
	if err := a.Reloader().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := targetsOf(a, "gpt-5-codex", "openai"); !reflect.DeepEqual(got, []string{"claude:claude-sonnet-4-5", "pro"}) {
		t.Fatalf("after reload: %v", got)
	}
	if got := targetsOf(a, "claude-sonnet-4-5", "claude"); !reflect.DeepEqual(got, []string{"claude"}) {
		t.Fatalf("the old route is gone: %v", got)
	}

	write("[[routes]]\nmodels = [\"gpt-5*\"]\nto = [\"claude\", \"gemini\"]\n")
	err := a.Reloader().Reload(ctx)
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Line != 14 || !strings.Contains(err.Error(), "no enabled account serves the gemini platform") {
		t.Fatalf("reload with a route to a platform without accounts: %v", err)
	}
	if st := a.Reloader().Status(); !st.Stale || !strings.Contains(st.Error, "routes[0].to") {
		t.Fatalf("status %+v", st)
	}
	if got := targetsOf(a, "gpt-5-codex", "openai"); !reflect.DeepEqual(got, []string{"claude:claude-sonnet-4-5", "pro"}) {
		t.Fatalf("the refused reload changed the routes: %v", got)
	}

	write("")
	if err := a.Reloader().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := targetsOf(a, "gpt-5-codex", "claude"); !reflect.DeepEqual(got, []string{"openai"}) {
		t.Fatalf("without routes the model decides: %v", got)
	}
}

// The hook itself refuses what routing.New refuses, so a loader that skips
// validation cannot slip a broken table in; and it rebuilds the table when
// only the accounts changed (a group moved).
func TestPrepareRoutes(t *testing.T) {
	a, _ := routesApp(t, "")
	old := a.Config
	bad := *old
	bad.Routes = []config.RouteConfig{{Models: []string{"x"}, To: []string{"nobody"}}}
	if commit, err := a.prepareRoutes(old, &bad); err == nil || commit != nil {
		t.Fatalf("prepareRoutes with an unknown target: %v", err)
	}
	if commit, err := a.prepareRoutes(old, old); err != nil || commit != nil {
		t.Fatalf("unchanged: commit %v, err %v", commit != nil, err)
	}

	withGroup := *old
	withGroup.Routes = []config.RouteConfig{{Models: []string{"x"}, To: []string{"team"}}}
	withGroup.Accounts = slicesWithGroup(old.Accounts, 1, "team")
	commit, err := a.prepareRoutes(old, &withGroup)
	if err != nil || commit == nil {
		t.Fatal(err)
	}
	commit()
	want := []routing.Target{{Platform: "openai", Group: "team"}}
	if got := a.Relay.Routes().Targets("x", "claude"); !reflect.DeepEqual(got, want) {
		t.Fatalf("%v", got)
	}
	moved := withGroup
	moved.Accounts = slicesWithGroup(old.Accounts, 0, "team")
	commit, err = a.prepareRoutes(&withGroup, &moved)
	if err != nil || commit == nil {
		t.Fatalf("accounts changed under a route: commit %v, err %v", commit != nil, err)
	}
	commit()
	want = []routing.Target{{Platform: "claude", Group: "team"}}
	if got := a.Relay.Routes().Targets("x", "openai"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the group moved: %v", got)
	}
}

// slicesWithGroup copies accounts and puts account i (only) in group g.
func slicesWithGroup(accounts []config.AccountConfig, i int, g string) []config.AccountConfig {
	out := make([]config.AccountConfig, len(accounts))
	copy(out, accounts)
	out[i].Groups = []string{g}
	return out
}
