package provider

import (
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
