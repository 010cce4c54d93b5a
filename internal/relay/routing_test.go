package relay

import (
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/routing"
)

// The relay answers from the routes it was built with, and from the ones a
// reload set after that.
func TestRoutesTableSwaps(t *testing.T) {
	accounts := []config.AccountConfig{
		{Type: config.TypeClaudeAPI, ID: "c", Enabled: true},
		{Type: config.TypeOpenAIResponses, ID: "o", Enabled: true},
	}
	first, err := routing.New([]config.RouteConfig{{Models: []string{"claude-*"}, To: []string{"claude", "openai:gpt-5-codex"}}}, accounts)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Policy: testPolicy(t), Routes: first}, nil, nil, nil, nil)
	if got := r.routesTable().Targets("claude-sonnet-4-5", "claude"); len(got) != 2 || got[1].String() != "openai:gpt-5-codex" {
		t.Fatalf("built with routes: %v", got)
	}
	r.SetRoutes(nil)
	if got := r.routesTable().Targets("claude-sonnet-4-5", "claude"); len(got) != 1 || got[0].String() != "claude" {
		t.Fatalf("after SetRoutes(nil): %v", got)
	}
	if got := New(Options{Policy: testPolicy(t)}, nil, nil, nil, nil).routesTable().Targets("gpt-5", "claude"); len(got) != 1 || got[0].Platform != "openai" {
		t.Fatalf("built without routes: %v", got)
	}
}
