package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tidwall/gjson"
)

// richBody is a Gemini CLI-style turn with every field a re-marshalling relay
// tends to lose: camelCase part fields, thoughtSignature, functionCall.id,
// parametersJsonSchema, odd spacing, unicode escapes, and a field no API
// version has yet.
const richBody = `{"contents":[{"role":"user","parts":[{"text":"list files \u00e9\n"}]},` +
	`{"role":"model","parts":[{"functionCall":{"id":"list_directory_1732500000_0","args":{"dir_path":"."},"name":"list_directory"},"thoughtSignature":"skip_thought_signature_validator"}]},` +
	`{"role":"user","parts":[{"functionResponse":{"name":"list_directory","response":{"output":"Directory . is empty."},"id":"list_directory_1732500000_0"}}]}],` +
	`"systemInstruction":{"parts":[{"text":"You are a CLI agent."}]},` +
	`"tools":[{"functionDeclarations":[{"name":"list_directory","description":"Lists","parametersJsonSchema":{"type":"object","properties":{"dir_path":{"type":"string"}},"required":["dir_path"]}}]}],` +
	`"generationConfig":{"temperature":1,"topP":0.95,"topK":64,"thinkingConfig":{"includeThoughts":true,"thinkingBudget":8192}},` +
	`"futureField":{"nested":[1,2.50,{"x":null}],  "spaced" :  true}}`

func TestWrapCodeAssist(t *testing.T) {
	tests := []struct {
		name    string
		call    Call
		project string
		body    string
		want    string
		wantErr bool
	}{
		{
			name: "generate with project", call: Call{"v1beta", "gemini-2.5-pro", MethodGenerate}, project: "proj-123",
			body: `{"contents":[]}`, want: `{"model":"gemini-2.5-pro","project":"proj-123","request":{"contents":[]}}`,
		},
		{
			name: "stream without project", call: Call{"v1beta", "gemini-2.5-flash", MethodStream},
			body: " \n{\"contents\":[]}\n", want: `{"model":"gemini-2.5-flash","request":{"contents":[]}}`,
		},
		{
			name: "project needing escapes", call: Call{"v1beta", "m", MethodGenerate}, project: "a\"b\\c\n",
			body: `{}`, want: `{"model":"m","project":"a\"b\\c\n","request":{}}`,
		},
		{
			name: "count tokens", call: Call{"v1beta", "gemini-2.5-pro", MethodCountTokens}, project: "ignored",
			body: `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`,
			want: `{"request":{"model":"models/gemini-2.5-pro","contents":[{"role":"user","parts":[{"text":"hi"}]}]}}`,
		},
		{
			name: "count tokens empty body", call: Call{"v1beta", "m", MethodCountTokens},
			body: `{ }`, want: `{"request":{"model":"models/m"}}`,
		},
		{
			name: "count tokens with model field", call: Call{"v1beta", "m", MethodCountTokens},
			body: `{"model":"models/other","contents":[]}`, want: `{"request":{"model":"models/m","contents":[]}}`,
		},
		{
			name: "count tokens generateContentRequest form", call: Call{"v1beta", "m", MethodCountTokens},
			body: `{"generateContentRequest":{"model":"models/m","contents":[{"parts":[{"text":"x"}]}]}}`,
			want: `{"request":{"model":"models/m","contents":[{"parts":[{"text":"x"}]}]}}`,
		},
		{name: "invalid json", call: Call{"v1beta", "m", MethodGenerate}, body: `{"contents":`, wantErr: true},
		{name: "array", call: Call{"v1beta", "m", MethodGenerate}, body: `[{}]`, wantErr: true},
		{name: "string", call: Call{"v1beta", "m", MethodGenerate}, body: `"x"`, wantErr: true},
		{name: "empty", call: Call{"v1beta", "m", MethodGenerate}, body: ``, wantErr: true},
		{name: "trailing garbage", call: Call{"v1beta", "m", MethodGenerate}, body: `{} {}`, wantErr: true},
		{name: "bad model", call: Call{"v1beta", "../x", MethodGenerate}, body: `{}`, wantErr: true},
		{name: "bad method", call: Call{"v1beta", "m", "embedContent"}, body: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WrapCodeAssist(tt.call, tt.project, []byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("WrapCodeAssist = %s, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("WrapCodeAssist: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("WrapCodeAssist =\n%s\nwant\n%s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("result is not valid JSON: %s", got)
			}
		})
	}
}

func TestWrapCodeAssistInvalidJSONIsErrNotObject(t *testing.T) {
	_, err := WrapCodeAssist(Call{"v1beta", "m", MethodGenerate}, "", []byte(`{`))
	if !errors.Is(err, ErrNotObject) {
		t.Fatalf("err = %v, want ErrNotObject", err)
	}
}

func TestWrapUnwrapRoundTrip(t *testing.T) {
	body := []byte(richBody)
	if !json.Valid(body) {
		t.Fatal("fixture is not valid JSON")
	}
	for _, m := range []string{MethodGenerate, MethodStream} {
		t.Run(m, func(t *testing.T) {
			wrapped, err := WrapCodeAssist(Call{"v1beta", "gemini-2.5-pro", m}, "p-1", body)
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(wrapped, "request").Raw; got != richBody {
				t.Errorf("request not byte-exact:\n%s\nwant\n%s", got, richBody)
			}
			// Code Assist answers with the same bytes under "response".
			answer := append(append([]byte(`{"response": `), body...), `,"traceId":"abc","consumedCredits":[]}`...)
			if got := UnwrapCodeAssist(answer); !bytes.Equal(got, body) {
				t.Errorf("unwrap not byte-exact:\n%s\nwant\n%s", got, body)
			}
		})
	}
}

func TestUnwrapCodeAssist(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"wrapped", `{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"hi","thoughtSignature":"c2ln"}]}}]},"traceId":"t"}`, `{"candidates":[{"content":{"role":"model","parts":[{"text":"hi","thoughtSignature":"c2ln"}]}}]}`},
		{"trace first", `{"traceId":"t","response":{"a":1}}`, `{"a":1}`},
		{"whitespace", " {\n \"response\" : { \"a\" : 1 } }\n", `{ "a" : 1 }`},
		{"count tokens passes", `{"totalTokens":31}`, `{"totalTokens":31}`},
		{"error passes", `{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED"}}`, `{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED"}}`},
		{"public response passes", `{"candidates":[],"usageMetadata":{"promptTokenCount":1}}`, `{"candidates":[],"usageMetadata":{"promptTokenCount":1}}`},
		{"response not object", `{"response":"x"}`, `{"response":"x"}`},
		{"nested response not unwrapped", `{"a":{"response":{"b":1}}}`, `{"a":{"response":{"b":1}}}`},
		{"array passes", `[{"response":{"a":1}}]`, `[{"response":{"a":1}}]`},
		{"empty", ``, ``},
		{"garbage", `not json`, `not json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnwrapCodeAssist([]byte(tt.body)); string(got) != tt.want {
				t.Errorf("UnwrapCodeAssist = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnwrapCodeAssistAliasesWithClippedCapacity(t *testing.T) {
	body := []byte(`{"response":{"a":1},"traceId":"t"}`)
	got := UnwrapCodeAssist(body)
	if cap(got) != len(got) {
		t.Fatalf("cap = %d, want %d", cap(got), len(got))
	}
	_ = append(got, 'X')
	if string(body) != `{"response":{"a":1},"traceId":"t"}` {
		t.Fatalf("append through the result changed body: %s", body)
	}
}

func TestUnwrapCodeAssistAllocs(t *testing.T) {
	body := []byte(`{"response":` + richBody + `,"traceId":"t"}`)
	if n := testing.AllocsPerRun(100, func() { UnwrapCodeAssist(body) }); n != 0 {
		t.Errorf("UnwrapCodeAssist allocates %v times, want 0", n)
	}
}
