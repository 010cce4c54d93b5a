package archtest

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/ccrelay/ccrelay"

// rule is one row of a table in docs/ARCHITECTURE.md: the packages it
// describes and the module packages (or third-party modules) it allows.
type rule struct {
	line     int
	packages []string // patterns: exact, dir/* (one level below), dir/... (dir and below)
	allowed  []string // patterns as above
	anything bool     // "everything": any module package
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readTable returns the rows of the markdown table that follows the heading
// starting with heading, from ARCHITECTURE.md's text.
func readTable(t *testing.T, text, heading string) []rule {
	t.Helper()
	var rules []rule
	in := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, heading)
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) < 2 {
			t.Fatalf("ARCHITECTURE.md:%d: a row needs at least two cells: %q", n, line)
		}
		last := cells[len(cells)-1]
		r := rule{line: n, packages: ticks(cells[0]), allowed: ticks(last)}
		if len(r.allowed) == 0 && strings.Contains(last, "everything") {
			r.anything = true
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		t.Fatalf("ARCHITECTURE.md: no table rows under %q", heading)
	}
	return rules
}

func ticks(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// match reports whether the package path pkg (relative to the module, or a
// third-party import path) matches pattern.
func match(pattern, pkg string) bool {
	switch {
	case strings.HasSuffix(pattern, "/..."):
		dir := strings.TrimSuffix(pattern, "/...")
		return pkg == dir || strings.HasPrefix(pkg, dir+"/")
	case strings.HasSuffix(pattern, "/*"):
		dir := strings.TrimSuffix(pattern, "/*")
		rest, ok := strings.CutPrefix(pkg, dir+"/")
		return ok && !strings.Contains(rest, "/")
	default:
		return pkg == pattern
	}
}

func matchAny(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if match(p, pkg) {
			return true
		}
	}
	return false
}

// modulePackages maps each package directory of the module (relative path)
// to the import paths its non-test files import, whatever their build tags.
// Directories with only tests are listed with no imports.
func modulePackages(t *testing.T, root string) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		seen := pkgs[rel]
		if strings.HasSuffix(path, "_test.go") {
			pkgs[rel] = seen // a test-only package needs a row too; its tests import freely
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			seen = append(seen, p)
		}
		pkgs[rel] = seen
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// architecture returns the module's root directory and the text of
// docs/ARCHITECTURE.md.
func architecture(t *testing.T) (root, doc string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	return root, string(b)
}

func TestPackageTableIsTrue(t *testing.T) {
	root, doc := architecture(t)
	rules := readTable(t, doc, "## Packages")
	for _, p := range packageProblems(rules, modulePackages(t, root)) {
		t.Error(p)
	}
}

// packageProblems lists every package without a row, every module import a
// row does not allow, and every row or allowance naming nothing real.
func packageProblems(rules []rule, pkgs map[string][]string) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	used := map[int]map[string]bool{} // row line -> allowed exact entries used
	for _, pkg := range names {
		var row *rule
		for i := range rules {
			if matchAny(rules[i].packages, pkg) {
				row = &rules[i]
				break
			}
		}
		if row == nil {
			errorf("package %s has no row in the package table of docs/ARCHITECTURE.md", pkg)
			continue
		}
		for _, imp := range pkgs[pkg] {
			local, ok := strings.CutPrefix(imp, modulePath+"/")
			if !ok {
				continue
			}
			if local == pkg {
				continue
			}
			if row.anything || matchAny(row.allowed, local) {
				if used[row.line] == nil {
					used[row.line] = map[string]bool{}
				}
				for _, a := range row.allowed {
					if match(a, local) {
						used[row.line][a] = true
					}
				}
				continue
			}
			errorf("%s imports %s, which its row (docs/ARCHITECTURE.md:%d) does not allow", pkg, local, row.line)
		}
	}
	for _, r := range rules {
		for _, p := range r.packages {
			if !anyName(names, p) {
				errorf("docs/ARCHITECTURE.md:%d names %s, which is no package", r.line, p)
			}
		}
		for _, a := range r.allowed {
			if !anyName(names, a) {
				errorf("docs/ARCHITECTURE.md:%d allows %s, which is no package", r.line, a)
				continue
			}
			// An exact allowance says "imports": keep it true.
			if !strings.HasSuffix(a, "/*") && !strings.HasSuffix(a, "/...") && !used[r.line][a] {
				errorf("docs/ARCHITECTURE.md:%d allows %s, which none of %v imports", r.line, a, r.packages)
			}
		}
	}
	return problems
}

func anyName(names []string, pattern string) bool {
	for _, n := range names {
		if match(pattern, n) {
			return true
		}
	}
	return false
}

// TestThirdPartyImportsStayWhereTheTableSays checks the table of modules that
// only some packages may import (the database driver, the browser opener,
// cobra, Redis, Prometheus).
func TestThirdPartyImportsStayWhereTheTableSays(t *testing.T) {
	root, doc := architecture(t)
	rules := readTable(t, doc, "## Modules only some packages import")
	for _, p := range moduleProblems(rules, modulePackages(t, root)) {
		t.Error(p)
	}
}

// moduleProblems lists every import of a listed module from a package its row
// does not name, and every listed module nothing imports.
func moduleProblems(rules []rule, pkgs map[string][]string) []string {
	var problems []string
	for _, r := range rules {
		for _, mod := range r.packages {
			importers := 0
			for pkg, imps := range pkgs {
				for _, imp := range imps {
					if imp != mod && !strings.HasPrefix(imp, mod+"/") {
						continue
					}
					importers++
					if !matchAny(r.allowed, pkg) {
						problems = append(problems, fmt.Sprintf("%s imports %s; docs/ARCHITECTURE.md:%d allows only %v", pkg, imp, r.line, r.allowed))
					}
				}
			}
			if importers == 0 {
				problems = append(problems, fmt.Sprintf("docs/ARCHITECTURE.md:%d names %s, which no package imports", r.line, mod))
			}
		}
	}
	return problems
}
