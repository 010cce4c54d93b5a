package relay

import (
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/routing"
)

// plan names each target as the route's `to` writes it (what logs and the
// request log show), though a target without ":model" is sent the model
// asked. Found by TestRouteFallbackConversationAcrossPools: the request log
// said "claude:claude-sonnet-4-5" for the route's "claude".
func TestPlanNamesTargetsAsRouted(t *testing.T) {
	accounts := []config.AccountConfig{
		{Type: config.TypeClaudeAPI, ID: "c", Enabled: true},
		{Type: config.TypeOpenAIResponses, ID: "o", Enabled: true},
	}
	tbl, err := routing.New([]config.RouteConfig{{Models: []string{"claude-*"}, To: []string{"claude", "openai:gpt-5-codex"}}}, accounts)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Policy: testPolicy(t), Routes: tbl}, nil, nil, nil, nil)
	c := &call{native: claudeAdapter{}, model: "claude-sonnet-4-5"}
	r.plan(c, clientSides["anthropic"])
	if len(c.targets) != 2 {
		t.Fatalf("targets %+v", c.targets)
	}
	if got := c.targets[0]; got.String() != "claude" || got.model != "claude-sonnet-4-5" {
		t.Fatalf("first target %q sends %q", got.String(), got.model)
	}
	if got := c.targets[1]; got.String() != "openai:gpt-5-codex" || got.model != "gpt-5-codex" {
		t.Fatalf("second target %q sends %q", got.String(), got.model)
	}
}
