package accountview

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// TestState pins each state's wording, and that a rejected credential names
// the fix of its own type (the admin API once told every type but gemini to
// run `ccrelay login claude`).
func TestState(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	until := now.Add(30 * time.Minute)
	invalid := []Cooldown{{Kind: "token_invalid", Reason: "401", Until: until}}
	tests := []struct {
		name   string
		f      Facts
		state  string
		detail string
	}{
		{"ready", Facts{ID: "a", Type: "claude-api", Enabled: true}, StateReady, ""},
		{"off in config", Facts{ID: "a", Type: "claude-api", Enabled: false, Disabled: true}, StateDisabled, "enabled = false in the config"},
		{"off through the API", Facts{ID: "a", Type: "claude-api", Enabled: true, Disabled: true}, StateDisabled, "disabled through the admin API"},
		{"cooling", Facts{ID: "a", Type: "claude-api", Enabled: true, Cooldowns: []Cooldown{
			{Model: "m2", Kind: "rate_limited", Until: until}, {Kind: "overloaded", Reason: "529 overloaded", Until: until}}},
			StateCoolingDown, "until 2026-12-07T12:30:00Z (overloaded): 529 overloaded"},
		{"one model cooling", Facts{ID: "a", Type: "claude-api", Enabled: true, Cooldowns: []Cooldown{
			{Model: "m2", Kind: "rate_limited", Until: until}, {Model: "m1", Kind: "overloaded", Until: until}}},
			StateReady, "m1 cooling until 2026-12-07T12:30:00Z (overloaded); m2 cooling until 2026-12-07T12:30:00Z (rate_limited)"},
		{"claude-oauth rejected", Facts{ID: "max", Type: "claude-oauth", Enabled: true, Cooldowns: invalid},
			StateTokenInvalid, "the refresh token was rejected; run: ccrelay login claude --account max"},
		{"codex-oauth rejected", Facts{ID: "cx", Type: "codex-oauth", Enabled: true, Cooldowns: invalid},
			StateTokenInvalid, "the refresh token was rejected; run: ccrelay login codex --account cx"},
		{"gemini rejected", Facts{ID: "g", Type: "gemini", Enabled: true, Cooldowns: invalid},
			StateTokenInvalid, "the refresh token was rejected; run: ccrelay login gemini --account g"},
		{"claude-token rejected", Facts{ID: "tok", Type: "claude-token", Enabled: true, Cooldowns: invalid},
			StateTokenInvalid, "the token was rejected; run: claude setup-token"},
		{"api key rejected", Facts{ID: "k", Type: "openai-responses", Enabled: true, Cooldowns: invalid},
			StateTokenInvalid, "the api key was rejected; replace api_key in the config"},
		{"unknown type", Facts{ID: "x", Type: "nope", Enabled: true, Cooldowns: invalid}, StateTokenInvalid, "the credential was rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(tt.f, now)
			if a.State != tt.state || !strings.HasPrefix(a.Detail, tt.detail) || (tt.detail == "" && a.Detail != "") {
				t.Fatalf("state %q detail %q, want %q %q", a.State, a.Detail, tt.state, tt.detail)
			}
		})
	}
}

// TestNewShape: times in UTC (cooldowns and last use to the millisecond the
// database keeps), cooldowns in a fixed order, empty lists rather than
// null, the platform from the type, and the quota snapshot whole.
func TestNewShape(t *testing.T) {
	zone := time.FixedZone("X", 3600)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, zone)
	used := now.Add(-time.Minute).Add(123456789 * time.Nanosecond)
	seen := now.Add(-time.Second)
	snap := quota.Snapshot{Source: quota.SourceClaude, RepresentativeClaim: "five_hour", Status: "allowed", SeenAt: seen,
		Windows: []quota.Window{{Name: "5h", Utilization: 0.5, Minutes: 300, ResetsAt: now.Add(time.Hour), Status: "allowed"}}}
	a := New(Facts{ID: "a", Type: "codex-oauth", Enabled: true, LastUsed: used, Quota: &snap,
		Cooldowns: []Cooldown{{Model: "b", Until: now}, {Model: "a", Until: now}}}, now)
	if a.Platform != "openai" || a.Groups == nil || a.Cooldowns[0].Model != "a" || a.Cooldowns[0].Until.Location() != time.UTC {
		t.Fatalf("%+v", a)
	}
	if want := used.UTC().Truncate(time.Millisecond); !a.LastUsed.Equal(want) || a.LastUsed.Location() != time.UTC || a.LastUsed.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("last used %v", a.LastUsed)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"source":"claude"`, `"representative_claim":"five_hour"`, `"window_minutes":300`, `"stale":false`,
		`"resets_at":"2026-12-07T12:00:00Z"`, `"groups":[]`, `"seen_at":"2026-12-07T10:59:59Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	if empty, _ := json.Marshal(New(Facts{ID: "e", Type: "claude-api"}, now)); !strings.Contains(string(empty), `"cooldowns":[]`) || !strings.Contains(string(empty), `"quota":null`) {
		t.Fatalf("empty account %s", empty)
	}
}
