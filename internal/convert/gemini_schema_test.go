package convert

import (
	"strings"
	"testing"
)

// TestCleanGeminiSchema: one row per keyword Gemini refuses or needs in
// another form (tool-schema 400s are the most common Gemini relay bug).
func TestCleanGeminiSchema(t *testing.T) {
	obj := func(prop string) string {
		return `{"type":"object","properties":{"p":` + prop + `}}`
	}
	tests := []struct{ name, in, want string }{
		{"$schema and $id dropped", `{"$schema":"http://json-schema.org/draft-07/schema#","$id":"x","type":"object","properties":{"a":{"type":"string"}}}`,
			obj(`{"type":"string"}`)[:0] + `{"type":"object","properties":{"a":{"type":"string"}}}`},
		{"additionalProperties dropped at every level", `{"type":"object","additionalProperties":false,"properties":{"p":{"type":"object","additionalProperties":{"type":"string"},"properties":{"q":{"type":"string"}}}}}`,
			obj(`{"type":"object","properties":{"q":{"type":"string"}}}`)},
		{"patternProperties and unevaluatedProperties dropped", obj(`{"type":"object","patternProperties":{"^x":{"type":"string"}},"unevaluatedProperties":false,"properties":{"q":{"type":"integer"}}}`),
			obj(`{"type":"object","properties":{"q":{"type":"integer"}}}`)},
		{"$ref into $defs inlined", `{"type":"object","properties":{"p":{"$ref":"#/$defs/Pt","description":"where"}},"$defs":{"Pt":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}}}`,
			obj(`{"type":"object","description":"where","properties":{"x":{"type":"number"}},"required":["x"]}`)},
		{"$ref into definitions inlined", `{"type":"object","properties":{"p":{"$ref":"#/definitions/S"}},"definitions":{"S":{"type":"string","enum":["a","b"]}}}`,
			obj(`{"type":"string","enum":["a","b"]}`)},
		{"recursive $ref bounded", `{"type":"object","properties":{"p":{"$ref":"#/$defs/N"}},"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`, ""},
		{"unresolvable $ref is a plain object", obj(`{"$ref":"https://example.com/s.json"}`), obj(`{"type":"object"}`)},
		{"const becomes a one-value enum", obj(`{"const":"fixed"}`), obj(`{"type":"string","enum":["fixed"]}`)},
		{"numeric const goes to the description", obj(`{"type":"integer","const":3,"description":"n"}`), obj(`{"type":"integer","description":"n (Allowed values: 3.)"}`)},
		{"numeric enum goes to the description", obj(`{"type":"integer","enum":[1,2]}`), obj(`{"type":"integer","description":"Allowed values: 1, 2."}`)},
		{"exclusiveMinimum/Maximum and bounds dropped", obj(`{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":10,"minimum":0,"maximum":9,"multipleOf":2}`), obj(`{"type":"number"}`)},
		{"string constraints dropped", obj(`{"type":"string","minLength":1,"maxLength":9,"pattern":"^a"}`), obj(`{"type":"string"}`)},
		{"array constraints dropped", obj(`{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":3,"uniqueItems":true}`), obj(`{"type":"array","items":{"type":"string"}}`)},
		{"format uri dropped", obj(`{"type":"string","format":"uri"}`), obj(`{"type":"string"}`)},
		{"format date-time kept", obj(`{"type":"string","format":"date-time"}`), obj(`{"type":"string","format":"date-time"}`)},
		{"format int64 kept on integers", obj(`{"type":"integer","format":"int64"}`), obj(`{"type":"integer","format":"int64"}`)},
		{"nullable anyOf becomes nullable", obj(`{"anyOf":[{"type":"string"},{"type":"null"}],"description":"d"}`), obj(`{"type":"string","nullable":true,"description":"d"}`)},
		{"oneOf of string consts becomes one enum", obj(`{"oneOf":[{"const":"a"},{"const":"b"}]}`), obj(`{"type":"string","enum":["a","b"]}`)},
		{"anyOf of different shapes stays anyOf", obj(`{"anyOf":[{"type":"string"},{"type":"object","properties":{"x":{"type":"boolean"}},"additionalProperties":false}]}`),
			obj(`{"anyOf":[{"type":"string"},{"type":"object","properties":{"x":{"type":"boolean"}}}]}`)},
		{"allOf merged", obj(`{"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"properties":{"b":{"type":"integer"}}}]}`),
			obj(`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a"]}`)},
		{"type array with null becomes type + nullable", obj(`{"type":["string","null"]}`), obj(`{"type":"string","nullable":true}`)},
		{"type array of several types becomes anyOf", obj(`{"type":["string","integer"]}`), obj(`{"anyOf":[{"type":"string"},{"type":"integer"}]}`)},
		{"enum with null becomes nullable", obj(`{"type":"string","enum":["a",null]}`), obj(`{"type":"string","enum":["a"],"nullable":true}`)},
		{"default, examples, title dropped", obj(`{"type":"string","default":"x","examples":["y"],"title":"T"}`), obj(`{"type":"string"}`)},
		{"not, if/then/else dropped", obj(`{"type":"string","not":{"const":"x"},"if":{},"then":{},"else":{}}`), obj(`{"type":"string"}`)},
		{"required names that are not properties dropped", `{"type":"object","properties":{"a":{"type":"string"}},"required":["a","ghost","a"]}`,
			`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`},
		{"array without items gets string items", obj(`{"type":"array"}`), obj(`{"type":"array","items":{"type":"string"}}`)},
		{"tuple items take the first schema", obj(`{"type":"array","items":[{"type":"integer"},{"type":"string"}]}`), obj(`{"type":"array","items":{"type":"integer"}}`)},
		{"typeless schemas get a type", obj(`{"properties":{"x":{}}}`), obj(`{"type":"object","properties":{"x":{"type":"string"}}}`)},
		{"empty nested properties dropped", obj(`{"type":"object","properties":{}}`), obj(`{"type":"object"}`)},
		{"an object without properties declares no parameters", `{"type":"object","properties":{},"additionalProperties":false}`, ""},
		{"not an object", `[1]`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CleanGeminiSchema([]byte(tc.in))
			if tc.name == "recursive $ref bounded" {
				if got == nil || strings.Count(string(got), `"next"`) != geminiMaxRefDepth {
					t.Fatalf("got %s", got)
				}
				return
			}
			if tc.want == "" {
				if got != nil {
					t.Fatalf("got %s, want nil", got)
				}
				return
			}
			if !jsonEq(t, string(got), tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestCleanGeminiSchemaBounded: a schema whose refs fan out exponentially
// stays bounded.
func TestCleanGeminiSchemaBounded(t *testing.T) {
	defs := `"D0":{"type":"string"}`
	for i := 1; i < 30; i++ {
		d := itoa(i - 1)
		defs += `,"D` + itoa(i) + `":{"type":"object","properties":{"a":{"$ref":"#/$defs/D` + d + `"},"b":{"$ref":"#/$defs/D` + d + `"}}}`
	}
	in := `{"type":"object","properties":{"root":{"$ref":"#/$defs/D29"}},"$defs":{` + defs + `}}`
	got := CleanGeminiSchema([]byte(in))
	if got == nil || len(got) > 4<<20 {
		t.Fatalf("got %d bytes", len(got))
	}
}

func TestGeminiSchemaToJSON(t *testing.T) {
	in := `{"type":"OBJECT","propertyOrdering":["a","b"],"properties":{"a":{"type":"STRING","nullable":true,"example":"x","format":"enum","enum":["x"]},"b":{"type":"ARRAY","items":{"type":"INTEGER"}},"c":{"anyOf":[{"type":"NUMBER"},{"type":"BOOLEAN"}]}},"required":["a"]}`
	want := `{"type":"object","properties":{"a":{"type":["string","null"],"enum":["x"]},"b":{"type":"array","items":{"type":"integer"}},"c":{"anyOf":[{"type":"number"},{"type":"boolean"}]}},"required":["a"]}`
	if got := geminiSchemaToJSON([]byte(in)); !jsonEq(t, string(got), want) {
		t.Errorf("got %s", got)
	}
	if got := string(geminiSchemaToJSON([]byte(`[1]`))); got != `[1]` {
		t.Errorf("non-object %s", got)
	}
}
