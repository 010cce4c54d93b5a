package archtest

import (
	"strings"
	"testing"
)

const sampleDoc = "# x\n\n## Packages: what each owns\n\n" +
	"| package | owns | may import |\n| --- | --- | --- |\n" +
	"| `internal/a` | a | `internal/b` |\n" +
	"| `internal/b`, `internal/b/*` | b | the standard library |\n" +
	"| `cmd/...` | mains | everything |\n\n" +
	"## Modules only some packages import\n\n| module | only in |\n| --- | --- |\n" +
	"| `example.com/driver` | `internal/b` |\n"

func TestCheckerCatchesEachKindOfDrift(t *testing.T) {
	mod := func(p string) string { return modulePath + "/" + p }
	tests := []struct {
		name string
		pkgs map[string][]string
		want []string // substrings, one problem each
	}{
		{"true table", map[string][]string{
			"internal/a": {mod("internal/b"), "fmt"}, "internal/b": {"example.com/driver"},
			"internal/b/c": nil, "cmd/x": {mod("internal/a"), mod("internal/b/c")},
		}, nil},
		{"forbidden import", map[string][]string{
			"internal/a": {mod("internal/b")}, "internal/b": {mod("internal/a"), "example.com/driver"}, "internal/b/c": nil, "cmd/x": nil,
		}, []string{"internal/b imports internal/a"}},
		{"package without a row", map[string][]string{
			"internal/a": {mod("internal/b")}, "internal/b": {"example.com/driver"}, "internal/b/c": nil, "internal/z": nil, "cmd/x": nil,
		}, []string{"package internal/z has no row"}},
		{"allowance no longer imported", map[string][]string{
			"internal/a": nil, "internal/b": {"example.com/driver"}, "internal/b/c": nil, "cmd/x": nil,
		}, []string{"allows internal/b, which none of"}},
		{"row naming a gone package", map[string][]string{
			"internal/b": {"example.com/driver"}, "internal/b/c": nil, "cmd/x": nil,
		}, []string{"names internal/a, which is no package", "allows internal/b, which none of"}},
		{"driver imported elsewhere", map[string][]string{
			"internal/a": {mod("internal/b"), "example.com/driver/sub"}, "internal/b": {"example.com/driver"}, "internal/b/c": nil, "cmd/x": nil,
		}, []string{"internal/a imports example.com/driver/sub"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := append(packageProblems(readTable(t, sampleDoc, "## Packages"), tt.pkgs),
				moduleProblems(readTable(t, sampleDoc, "## Modules only"), tt.pkgs)...)
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
