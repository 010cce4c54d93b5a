package accounttype

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestNoTypeSwitchesOutsideRegistry keeps the registry the one place an
// account type is described: no non-test Go file outside internal/accounttype
// and internal/config may name a type, neither by a config.Type* constant nor
// by its string. A layer that needs to know something about a type reads a
// Spec field (add one here when none fits).
//
// Two places write a type as data, not as a decision, and are allowed
// (allowed below): the benchmark's generated config file, and the admin test
// helper's fixture accounts.
//
// A type string is found as a word in any string literal ("needs a
// claude-api account" counts). A type whose string is also a platform or a
// login name ("gemini") is only found where it is compared with, assigned
// to or switched on as a Type field, since the word alone names the pool
// or the login just as well.
func TestNoTypeSwitchesOutsideRegistry(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case ".git", "internal/accounttype", "internal/config", "testdata":
				return filepath.SkipDir
			}
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || allowed[filepath.ToSlash(rel)] {
			return nil
		}
		for _, p := range typeMentions(t, path) {
			problems = append(problems, rel+":"+p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: read the account type's Spec (internal/accounttype) instead of naming the type", p)
	}
}

// allowed are the files that write a type string as data.
var allowed = map[string]bool{
	"cmd/relaybench/proc.go":                true, // the config file the benchmark relay reads
	"internal/admin/admintest/admintest.go": true, // fixture accounts of the admin API's tests
}

// TestTypeMentions checks the scanner itself on code that names types in
// each way it must catch, and on code that must pass.
func TestTypeMentions(t *testing.T) {
	dir := t.TempDir()
	bad := `package x

import "github.com/ccrelay/ccrelay/internal/config"

func f(a config.AccountConfig, typ string) string {
	if a.Type == config.TypeGemini {
		return "a"
	}
	switch a.Type {
	case "gemini":
	}
	if "gemini" != a.Type {
	}
	_ = struct{ Type string }{Type: "gemini"}
	return "run: ccrelay login claude for a claude-oauth account"
}
`
	good := `package x

const platform = "gemini"

func g(login string) string {
	if login == "gemini" {
		return "gemini-api-key"
	}
	return "claude-oauthish " + platform
}
`
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := writeFile(p, src); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := typeMentions(t, write("bad.go", bad)); len(got) != 5 {
		t.Errorf("bad.go: %d mentions, want 5: %q", len(got), got)
	}
	if got := typeMentions(t, write("good.go", good)); len(got) != 0 {
		t.Errorf("good.go: %q", got)
	}
}

// typeMentions lists where the file at path names an account type, as
// "line: what".
func typeMentions(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	configName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/ccrelay/ccrelay/internal/config" {
			configName = "config"
			if imp.Name != nil {
				configName = imp.Name.Name
			}
		}
	}
	words, ambiguous := typeWords()
	var out []string
	add := func(n ast.Node, what string) {
		out = append(out, strconv.Itoa(fset.Position(n.Pos()).Line)+": "+what)
	}
	// typeLit reports whether e is a literal of an ambiguous type string.
	typeLit := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil && ambiguous[s]
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && configName != "" && x.Name == configName && typeConst.MatchString(n.Sel.Name) {
				add(n, configName+"."+n.Sel.Name)
			}
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				break
			}
			s, err := strconv.Unquote(n.Value)
			if err != nil {
				break
			}
			if w := words.FindString(s); w != "" {
				add(n, strconv.Quote(strings.Trim(w, " \t\n\"'`.,;:()[]{}")))
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				break
			}
			for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
				if s, ok := typeLit(pair[0]); ok && isTypeField(pair[1]) {
					add(n, "Type compared with "+strconv.Quote(s))
				}
			}
		case *ast.SwitchStmt:
			if n.Tag == nil || !isTypeField(n.Tag) {
				break
			}
			for _, st := range n.Body.List {
				for _, e := range st.(*ast.CaseClause).List {
					if s, ok := typeLit(e); ok {
						add(e, "switch on Type, case "+strconv.Quote(s))
					}
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Type" {
				if s, ok := typeLit(n.Value); ok {
					add(n, "Type: "+strconv.Quote(s))
				}
			}
		}
		return true
	})
	return out
}

// typeConst matches config's type constants (TypeClaudeOAuth ...).
var typeConst = regexp.MustCompile(`^Type[A-Z]`)

// typeWords returns a pattern finding the unambiguous type strings as words
// (not as part of a longer name such as "gemini-api-key"), and the type
// strings that are also a platform or a login name.
func typeWords() (*regexp.Regexp, map[string]bool) {
	other := map[string]bool{PlatformClaude: true, PlatformGemini: true, PlatformOpenAI: true}
	for _, s := range All() {
		if s.Login != nil {
			other[s.Login.Name] = true
		}
	}
	ambiguous := map[string]bool{}
	var alts []string
	for _, s := range All() {
		if other[s.Type] {
			ambiguous[s.Type] = true
			continue
		}
		alts = append(alts, regexp.QuoteMeta(s.Type))
	}
	return regexp.MustCompile(`(^|[^A-Za-z0-9_-])(` + strings.Join(alts, "|") + `)($|[^A-Za-z0-9_-])`), ambiguous
}

// isTypeField reports whether e reads a field named Type (a.Type, a.Config.Type).
func isTypeField(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Type"
}

func writeFile(path, src string) error { return os.WriteFile(path, []byte(src), 0o600) }
