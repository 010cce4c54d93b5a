package convert

import (
	"reflect"
	"testing"

	"github.com/tidwall/gjson"
)

// TestDecodeTopLevelMembers checks the decoders' one pass over the
// top-level members: an escaped key is read by its decoded name, and of a
// repeated member read afterwards the first counts, as gjson.Get found it.
func TestDecodeTopLevelMembers(t *testing.T) {
	m, err := DecodeMessages([]byte(`{"m\u006fdel":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],` +
		`"tool_ch\u006fice":{"type":"none"},"thinking":{"type":"enabled","budget_tokens":100},"thinking":{"type":"disabled"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Model != "claude-x" || m.ToolChoice.Mode != "none" || !m.Thinking.Enabled || m.Thinking.Budget != 100 {
		t.Errorf("DecodeMessages: model %q, tool choice %+v, thinking %+v", m.Model, m.ToolChoice, m.Thinking)
	}
	r, err := DecodeResponses([]byte(`{"mod\u0065l":"gpt-x","input":"hi","instructions":"first","instructions":"second",` +
		`"reas\u006fning":{"effort":"high"},"text":{"format":{"type":"json_object"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "gpt-x" || len(r.System) != 1 || r.System[0] != "first" || r.Thinking.Effort != "high" || r.Format == nil || !r.Format.JSON {
		t.Errorf("DecodeResponses: model %q, system %q, thinking %+v, format %+v", r.Model, r.System, r.Thinking, r.Format)
	}
}

// FuzzForEachMember checks forEachMember against gjson's ForEach on any
// valid JSON object: the same keys, in order, with the same values.
func FuzzForEachMember(f *testing.F) {
	f.Add([]byte(`{"a":1,"b\u0063":"x\ny","c":[1,{"d":"]"}],"":null,"e":{"f":true}}`))
	f.Add([]byte(` { "k" : "v\"" , "k" : -1.5e3 } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !gjson.ValidBytes(body) {
			return
		}
		root := gjson.ParseBytes(body)
		if !root.IsObject() {
			return
		}
		type member struct {
			key string
			typ gjson.Type
			raw string
			str string
		}
		var want, got []member
		root.ForEach(func(k, v gjson.Result) bool {
			want = append(want, member{k.Str, v.Type, v.Raw, v.Str})
			return true
		})
		forEachMember(root, func(k string, v gjson.Result) bool {
			got = append(got, member{k, v.Type, v.Raw, v.Str})
			return true
		})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("forEachMember %+v\ngjson ForEach %+v", got, want)
		}
	})
}
