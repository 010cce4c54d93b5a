package config

import (
	"strings"
	"testing"
)

func TestSchedulerDefaultsAndValidation(t *testing.T) {
	c, err := Parse([]byte("[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\nplan_only = true\n[[accounts]]\ntype = \"claude-api\"\nid = \"b\"\napi_key = \"k\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Scheduler
	if s.Spread != SpreadHeadroom || s.SoftLimit != 0.9 || s.HardLimit != 0.98 || s.PlanOnly || s.QuotaProbeMinutes != 0 {
		t.Fatalf("defaults %+v", s)
	}
	if !c.PlanOnlyFor(&c.Accounts[0]) || c.PlanOnlyFor(&c.Accounts[1]) {
		t.Fatal("per-account plan_only not applied")
	}
	for _, tt := range []struct{ src, want string }{
		{"[scheduler]\nspread = \"random\"\n", "scheduler.spread"},
		{"[scheduler]\nsoft_limit = 1.5\n", "scheduler.soft_limit"},
		{"[scheduler]\nsoft_limit = 0.99\nhard_limit = 0.95\n", "must not be above hard_limit"},
		{"[scheduler]\nquota_probe_minutes = -1\n", "scheduler.quota_probe_minutes"},
		{"[scheduler]\nsoft_limit = \"high\"\n", "scheduler.soft_limit"},
	} {
		if _, err := Parse([]byte(tt.src)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.want)
		}
	}
}
