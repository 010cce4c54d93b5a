package tomledit

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

func TestScanStatements(t *testing.T) {
	src := "\ufeffa = 1979-05-27 07:32:00Z # date\r\n" +
		"b = { x = \"}\", y = [1, 2] }\n" +
		"c = \"\"\"x\\\"\"\"\"\"\n" + // content x\"  then a quote before the delimiter
		"[ \"t\" . 'u' ]\n" +
		"  d = ''\n" +
		"\n" +
		"# note\n" +
		"[[arr]]\n"
	stmts, err := Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		kind   Kind
		key    string
		val    string
		array  bool
		indent string
		empty  bool
	}
	want := []row{
		{kind: KeyVal, key: "a", val: "1979-05-27 07:32:00Z"},
		{kind: KeyVal, key: "b", val: `{ x = "}", y = [1, 2] }`},
		{kind: KeyVal, key: "c", val: `"""x\"""""`},
		{kind: Header, key: "t.u"},
		{kind: KeyVal, key: "d", val: "''", indent: "  "},
		{kind: Blank, empty: true},
		{kind: Blank},
		{kind: Header, key: "arr", array: true},
	}
	if len(stmts) != len(want) {
		t.Fatalf("got %d statements, want %d: %+v", len(stmts), len(want), stmts)
	}
	for i, st := range stmts {
		got := row{kind: st.Kind, key: strings.Join(st.Key, "."), array: st.Array, indent: st.Indent(src), empty: st.EmptyLine(src)}
		if st.Kind == KeyVal {
			got.val = src[st.ValStart:st.ValEnd]
		}
		if got != want[i] {
			t.Errorf("statement %d = %+v, want %+v", i, got, want[i])
		}
	}
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Errorf("the scanned text is not valid TOML, fix the test: %v", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`http://h:1/v1`:    `"http://h:1/v1"`,
		`a"b\c`:            `"a\"b\\c"`,
		"x\ny\x01":         `"x\ny\u0001"`,
		"\b\f\t\r\x7f":     `"\b\f\t\r\u007F"`,
		"é ✓ \u2028":       "\"é ✓ \u2028\"",
		"\"\"\"\n[[x]]\n#": `"\"\"\"\n[[x]]\n#"`,
	} {
		got, err := Quote(in)
		if err != nil || got != want {
			t.Errorf("Quote(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := Quote("a\xffb"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"refresh_token": "refresh_token",
		"a-b_9":         "a-b_9",
		"a.b":           `"a.b"`,
		"with space":    `"with space"`,
		"":              `""`,
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestEOL(t *testing.T) {
	for in, want := range map[string]string{"": "\n", "a = 1\n": "\n", "a = 1\r\nb = 2\n": "\r\n", "\n": "\n"} {
		if got := EOL(in); got != want {
			t.Errorf("EOL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzScan checks the scanner against the real decoder: any text the
// decoder accepts must split into statements that cover it exactly, and
// replacing a value with a quoted string must keep it valid TOML.
func FuzzScan(f *testing.F) {
	f.Add("# c\napi_keys = [\"k\"] # [[accounts]]\n\n[server]\nport = 3000\n\n[[accounts]]\n  \"id\" = 'a'\n  name = \"\"\"\n[[accounts]]\nid = \"b\"\n\"\"\"\n[accounts.proxy]\nhost = \"h\"\n")
	f.Add("a = [\n# ]\n'''\n]''', \"\"\"\n]\"\"\"]\nb = {c = 'd'}\n")
	f.Add("\ufeff[x]\r\ny = 1979-05-27T07:32:00 # c\r\n")
	f.Add("model_provider = \"openai\"\n[model_providers.ccrelay]\nname = \"x\"\n[[profiles.a]]\n")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, src string) {
		var doc map[string]any
		if _, err := toml.Decode(src, &doc); err != nil {
			return
		}
		stmts, err := Scan(src)
		if err != nil {
			t.Fatalf("Scan rejected valid TOML: %v\n%q", err, src)
		}
		pos := BOMLen(src)
		for _, st := range stmts {
			if st.Start != pos || st.End <= st.Start {
				t.Fatalf("statement %+v does not start at %d\n%q", st, pos, src)
			}
			pos = st.End
			if st.Kind != KeyVal {
				continue
			}
			edited := src[:st.ValStart] + `"x"` + src[st.ValEnd:]
			if _, err := toml.Decode(edited, new(map[string]any)); err != nil {
				t.Fatalf("replacing value %q broke the file: %v\n%q", src[st.ValStart:st.ValEnd], err, src)
			}
		}
		if pos != len(src) {
			t.Fatalf("statements end at %d of %d\n%q", pos, len(src), src)
		}
	})
}

// FuzzQuote: every valid UTF-8 string quotes to one TOML string that
// decodes back to it, on one line.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "plain", `a"b\c`, "\x00\b\f\x1f\x7f", "'''\n\"\"\"", "é\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Quote(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("invalid UTF-8 %q accepted", s)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(q, "\r\n") {
			t.Fatalf("Quote(%q) = %s spans lines", s, q)
		}
		var doc map[string]any
		if _, err := toml.Decode("v = "+q+"\n", &doc); err != nil {
			t.Fatalf("Quote(%q) = %s does not decode: %v", s, q, err)
		}
		if doc["v"] != s || len(doc) != 1 {
			t.Fatalf("Quote(%q) = %s decodes to %q", s, q, doc)
		}
	})
}
