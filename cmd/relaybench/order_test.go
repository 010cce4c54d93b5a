package main

import (
	"strings"
	"testing"
)

// ccrelay and --before take turns going first, and every target still
// goes first in turn.
func TestRoundOrderAlternatesTheTwoBuilds(t *testing.T) {
	ts := []*target{{name: "direct"}, {name: "baseline"}, {name: "ccrelay"}, {name: "before"}}
	want := []string{
		"direct baseline ccrelay before",
		"baseline before ccrelay direct",
		"ccrelay before direct baseline",
		"before direct baseline ccrelay",
		"direct baseline ccrelay before",
		"baseline before ccrelay direct",
	}
	relayFirst := 0
	for r, w := range want {
		var names []string
		for _, tg := range roundOrder(ts, r) {
			names = append(names, tg.name)
		}
		got := strings.Join(names, " ")
		if got != w {
			t.Errorf("round %d: %s, want %s", r, got, w)
		}
		if strings.Index(got, "ccrelay") < strings.Index(got, "before") {
			relayFirst++
		}
	}
	if relayFirst != len(want)/2 {
		t.Errorf("ccrelay ahead of before in %d rounds of %d, want half", relayFirst, len(want))
	}
	if got := roundOrder(ts[:3], 1); got[0].name != "baseline" || len(got) != 3 {
		t.Errorf("without before the order is the rotation: %v", got)
	}
	if ts[2].name != "ccrelay" || ts[3].name != "before" {
		t.Error("roundOrder changed its argument")
	}
}
