package provider

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

type member struct{ key, value string }

func members(b []byte) ([]member, bool) {
	var out []member
	ok := ForEachMember(b, func(k, v []byte) bool {
		out = append(out, member{string(k), string(v)})
		return true
	})
	return out, ok
}

func TestForEachMember(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []member
		ok   bool
	}{
		{`{}`, nil, true},
		{` { } `, nil, true},
		{`{"a":1}`, []member{{"a", "1"}}, true},
		{`{"model":"claude","stream":true,"n":null}`, []member{{"model", `"claude"`}, {"stream", "true"}, {"n", "null"}}, true},
		{`{"s":"a\"b\\","x":[1,{"y":"]}\""}],"z":{"q":"{"}}`, []member{{"s", `"a\"b\\"`}, {"x", `[1,{"y":"]}\""}]`}, {"z", `{"q":"{"}`}}, true},
		{"{\n \"a\" : \"v\" ,\n \"b\":-1.5e3\n}", []member{{"a", `"v"`}, {"b", "-1.5e3"}}, true},
		{`{"k\"ey":1}`, []member{{`k\"ey`, "1"}}, true},
		{`{"a":"unterminated}`, nil, false},
		// Bracket kinds are not matched (the upstream validates); the
		// object is still reported unfinished.
		{`{"a":[1,2}`, []member{{"a", "[1,2}"}}, false},
		{`{"a":1,}`, []member{{"a", "1"}}, false},
		{`{"a" 1}`, nil, false},
		{`[1,2]`, nil, false},
		{`{"a":}`, nil, false},
	} {
		got, ok := members([]byte(tc.in))
		if ok != tc.ok || len(got) != len(tc.want) {
			t.Errorf("%s: got %v ok=%v, want %v ok=%v", tc.in, got, ok, tc.want, tc.ok)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: member %d = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestForEachMemberStops(t *testing.T) {
	n := 0
	ForEachMember([]byte(`{"a":1,"b":2,"c":3}`), func(k, v []byte) bool { n++; return string(k) != "b" })
	if n != 2 {
		t.Fatalf("visited %d members after stop, want 2", n)
	}
}

// On valid JSON, ForEachMember agrees with a full parser member by member.
func FuzzForEachMember(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"model":"m","metadata":{"user_id":"{\"session_id\":\"x\"}"},"stream":true}`,
		`{"s":"a\"b\\","x":[1,{"y":"]}\""}],"z":{"q":"{"}}`, `{"a":"\\\\\""}`, `{"e":"\u00e9\ud83d\ude00"}`,
		`{"a":[[],{},[{}]],"b":false,"c":null,"d":-0.1e-5}`, `{"a":1,"a":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := members(b) // must not panic on anything
		if !gjson.ValidBytes(b) || !strings.HasPrefix(strings.TrimLeft(string(b), " \t\r\n"), "{") {
			return
		}
		if !ok {
			t.Fatalf("valid object rejected: %q", b)
		}
		var want []member
		gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
			raw := strings.TrimSpace(k.Raw)
			want = append(want, member{raw[1 : len(raw)-1], v.Raw})
			return true
		})
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, gjson %d", b, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: member %d = %q, gjson %q", b, i, got[i], want[i])
			}
		}
	})
}

// A repeated member the caller reads is reported, escaped spellings
// included; repeats of other members are not (issue 31, item 4).
func TestPickMembers(t *testing.T) {
	names := []string{"model", "stream"}
	for _, tc := range []struct {
		in, repeated, model string
	}{
		{`{"model":"a","stream":true}`, "", `"a"`},
		{`{"model":"gpt-5-mini","model":"gpt-5-pro"}`, "model", ""},
		{`{"model":"a","messages":[],"stream":false,"stream":true}`, "stream", ""},
		{`{"model":"a","mod\u0065l":"b"}`, "model", ""},
		{`{"x":1,"x":2,"model":"a"}`, "", `"a"`},
		{`{"metadata":{"model":"b"},"model":"a"}`, "", `"a"`},
	} {
		vals := make([][]byte, len(names))
		rep, ok := PickMembers([]byte(tc.in), names, vals)
		if !ok || rep != tc.repeated || (tc.repeated == "" && string(vals[0]) != tc.model) {
			t.Errorf("%s: repeated %q ok %v model %s", tc.in, rep, ok, vals[0])
		}
	}
	// nil names: every member counts.
	for in, want := range map[string]string{
		`{"a":1,"b":2}`:                   "",
		`{"a":1,"b":2,"a":3}`:             "a",
		`{"a":1,"\u0061":2}`:              "a",
		manyKeys(200) + `,"k7":1}`:        "k7",
		manyKeys(200) + `,"other":1}`:     "",
		`{"model":"x","model":"y","z":1}`: "model",
	} {
		if rep, _ := PickMembers([]byte(in), nil, nil); rep != want {
			t.Errorf("%.40s: repeated %q, want %q", in, rep, want)
		}
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	return b.String()
}

// PickMembers reports a repeat exactly when encoding/json and gjson could
// read different values for a key: it agrees with a full parse of the keys.
func FuzzPickMembers(f *testing.F) {
	for _, s := range []string{`{"model":"a","model":"b"}`, `{"a":1,"\u0061":2}`, `{"model":"a","stream":true}`, `{"a":{"a":1},"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, _ := PickMembers(b, nil, nil) // must not panic on anything
		vals := make([][]byte, 2)
		PickMembers(b, []string{"model", "stream"}, vals)
		if !gjson.ValidBytes(b) || !gjson.ParseBytes(b).IsObject() {
			return
		}
		seen := map[string]bool{}
		want := ""
		gjson.ParseBytes(b).ForEach(func(k, _ gjson.Result) bool {
			if seen[k.String()] {
				want = k.String()
				return false
			}
			seen[k.String()] = true
			return true
		})
		if rep != want {
			t.Fatalf("%q: repeated %q, want %q", b, rep, want)
		}
	})
}
