package config

import (
	"strings"
	"testing"
)

// An api_keys override that names no key (CCRELAY_API_KEYS=",") would turn
// auth off silently: it is an error. An original config with api_keys = []
// still loads.
func TestAPIKeysOverrideWithoutKeyIsAnError(t *testing.T) {
	for _, val := range []string{",", " , ,"} {
		t.Setenv("CCRELAY_API_KEYS", val)
		cfg, err := Parse([]byte("api_keys = []\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.ApplyOverrides(NewViper()); err == nil || !strings.Contains(err.Error(), "holds no key") {
			t.Fatalf("%q: %v", val, err)
		}
	}
	t.Setenv("CCRELAY_API_KEYS", "a,b")
	cfg, _ := Parse([]byte("api_keys = []\n"))
	if err := cfg.ApplyOverrides(NewViper()); err != nil || len(cfg.APIKeys) != 2 {
		t.Fatalf("%v %v", err, cfg.APIKeys)
	}
}

func TestTeamConfig(t *testing.T) {
	tests := []struct {
		name string
		src  string
		errs []string
	}{
		{"valid", `allow_unauthenticated = true
trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
[[keys]]
name = "a"
key = "k-a"
models = ["claude-*"]
daily_usd = 5
weekly_usd = 7.5
timezone = "Europe/Berlin"
expires_at = "2027-01-01"
[prices."my-model"]
input = 1
output = 2.5
[[accounts]]
type = "claude-api"
id = "x"
api_key = "k"
groups = ["team-a"]
max_concurrency = 4
`, nil},
		{"bad proxy", `trusted_proxies = ["nope"]`, []string{"trusted_proxies[0]"}},
		{"missing name and key", "[[keys]]\nrpm = 1\n", []string{"keys[0].name", "keys[0].key"}},
		{"duplicate names and keys", "api_keys = [\"k\"]\n[[keys]]\nname = \"a\"\nkey = \"k\"\n[[keys]]\nname = \"a\"\nkey = \"j\"\n", []string{"duplicate key name", "same key as api_keys[0]"}},
		{"bad hash", "[[keys]]\nname = \"a\"\nkey_sha256 = \"abc\"\n", []string{"64 hex"}},
		{"bad zone, glob, negative", "[[keys]]\nname = \"a\"\nkey = \"k\"\ntimezone = \"Mars/Base\"\nmodels = [\"[\"]\nrpm = -1\n", []string{"keys[0].timezone", "keys[0].models[0]", "keys[0].rpm"}},
		{"bad expiry", "[[keys]]\nname = \"a\"\nkey = \"k\"\nexpires_at = \"tomorrow\"\n", []string{"keys[0].expires_at"}},
		{"unknown price field", "[prices.\"m\"]\ninputs = 1\n", []string{"unknown key"}},
		{"price not a number", "[prices.\"m\"]\ninput = \"1\"\n", []string{"must be a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.src))
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !cfg.AllowUnauthenticated || len(cfg.TrustedPrefixes()) != 2 || cfg.Keys[0].QueueSeconds != 30 || cfg.Keys[0].WeeklyUSD != 7.5 ||
					*cfg.Prices["my-model"].Output != 2.5 || cfg.Accounts[0].MaxConcurrency != 4 || cfg.Accounts[0].Groups[0] != "team-a" {
					t.Fatalf("%+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
