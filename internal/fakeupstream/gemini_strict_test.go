package fakeupstream

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// strictGemini serves a strict Gemini fake whose first model call is
// answered with GeminiThoughtToolCall.
func strictGemini(t *testing.T) (*GeminiAPI, string) {
	t.Helper()
	g := &GeminiAPI{Strict: true}
	g.Script = func(n int, r *Recorded) *Reply {
		if n == 0 {
			model, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/v1beta/models/"), ":")
			return GeminiThoughtToolCall(r, model, "list_directory", `{"dir_path":"."}`)
		}
		return nil
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL + "/v1beta/models/"
}

var geminiKey = map[string]string{"x-goog-api-key": "k"}

func toolBody(params string) string {
	return `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"read_file","description":"Read","parameters":` + params + `}]}]}`
}

func TestStrictGeminiRefusesSchemas(t *testing.T) {
	tests := []struct{ name, body, field, msg string }{
		{"additionalProperties", toolBody(`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"object","additionalProperties":false,"properties":{"c":{"type":"string"}}}}}`),
			"tools[0].function_declarations[0].parameters.properties[1].value",
			`Invalid JSON payload received. Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters.properties[1].value': Cannot find field.`},
		{"$schema", toolBody(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"type":"string"}}}`),
			"tools[0].function_declarations[0].parameters", `Unknown name "$schema" at 'tools[0].function_declarations[0].parameters'`},
		{"$ref", toolBody(`{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"string"}}}`),
			"tools[0].function_declarations[0].parameters", `Unknown name "$defs"`},
		{"const in anyOf", toolBody(`{"type":"object","properties":{"a":{"anyOf":[{"const":"x"},{"type":"null"}]}}}`),
			"tools[0].function_declarations[0].parameters.properties[0].value.any_of[0]", `Unknown name "const"`},
		{"exclusiveMinimum in items", toolBody(`{"type":"object","properties":{"a":{"type":"array","items":{"type":"number","exclusiveMinimum":0}}}}`),
			"tools[0].function_declarations[0].parameters.properties[0].value.items", `Unknown name "exclusiveMinimum"`},
		{"type array", toolBody(`{"type":"object","properties":{"a":{"type":["string","null"]}}}`),
			"tools[0].function_declarations[0].parameters.properties[0].value.type", `Invalid value at 'tools[0].function_declarations[0].parameters.properties[0].value.type'`},
		{"object without properties", toolBody(`{"type":"object","properties":{}}`),
			"tools[0].function_declarations[0].parameters.properties", "should be non-empty for OBJECT type"},
		{"array without items", toolBody(`{"type":"object","properties":{"a":{"type":"array"}}}`),
			"tools[0].function_declarations[0].parameters.properties[0].value.items", "missing field"},
		{"strict on a declaration", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"f","strict":true}]}]}`,
			"tools[0].function_declarations[0]", `Unknown name "strict" at 'tools[0].function_declarations[0]'`},
		{"invalid function name", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"9 lives"}]}]}`,
			"tools[0].function_declarations[0].name", "Invalid function name"},
		{"responseSchema", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"responseMimeType":"application/json","responseSchema":{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"}}}}}`,
			"generation_config.response_schema", `Unknown name "additionalProperties" at 'generation_config.response_schema'`},
	}
	_, url := strictGemini(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, url+"gemini-2.5-flash:generateContent", tc.body, geminiKey)
			if status != 400 || gjson.GetBytes(body, "error.status").Str != "INVALID_ARGUMENT" ||
				!strings.Contains(gjson.GetBytes(body, "error.message").Str, tc.msg) {
				t.Fatalf("status %d body %s, want a 400 with %q", status, body, tc.msg)
			}
			found := false
			gjson.GetBytes(body, "error.details.0.fieldViolations").ForEach(func(_, v gjson.Result) bool {
				found = found || v.Get("field").Str == tc.field
				return true
			})
			if !found {
				t.Errorf("no field violation on %s: %s", tc.field, body)
			}
		})
	}
}

// TestStrictGeminiAcceptsCleanedSchemas: the same schemas through
// convert.EncodeGemini pass.
func TestStrictGeminiAcceptsCleanedSchemas(t *testing.T) {
	schemas := []string{
		`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"object","additionalProperties":false,"properties":{"c":{"type":"string"}}}}}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"string","format":"uri"}}}`,
		`{"type":"object","properties":{"a":{"anyOf":[{"const":"x"},{"type":"null"}]},"n":{"type":["integer","null"],"exclusiveMinimum":0},"l":{"type":"array"}}}`,
		`{"type":"object","properties":{},"additionalProperties":false}`,
	}
	r := &convert.Request{Model: "gemini-2.5-flash", Messages: []convert.Message{{Role: convert.RoleUser, Parts: []convert.Part{{Kind: convert.PartText, Text: "hi"}}}},
		Format: &convert.Format{JSON: true, Schema: []byte(`{"type":"object","additionalProperties":false,"properties":{"ok":{"const":true}}}`)}}
	for i, s := range schemas {
		r.Tools = append(r.Tools, convert.Tool{Name: "t" + string(rune('a'+i)), Schema: []byte(s)})
	}
	body, err := convert.EncodeGemini(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckStrictGemini(body, r.Model); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	r.Tools = nil
	body, _ = convert.EncodeGemini(r)
	if err := CheckStrictGemini(body, r.Model); err != nil || !gjson.GetBytes(body, "generationConfig.responseSchema").Exists() {
		t.Fatalf("%v\n%s", err, body)
	}
}

func TestStrictGeminiUnknownFields(t *testing.T) {
	tests := []struct{ body, msg string }{
		{`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"max_tokens":5}`, `Unknown name "max_tokens": Cannot find field.`},
		{`{"contents":[{"role":"user","parts":[{"text":"hi","cache_control":{}}]}]}`, `Unknown name "cache_control" at 'contents[0].parts[0]'`},
		{`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxTokens":5}}`, `Unknown name "maxTokens" at 'generation_config'`},
		{`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"thinkingConfig":{"budget":5}}}`, `at 'generation_config.thinking_config'`},
		{`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","parallel":false}}}`, `at 'tool_config.function_calling_config'`},
		{`{"contents":[]}`, "contents is not specified"},
		{`[]`, "Expected an object"},
	}
	for _, tc := range tests {
		err := CheckStrictGemini([]byte(tc.body), "gemini-2.5-pro")
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.msg)
		}
	}
	ok := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"system_instruction":{"parts":[{"text":"s"}]},"safetySettings":[],"generationConfig":{"temperature":1,"topP":0.95,"topK":64,"thinkingConfig":{"includeThoughts":true,"thinkingLevel":"HIGH"}}}`
	if err := CheckStrictGemini([]byte(ok), "gemini-3-pro-preview"); err != nil {
		t.Errorf("a Gemini CLI body refused: %v", err)
	}
}

func TestStrictGeminiThoughtSignatures(t *testing.T) {
	sig := FakeThoughtSignature("f")
	turn := func(modelParts string) string {
		return `{"contents":[{"role":"user","parts":[{"text":"go"}]},{"role":"model","parts":[` + modelParts +
			`]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"output":"x"}}}]}]}`
	}
	tests := []struct {
		name, body, model, msg string
	}{
		{"missing on gemini 3", turn(`{"functionCall":{"name":"f","args":{}}}`), "gemini-3-pro-preview", "function call `default_api:f` , position 2."},
		{"missing on the first of parallel calls", turn(`{"functionCall":{"name":"f","args":{}}},{"functionCall":{"name":"f","args":{}},"thoughtSignature":"` + sig + `"}`), "gemini-3-pro-preview", "missing a thought_signature"},
		{"a foreign (wrapped) signature", turn(`{"functionCall":{"name":"f","args":{}},"thoughtSignature":"ccr1.anthropic..YQ.Yg"}`), "gemini-2.5-pro", "Corrupted thought signature."},
		{"another call's signature", turn(`{"functionCall":{"name":"f","args":{}},"thoughtSignature":"` + FakeThoughtSignature("g") + `"}`), "gemini-3-pro-preview", "Corrupted thought signature."},
		{"missing is fine before Gemini 3", turn(`{"functionCall":{"name":"f","args":{}}}`), "gemini-2.5-pro", ""},
		{"the skip value", turn(`{"functionCall":{"name":"f","args":{}},"thoughtSignature":"skip_thought_signature_validator"}`), "gemini-3-pro-preview", ""},
		{"the issued signature, a signature on text", turn(`{"text":"x","thoughtSignature":"` + FakeThoughtSignature("") + `"},{"functionCall":{"name":"f","args":{}},"thoughtSignature":"` + sig + `"}`), "gemini-3-pro-preview", ""},
		{"earlier turns are not checked", strings.TrimSuffix(turn(`{"functionCall":{"name":"f","args":{}}}`), "]}") + `,{"role":"model","parts":[{"text":"done"}]},{"role":"user","parts":[{"text":"next"}]}]}`, "gemini-3-pro-preview", ""},
	}
	for _, tc := range tests {
		err := CheckStrictGemini([]byte(tc.body), tc.model)
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
		}
	}
}

// TestStrictGeminiMultiTurn: the scripted thought + call, parsed by the
// codec and sent back through EncodeGemini (from the neutral form, and from
// a turn of another pool without any signature), passes the strict fake;
// the same turn without its signature does not.
func TestStrictGeminiMultiTurn(t *testing.T) {
	g, url := strictGemini(t)
	const model = "gemini-3-pro-preview"
	status, body := post(t, url+model+":generateContent", `{"contents":[{"role":"user","parts":[{"text":"list files"}]}]}`, geminiKey)
	if status != 200 {
		t.Fatalf("first turn %d %s", status, body)
	}
	if got := gjson.GetBytes(body, "candidates.0.content.parts.1.thoughtSignature").Str; got != FakeThoughtSignature("list_directory") {
		t.Fatalf("first answer %s", body)
	}
	resp, err := convert.ParseGemini(body)
	if err != nil {
		t.Fatal(err)
	}
	var callID string
	for _, p := range resp.Parts {
		if p.Kind == convert.PartToolCall {
			callID = p.CallID
		}
	}
	second := func(assistant []convert.Part) *convert.Request {
		return &convert.Request{Model: model, Messages: []convert.Message{
			{Role: convert.RoleUser, Parts: []convert.Part{{Kind: convert.PartText, Text: "list files"}}},
			{Role: convert.RoleAssistant, Parts: assistant},
			{Role: convert.RoleUser, Parts: []convert.Part{{Kind: convert.PartToolResult, CallID: callID, Result: []convert.Part{{Kind: convert.PartText, Text: "a.go"}}}}},
		}}
	}
	var callOnly []convert.Part
	for _, p := range resp.Parts {
		if p.Kind == convert.PartToolCall {
			callOnly = append(callOnly, p)
		}
	}
	for name, r := range map[string]*convert.Request{"replayed": second(resp.Parts), "from another pool": second(callOnly)} {
		b, err := convert.EncodeGemini(r)
		if err != nil {
			t.Fatal(err)
		}
		if status, out := post(t, url+model+":generateContent", string(b), geminiKey); status != 200 {
			t.Errorf("%s: %d %s\n%s", name, status, out, b)
		}
	}
	stripped := strings.Replace(string(mustEncode(t, second(resp.Parts))), `,"thoughtSignature":"`+FakeThoughtSignature("list_directory")+`"`, "", 1)
	status, out := post(t, url+model+":generateContent", stripped, geminiKey)
	if status != 400 || !strings.Contains(gjson.GetBytes(out, "error.message").Str, "missing a thought_signature") {
		t.Errorf("stripped signature: %d %s", status, out)
	}
	if g.Count() != 4 {
		t.Errorf("%d requests", g.Count())
	}
}

func mustEncode(t *testing.T, r *convert.Request) []byte {
	t.Helper()
	b, err := convert.EncodeGemini(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGeminiThoughtToolCallStream: the script's SSE and JSON-array forms
// read as a thought, the signature and the call.
func TestGeminiThoughtToolCallStream(t *testing.T) {
	_, url := strictGemini(t)
	status, body := post(t, url+"gemini-3-pro-preview:streamGenerateContent?alt=sse", `{"contents":[{"role":"user","parts":[{"text":"go"}]}]}`, geminiKey)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	rd := convert.NewGeminiStreamReader()
	var evs []convert.Event
	var p sse.Parser
	p.Feed(body, func(ev *sse.Event) bool {
		evs = rd.Read(evs, ev.Name, ev.Data)
		return true
	})
	var sig convert.Signature
	var call convert.Part
	thought := ""
	for _, e := range evs {
		switch {
		case e.Kind == convert.EventSignature:
			sig = e.Sig
		case e.Kind == convert.EventPartStart && e.Part.Kind == convert.PartToolCall:
			call = e.Part
		case e.Kind == convert.EventDelta && e.Index == 0:
			thought += e.Delta
		}
	}
	last := evs[len(evs)-1]
	if sig.Value != FakeThoughtSignature("list_directory") || call.Name != "list_directory" || thought == "" ||
		last.Kind != convert.EventFinish || last.Stop != convert.StopTool {
		t.Fatalf("events %+v", evs)
	}
	// Without alt=sse: a JSON array, which ParseGemini reads.
	g := &GeminiAPI{Strict: true, Script: func(_ int, r *Recorded) *Reply {
		return GeminiThoughtToolCall(r, "gemini-3-pro-preview", "f", `{}`)
	}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	status, body = post(t, srv.URL+"/v1beta/models/gemini-3-pro-preview:streamGenerateContent", `{"contents":[{"role":"user","parts":[{"text":"go"}]}]}`, geminiKey)
	resp, err := convert.ParseGemini(body)
	if status != 200 || err != nil || len(resp.Parts) != 2 || resp.Parts[0].Sig.Value != FakeThoughtSignature("f") || resp.Parts[1].Name != "f" {
		t.Fatalf("%d %v %+v %s", status, err, resp, body)
	}
	var se *GeminiStrictError
	if err := CheckStrictGemini([]byte(`{"contents":[],"x":1}`), "m"); !errors.As(err, &se) || len(se.Violations) != 1 {
		t.Errorf("violations %v", err)
	}
}

// TestStrictCodeAssist: the Code Assist fake's strict mode checks the
// request inside the envelope (a Gemini 3 call replayed without its
// signature is refused, with it taken), and CodeAssistReply wraps
// GeminiThoughtToolCall's answer, whole and as a JSON array, in the
// envelope.
func TestStrictCodeAssist(t *testing.T) {
	ca := &CodeAssist{Strict: true, Script: func(_ int, r *Recorded) *Reply {
		return CodeAssistReply(GeminiThoughtToolCall(r, "gemini-3-pro-preview", "f", `{"a":1}`))
	}}
	srv := httptest.NewServer(ca)
	defer srv.Close()
	bearer := map[string]string{"Authorization": "Bearer ya29.t"}
	envelope := func(contents string) string {
		return `{"model":"gemini-3-pro-preview","project":"` + DefaultCodeAssistProject + `","request":{"contents":[` + contents + `]}}`
	}
	user := `{"role":"user","parts":[{"text":"go"}]}`
	for _, method := range []string{"generateContent", "streamGenerateContent"} {
		status, body := post(t, srv.URL+"/v1internal:"+method, envelope(user), bearer)
		list := gjson.ParseBytes(body)
		if !list.IsArray() {
			list = gjson.Parse("[" + string(body) + "]")
		}
		last := list.Get("@reverse.0")
		if status != 200 || last.Get("traceId").Str == "" ||
			last.Get("response.candidates.0.content.parts.@reverse.0.thoughtSignature").Str != FakeThoughtSignature("f") {
			t.Fatalf("%s: %d %s", method, status, body)
		}
	}
	call := func(sig string) string {
		return `{"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}}` + sig + `}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"ok":true}}}]}`
	}
	status, body := post(t, srv.URL+"/v1internal:generateContent", envelope(user+","+call("")), bearer)
	if status != 400 || !strings.Contains(gjson.GetBytes(body, "error.message").Str, "missing a thought_signature") {
		t.Fatalf("unsigned call: %d %s", status, body)
	}
	if status, body := post(t, srv.URL+"/v1internal:generateContent", envelope(user+","+call(`,"thoughtSignature":"`+FakeThoughtSignature("f")+`"`)), bearer); status != 200 {
		t.Fatalf("signed call: %d %s", status, body)
	}
}
