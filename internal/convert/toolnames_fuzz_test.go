package convert

import "testing"

// FuzzUpstreamName: for any names, every API's mapping is a name the API
// takes, leaves a name that fits alone, keeps two names apart, and maps
// back (toolNameMap) to the client's name.
func FuzzUpstreamName(f *testing.F) {
	for _, s := range []string{fitName, ccMCPName, geminiCLIName, digitName, "a b", "outil_é", "", "\xff\xfe", "-", "a.b"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m := toolNameMap([]Tool{{Name: a}, {Name: b}})
		for _, rule := range nameRules {
			up := rule.upstreamName(a)
			switch {
			case a == "":
				if up != "" {
					t.Fatalf("max %d: empty name mapped to %q", rule.max, up)
				}
				continue
			case !rule.fits(up):
				t.Fatalf("max %d: %q mapped to %q, which breaks the rule", rule.max, a, up)
			case rule.fits(a) && up != a:
				t.Fatalf("max %d: fitting %q mapped to %q", rule.max, a, up)
			case up != a && up != b && m[up] != a:
				t.Fatalf("max %d: %q sent as %q maps back to %q", rule.max, a, up, m[up])
			}
			if b != a && b != "" && rule.upstreamName(b) == up {
				t.Fatalf("max %d: %q and %q both map to %q", rule.max, a, b, up)
			}
		}
	})
}
