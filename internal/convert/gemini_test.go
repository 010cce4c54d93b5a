package convert

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func geminiFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/gemini/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonEq reports whether two JSON texts hold the same value.
func jsonEq(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, want)
	}
	return reflect.DeepEqual(g, w)
}

func TestDecodeGeminiCLI(t *testing.T) {
	r, err := DecodeGemini(geminiFixture(t, "cli_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"You are an interactive CLI agent specializing in software engineering tasks."}; !reflect.DeepEqual(r.System, want) {
		t.Errorf("system %q", r.System)
	}
	wantMsgs := []Message{
		{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "<session_context>\nThis is the Gemini CLI.\n</session_context>"}, {Kind: PartText, Text: "list the files here"}}},
		{Role: RoleAssistant, Parts: []Part{
			{Kind: PartThinking, Text: "**Listing the directory**\n\nI'll call list_directory.", Sig: Signature{Origin: OriginGemini, Value: "CiQBjz1rX0Fh4q9sig=="}},
			{Kind: PartToolCall, CallID: "list_directory_1764962000000_0", Name: "list_directory", Args: `{"dir_path": "."}`},
		}},
		{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "list_directory_1764962000000_0", Name: "list_directory",
			Result: []Part{{Kind: PartText, Text: "Directory listing for /work:\nmain.go\ngo.mod"}}}}},
		{Role: RoleAssistant, Parts: []Part{{Kind: PartText, Text: "There are two files: main.go and go.mod."}}},
		{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "read main.go"}, {Kind: PartImage, MediaType: "image/png", Data: "iVBORw0KGgo="}}},
	}
	if !reflect.DeepEqual(r.Messages, wantMsgs) {
		t.Errorf("messages\n%+v\nwant\n%+v", r.Messages, wantMsgs)
	}
	if len(r.Tools) != 3 || r.Tools[0].Name != "list_directory" || r.Tools[2].Name != "google_web_search" {
		t.Fatalf("tools %+v", r.Tools)
	}
	if gjson.GetBytes(r.Tools[1].Schema, "properties.offset.type").Str != "number" {
		t.Errorf("parametersJsonSchema not kept: %s", r.Tools[1].Schema)
	}
	if r.Temperature == nil || *r.Temperature != 1 || r.TopP == nil || *r.TopP != 0.95 || r.TopK == nil || *r.TopK != 64 {
		t.Errorf("sampling %v %v %v", r.Temperature, r.TopP, r.TopK)
	}
	if want := (Thinking{Enabled: true, Effort: "high"}); r.Thinking != want {
		t.Errorf("thinking %+v", r.Thinking)
	}
}

func TestDecodeGeminiRouter(t *testing.T) {
	r, err := DecodeGemini(geminiFixture(t, "router_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Format == nil || !r.Format.JSON || gjson.GetBytes(r.Format.Schema, "properties.complexity_score.type").Str != "integer" {
		t.Fatalf("format %+v", r.Format)
	}
	if r.MaxTokens != 1024 || r.Thinking != (Thinking{Enabled: true, Budget: 512}) || len(r.Messages) != 1 || len(r.Messages[0].Parts) != 2 {
		t.Fatalf("request %+v", r)
	}
}

// geminiWrapped is an Anthropic signature as WriteGemini hands it out.
var geminiWrapped = WrapSignature(Signature{Origin: OriginAnthropic, Value: "EqAnthropicSig"}, "thinking text")

var geminiDecodeCases = []struct {
	name  string
	body  string
	check func(t *testing.T, r *Request)
}{
	{"calls without ids get stable ids; results match the oldest call of their name", `{"contents":[
			{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"name":"read","args":{"p":"a"}}},{"functionCall":{"name":"read","args":{"p":"b"}}}]},
			{"role":"function","parts":[{"functionResponse":{"name":"read","response":{"output":"A"}}},{"functionResponse":{"name":"read","response":{"error":"no such file"}}}]}]}`,
		func(t *testing.T, r *Request) {
			calls, res := r.Messages[1].Parts, r.Messages[2].Parts
			if calls[0].CallID != "call_read_0" || calls[1].CallID != "call_read_1" {
				t.Errorf("call ids %q %q", calls[0].CallID, calls[1].CallID)
			}
			if res[0].CallID != "call_read_0" || res[1].CallID != "call_read_1" || res[0].IsError || !res[1].IsError ||
				res[1].Result[0].Text != "no such file" || r.Messages[2].Role != RoleUser {
				t.Errorf("results %+v", res)
			}
		}},
	{"response objects other than output/error are their JSON text; functionResponse parts add images", `{"contents":[
			{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f"}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"c1","name":"f","response":{"a":1,"b":[2]},"parts":[{"inlineData":{"mimeType":"image/jpeg","data":"/9j/"}}]}}]}]}`,
		func(t *testing.T, r *Request) {
			if a := r.Messages[0].Parts[0].Args; a != "{}" {
				t.Errorf("args %q", a)
			}
			res := r.Messages[1].Parts[0].Result
			if len(res) != 2 || res[0].Text != `{"a":1,"b":[2]}` || res[1].Kind != PartImage || res[1].MediaType != "image/jpeg" {
				t.Errorf("result %+v", res)
			}
		}},
	{"a wrapped signature on a call restores the foreign thinking and its text", `{"contents":[
			{"role":"model","parts":[{"text":"thinking text","thought":true},{"functionCall":{"id":"t1","name":"f","args":{}},"thoughtSignature":"` + geminiWrapped + `"}]}]}`,
		func(t *testing.T, r *Request) {
			want := []Part{{Kind: PartThinking, Text: "thinking text", Sig: Signature{Origin: OriginAnthropic, Value: "EqAnthropicSig"}},
				{Kind: PartToolCall, CallID: "t1", Name: "f", Args: "{}"}}
			if !reflect.DeepEqual(r.Messages[0].Parts, want) {
				t.Errorf("parts %+v", r.Messages[0].Parts)
			}
		}},
	{"a signature without thought text is a thinking part of its own; a signature-only text part adds no text", `{"contents":[
			{"role":"model","parts":[{"functionCall":{"id":"a","name":"f","args":{}},"thoughtSignature":"S1"},{"text":"done"},{"text":"","thoughtSignature":"S2"}]}]}`,
		func(t *testing.T, r *Request) {
			want := []Part{{Kind: PartThinking, Sig: Signature{Origin: OriginGemini, Value: "S1"}},
				{Kind: PartToolCall, CallID: "a", Name: "f", Args: "{}"}, {Kind: PartText, Text: "done"},
				{Kind: PartThinking, Sig: Signature{Origin: OriginGemini, Value: "S2"}}}
			if !reflect.DeepEqual(r.Messages[0].Parts, want) {
				t.Errorf("parts %+v", r.Messages[0].Parts)
			}
		}},
	{"a signature on the thought itself stays there", `{"contents":[{"role":"model","parts":[{"text":"plan","thought":true,"thought_signature":"S3"},{"text":"hi"}]}]}`,
		func(t *testing.T, r *Request) {
			want := []Part{{Kind: PartThinking, Text: "plan", Sig: Signature{Origin: OriginGemini, Value: "S3", ID: geminiSigOnThought}}, {Kind: PartText, Text: "hi"}}
			if !reflect.DeepEqual(r.Messages[0].Parts, want) {
				t.Errorf("parts %+v", r.Messages[0].Parts)
			}
		}},
	{"Code Assist envelope, parameters in OpenAPI form, fileData image, ANY with one function", `{"model":"gemini-2.5-pro","project":"p","request":{
			"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/png","fileUri":"https://example.com/a.png"}}]}],
			"tools":[{"functionDeclarations":[{"name":"f","parameters":{"type":"OBJECT","properties":{"n":{"type":"INTEGER","nullable":true}},"propertyOrdering":["n"]}}]}],
			"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["f"]}},
			"generationConfig":{"thinkingConfig":{"thinkingBudget":-1},"stopSequences":["END"],"responseMimeType":"application/json","responseSchema":{"type":"STRING"}}}}`,
		func(t *testing.T, r *Request) {
			if p := r.Messages[0].Parts[0]; p.Kind != PartImage || p.URL != "https://example.com/a.png" {
				t.Errorf("image %+v", p)
			}
			if !jsonEq(t, string(r.Tools[0].Schema), `{"type":"object","properties":{"n":{"type":["integer","null"]}}}`) {
				t.Errorf("schema %s", r.Tools[0].Schema)
			}
			if r.ToolChoice != (ToolChoice{Mode: "tool", Name: "f"}) || r.Thinking != (Thinking{Enabled: true, Adaptive: true}) ||
				!reflect.DeepEqual(r.Stop, []string{"END"}) || string(r.Format.Schema) != `{"type":"string"}` {
				t.Errorf("request %+v", r)
			}
		}},
	{"countTokens' generateContentRequest form", `{"generateContentRequest":{"model":"models/gemini-2.5-pro","systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"count me"}]}]}}`,
		func(t *testing.T, r *Request) {
			if len(r.System) != 1 || r.System[0] != "be brief" || len(r.Messages) != 1 || r.Messages[0].Parts[0].Text != "count me" {
				t.Errorf("request %+v", r)
			}
		}},
	{"tool config modes, thinking off", `{"contents":[],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["a","b"]}},"generationConfig":{"thinkingConfig":{"thinkingBudget":0,"includeThoughts":true}}}`,
		func(t *testing.T, r *Request) {
			if r.ToolChoice.Mode != "required" || r.Thinking.Enabled {
				t.Errorf("request %+v", r)
			}
		}},
	{"includeThoughts alone is adaptive thinking; NONE", `{"contents":[{"parts":[{"text":"x"}]}],"toolConfig":{"functionCallingConfig":{"mode":"NONE"}},"generationConfig":{"thinkingConfig":{"includeThoughts":true}}}`,
		func(t *testing.T, r *Request) {
			if r.ToolChoice.Mode != "none" || r.Thinking != (Thinking{Enabled: true, Adaptive: true}) || r.Messages[0].Role != RoleUser {
				t.Errorf("request %+v", r)
			}
		}},
	{"a PDF is a file; code execution parts are dropped; thought text in a user turn is dropped", `{"contents":[{"role":"user","parts":[
			{"inlineData":{"mimeType":"application/pdf","data":"JVBERi0="}},{"executableCode":{"language":"PYTHON","code":"print(1)"}},{"text":"x","thought":true}]}]}`,
		func(t *testing.T, r *Request) {
			if len(r.Messages) != 1 || len(r.Messages[0].Parts) != 1 || r.Messages[0].Parts[0].Kind != PartFile {
				t.Errorf("messages %+v", r.Messages)
			}
		}},
}

func TestDecodeGeminiCases(t *testing.T) {
	for _, tc := range geminiDecodeCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeGemini([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestDecodeGeminiErrors(t *testing.T) {
	tests := []struct{ body, param string }{
		{`[]`, ""},
		{`{"contents":{}}`, "contents"},
		{`{"contents":[{"role":"system","parts":[{"text":"x"}]}]}`, "contents[0].role"},
		{`{"contents":[{"role":"user","parts":[{"text":1}]}]}`, "contents[0].parts[0].text"},
		{`{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"audio/wav","data":"UklG"}}]}]}`, "contents[0].parts[0].inlineData.mimeType"},
		{`{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/png","fileUri":"gs://b/a.png"}}]}]}`, "contents[0].parts[0].fileData.fileUri"},
		{`{"contents":[{"role":"model","parts":[{"functionCall":{"args":{}}}]}]}`, "contents[0].parts[0].functionCall.name"},
		{`{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":"x"}}]}]}`, "contents[0].parts[0].functionCall.args"},
		{`{"contents":[{"role":"user","parts":[{"functionResponse":{"response":{}}}]}]}`, "contents[0].parts[0].functionResponse.name"},
		{`{"tools":[{"functionDeclarations":[{"description":"no name"}]}]}`, "tools[0].functionDeclarations[0].name"},
		{`{"generationConfig":{"candidateCount":2}}`, "generationConfig.candidateCount"},
		{`{"generationConfig":{"maxOutputTokens":0}}`, "generationConfig.maxOutputTokens"},
		{`{"generationConfig":{"temperature":"hot"}}`, "generationConfig.temperature"},
	}
	for _, tc := range tests {
		_, err := DecodeGemini([]byte(tc.body))
		var re *RequestError
		if !errors.As(err, &re) || re.Param != tc.param {
			t.Errorf("%s: err %v, want a RequestError on %q", tc.body, err, tc.param)
		}
	}
}

func TestEncodeGemini(t *testing.T) {
	temp, topK := 0.5, int64(40)
	r := &Request{
		Model:  "gemini-2.5-flash",
		System: []string{"be brief", "", "use tools"},
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "hi"}, {Kind: PartImage, URL: "https://x.test/cat.webp?s=1"}, {Kind: PartImage, URL: "data:image/gif;base64,R0lG"}}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "claude thinks", Sig: Signature{Origin: OriginAnthropic, Value: "EqClaude"}},
				{Kind: PartText, Text: "calling"},
				{Kind: PartToolCall, CallID: "toolu_1", Name: "read", Args: `{"path":"a"}`},
				{Kind: PartToolCall, CallID: "toolu_2", Name: "apply_patch", Args: "*** Begin Patch", Custom: true},
			}},
			{Role: RoleUser, Parts: []Part{
				{Kind: PartToolResult, CallID: "toolu_1", Result: []Part{{Kind: PartText, Text: "A"}, {Kind: PartImage, MediaType: "image/png", Data: "iVBO"}}},
				{Kind: PartToolResult, CallID: "toolu_2", IsError: true, Result: []Part{{Kind: PartText, Text: "failed"}}},
				{Kind: PartToolResult, CallID: "gone", Result: []Part{{Kind: PartText, Text: "orphan"}}},
			}},
		},
		Tools: []Tool{
			{Name: "read", Description: "Read a file", Schema: []byte(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}`)},
			{Name: "apply_patch", Custom: true, Format: []byte(`{"type":"grammar","syntax":"lark"}`)},
			{Name: "noargs", Schema: []byte(`{"type":"object","properties":{}}`)},
		},
		ToolChoice:  ToolChoice{Mode: "tool", Name: "read"},
		MaxTokens:   2048,
		Temperature: &temp,
		TopK:        &topK,
		Stop:        []string{"1", "2", "3", "4", "5", "6"},
		Thinking:    Thinking{Enabled: true, Effort: "medium"},
		Format:      &Format{JSON: true},
		User:        "u1",
	}
	b, err := EncodeGemini(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
	"contents":[
		{"role":"user","parts":[{"text":"hi"},{"fileData":{"mimeType":"image/webp","fileUri":"https://x.test/cat.webp?s=1"}},{"inlineData":{"mimeType":"image/gif","data":"R0lG"}}]},
		{"role":"model","parts":[{"text":"calling"},
			{"functionCall":{"id":"toolu_1","name":"read","args":{"path":"a"}},"thoughtSignature":"skip_thought_signature_validator"},
			{"functionCall":{"id":"toolu_2","name":"apply_patch","args":{"input":"*** Begin Patch"}}}]},
		{"role":"user","parts":[
			{"functionResponse":{"id":"toolu_1","name":"read","response":{"output":"A"}}},{"inlineData":{"mimeType":"image/png","data":"iVBO"}},
			{"functionResponse":{"id":"toolu_2","name":"apply_patch","response":{"error":"failed"}}},
			{"text":"Result of tool call gone:\norphan"}]}],
	"systemInstruction":{"parts":[{"text":"be brief"},{"text":"use tools"}]},
	"tools":[{"functionDeclarations":[
		{"name":"read","description":"Read a file","parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}},
		{"name":"apply_patch","description":"The input must follow this format: {\"type\":\"grammar\",\"syntax\":\"lark\"}","parameters":{"type":"object","properties":{"input":{"type":"string","description":"The raw input of the tool."}},"required":["input"]}},
		{"name":"noargs"}]}],
	"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["read"]}},
	"generationConfig":{"maxOutputTokens":2048,"temperature":0.5,"topK":40,"stopSequences":["1","2","3","4","5"],
		"thinkingConfig":{"includeThoughts":true,"thinkingBudget":4096}}}`
	if !jsonEq(t, string(b), want) {
		t.Errorf("got\n%s", b)
	}
}

func TestEncodeGeminiCases(t *testing.T) {
	call := Part{Kind: PartToolCall, CallID: "c", Name: "f", Args: "{}"}
	tests := []struct {
		name string
		r    Request
		path string
		want string
	}{
		{"Gemini's signature goes back on the call after the thinking", Request{Messages: []Message{{Role: RoleAssistant, Parts: []Part{
			{Kind: PartThinking, Text: "t", Sig: Signature{Origin: OriginGemini, Value: "GSIG"}}, call}}}},
			"contents.0.parts", `[{"functionCall":{"id":"c","name":"f","args":{}},"thoughtSignature":"GSIG"}]`},
		{"a signature that rode on a thought goes back on it; a trailing one on an empty text part", Request{Messages: []Message{{Role: RoleAssistant, Parts: []Part{
			{Kind: PartThinking, Text: "plan", Sig: Signature{Origin: OriginGemini, Value: "T", ID: geminiSigOnThought}},
			{Kind: PartText, Text: "ok"}, {Kind: PartThinking, Sig: Signature{Origin: OriginGemini, Value: "END"}}}}}},
			"contents.0.parts", `[{"text":"plan","thought":true,"thoughtSignature":"T"},{"text":"ok"},{"text":"","thoughtSignature":"END"}]`},
		{"foreign and unsigned thinking is dropped, an empty turn too", Request{Messages: []Message{{Role: RoleAssistant, Parts: []Part{
			{Kind: PartThinking, Text: "x", Sig: Signature{Origin: OriginOpenAI, Value: "gAAAA"}}, {Kind: PartThinking, Text: "y"}}}}},
			"contents", `[]`},
		{"gemini 3: thinking level, JSON format kept with tools", Request{Model: "gemini-3-pro-preview", Tools: []Tool{{Name: "f"}},
			Thinking: Thinking{Enabled: true, Budget: 1024}, Format: &Format{JSON: true, Schema: []byte(`{"type":"object","properties":{"a":{"const":"x"}}}`)}},
			"generationConfig", `{"responseMimeType":"application/json","responseSchema":{"type":"object","properties":{"a":{"type":"string","enum":["x"]}}},"thinkingConfig":{"includeThoughts":true,"thinkingLevel":"low"}}`},
		{"gemini 2.5: JSON format dropped with tools, adaptive budget -1, auto", Request{Model: "models/gemini-2.5-pro", Tools: []Tool{{Name: "f"}},
			ToolChoice: ToolChoice{Mode: "auto"}, Thinking: Thinking{Enabled: true, Adaptive: true}, Format: &Format{JSON: true}},
			"@this", `{"contents":[],"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}},"generationConfig":{"thinkingConfig":{"includeThoughts":true,"thinkingBudget":-1}}}`},
		{"budgets are clamped to the model's range", Request{Model: "gemini-2.5-flash", Thinking: Thinking{Enabled: true, Budget: 100000}},
			"generationConfig.thinkingConfig.thinkingBudget", `24576`},
		{"required is ANY, none NONE", Request{Tools: []Tool{{Name: "f"}}, ToolChoice: ToolChoice{Mode: "none"}},
			"toolConfig", `{"functionCallingConfig":{"mode":"NONE"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeGemini(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(b, tc.path).Raw; !jsonEq(t, got, tc.want) {
				t.Errorf("%s = %s\nwant %s\nbody %s", tc.path, got, tc.want, b)
			}
		})
	}
	if _, err := EncodeGemini(&Request{PreviousResponseID: "resp_1"}); !errors.As(err, new(*RequestError)) {
		t.Errorf("previous_response_id: %v", err)
	}
}

func TestEncodeGeminiCLIRoundTrip(t *testing.T) {
	// A Gemini CLI conversation decoded and encoded again keeps what
	// Gemini needs: ids, names, the signature on the same call.
	r, err := DecodeGemini(geminiFixture(t, "cli_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	r.Model = "gemini-3-pro-preview"
	b, err := EncodeGemini(r)
	if err != nil {
		t.Fatal(err)
	}
	orig := gjson.GetBytes(geminiFixture(t, "cli_request.json"), "contents.1.parts.1").Raw
	if got := gjson.GetBytes(b, "contents.1.parts.0").Raw; !jsonEq(t, got, orig) {
		t.Errorf("call part %s, want %s", got, orig)
	}
	if got := gjson.GetBytes(b, "contents.2.parts.0.functionResponse.name").Str; got != "list_directory" {
		t.Errorf("response name %q", got)
	}
	if gjson.GetBytes(b, "tools.0.functionDeclarations.#").Int() != 3 || gjson.GetBytes(b, "generationConfig.thinkingConfig.thinkingLevel").Str != "high" {
		t.Errorf("body %s", b)
	}
}

func TestParseGemini(t *testing.T) {
	resp, err := ParseGemini(geminiFixture(t, "response_tool.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{
		ID: "fXY1aZ-xLqG2", Model: "gemini-3-pro-preview",
		Parts: []Part{
			{Kind: PartThinking, Text: "**Checking the tree**\n\nI should look at the directory first."},
			{Kind: PartText, Text: "Let me look."},
			{Kind: PartThinking, Sig: Signature{Origin: OriginGemini, Value: "EqQBCqEBAdHtim9sigA"}},
			{Kind: PartToolCall, CallID: "call_list_directory_fXY1aZ-xLqG2_0", Name: "list_directory", Args: `{"dir_path": "."}`},
			{Kind: PartToolCall, CallID: "call_read_file_fXY1aZ-xLqG2_1", Name: "read_file", Args: `{"file_path": "go.mod"}`},
		},
		Stop:            StopTool,
		ReasoningTokens: 75,
	}
	want.Usage.InputTokens, want.Usage.CacheReadTokens, want.Usage.OutputTokens = 200, 1000, 115
	if !reflect.DeepEqual(resp, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", resp, want)
	}
}

func TestParseGeminiCases(t *testing.T) {
	tests := []struct {
		name, body string
		stop       StopReason
		parts      int
	}{
		{"max tokens", `{"candidates":[{"content":{"parts":[{"text":"cut"}]},"finishReason":"MAX_TOKENS"}]}`, StopMax, 1},
		{"safety", `{"candidates":[{"finishReason":"SAFETY"}]}`, StopRefusal, 0},
		{"recitation", `{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"RECITATION"}]}`, StopRefusal, 1},
		{"blocked prompt", `{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":5}}`, StopRefusal, 0},
		{"code assist envelope", `{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},"finishReason":"STOP"}]},"traceId":"t"}`, StopEnd, 1},
		{"json array of chunks", `[{"candidates":[{"content":{"parts":[{"text":"a"}]}}]},{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}]}]`, StopEnd, 1},
		{"no finishReason", `{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}`, StopEnd, 1},
		{"malformed function call ends the turn", `{"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL"}]}`, StopEnd, 0},
	}
	for _, tc := range tests {
		resp, err := ParseGemini([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Stop != tc.stop || len(resp.Parts) != tc.parts {
			t.Errorf("%s: stop %s, parts %+v", tc.name, resp.Stop, resp.Parts)
		}
	}
	resp, _ := ParseGemini([]byte(`[{"candidates":[{"content":{"parts":[{"text":"a"}]}}]},{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}]}]`))
	if resp.Parts[0].Text != "ab" {
		t.Errorf("array text %q", resp.Parts[0].Text)
	}
	for _, bad := range []string{`nope`, `"x"`, `[1]`} {
		if _, err := ParseGemini([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	_, err := ParseGemini([]byte(`{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`))
	if !errors.Is(err, ErrGeminiAnswer) || !strings.Contains(err.Error(), "RESOURCE_EXHAUSTED") {
		t.Errorf("error answer: %v", err)
	}
}

func TestWriteGemini(t *testing.T) {
	resp := &Response{
		ID: "msg_01", Model: "claude-sonnet-5",
		Parts: []Part{
			{Kind: PartThinking, Text: "hmm", Sig: Signature{Origin: OriginAnthropic, Value: "EqSig"}},
			{Kind: PartText, Text: "Reading."},
			{Kind: PartToolCall, CallID: "toolu_9", Name: "read_file", Args: `{"file_path":"a"}`},
		},
		Stop:            StopTool,
		ReasoningTokens: 4,
	}
	resp.Usage.InputTokens, resp.Usage.CacheReadTokens, resp.Usage.CacheCreationTokens, resp.Usage.OutputTokens = 10, 100, 5, 30
	b := WriteGemini(resp, "gemini-2.5-pro")
	sig := WrapSignature(Signature{Origin: OriginAnthropic, Value: "EqSig"}, "hmm")
	want := `{"candidates":[{"content":{"role":"model","parts":[
		{"text":"hmm","thought":true},
		{"text":"Reading.","thoughtSignature":"` + sig + `"},
		{"functionCall":{"id":"toolu_9","name":"read_file","args":{"file_path":"a"}}}]},
		"finishReason":"STOP","index":0}],
		"usageMetadata":{"promptTokenCount":115,"candidatesTokenCount":26,"totalTokenCount":145,"cachedContentTokenCount":100,"thoughtsTokenCount":4},
		"modelVersion":"gemini-2.5-pro","responseId":"msg_01"}`
	if !jsonEq(t, string(b), want) {
		t.Errorf("got\n%s", b)
	}
	// The client sends the turn back: the Anthropic thinking comes back
	// exactly, before the text it preceded.
	r, err := DecodeGemini([]byte(`{"contents":[{"role":"model","parts":` + gjson.GetBytes(b, "candidates.0.content.parts").Raw + `}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Messages[0].Parts; !reflect.DeepEqual(got[0], resp.Parts[0]) || got[1].Text != "Reading." || got[2].CallID != "toolu_9" {
		t.Errorf("decoded %+v", got)
	}
	empty := WriteGemini(&Response{Stop: StopMax}, "m")
	if gjson.GetBytes(empty, "candidates.0.finishReason").Str != "MAX_TOKENS" || gjson.GetBytes(empty, "candidates.0.content.parts.0.text").Raw != `""` {
		t.Errorf("empty answer %s", empty)
	}
}

// TestGeminiThoughtSignatureMultiTurn: Gemini 3's signature on a call
// survives the round trip to a client of another dialect and back, on the
// same functionCall part, exactly.
func TestGeminiThoughtSignatureMultiTurn(t *testing.T) {
	first, err := ParseGemini(geminiFixture(t, "response_tool.json"))
	if err != nil {
		t.Fatal(err)
	}
	orig := gjson.GetBytes(geminiFixture(t, "response_tool.json"), "candidates.0.content.parts")
	wantCall := orig.Get("2").Raw
	clients := map[string]func(*Response) *Request{
		"neutral": func(resp *Response) *Request {
			return &Request{Messages: []Message{{Role: RoleAssistant, Parts: resp.Parts}}}
		},
		"anthropic client": func(resp *Response) *Request {
			msg := gjson.GetBytes(WriteMessages(resp, "claude-sonnet-5"), "content").Raw
			r, err := DecodeMessages([]byte(`{"model":"claude-sonnet-5","max_tokens":100,"messages":[{"role":"user","content":"go"},{"role":"assistant","content":` + msg + `}]}`))
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		"gemini client": func(resp *Response) *Request {
			parts := gjson.GetBytes(WriteGemini(resp, "gemini-3-pro-preview"), "candidates.0.content.parts").Raw
			r, err := DecodeGemini([]byte(`{"contents":[{"role":"user","parts":[{"text":"go"}]},{"role":"model","parts":` + parts + `}]}`))
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	}
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			r := client(first)
			r.Model = "gemini-3-pro-preview"
			b, err := EncodeGemini(r)
			if err != nil {
				t.Fatal(err)
			}
			var model gjson.Result
			gjson.GetBytes(b, "contents").ForEach(func(_, c gjson.Result) bool {
				if c.Get("role").Str == "model" {
					model = c
				}
				return true
			})
			calls := model.Get(`parts.#(functionCall)#`).Array()
			if len(calls) != 2 {
				t.Fatalf("model turn %s", model.Raw)
			}
			if calls[0].Get("thoughtSignature").Str != "EqQBCqEBAdHtim9sigA" || calls[0].Get("functionCall.name").Str != "list_directory" ||
				!jsonEq(t, calls[0].Get("functionCall.args").Raw, gjson.Get(wantCall, "functionCall.args").Raw) {
				t.Errorf("first call %s, want the signature of %s", calls[0].Raw, wantCall)
			}
			if calls[1].Get("thoughtSignature").Exists() {
				t.Errorf("second call got a signature: %s", calls[1].Raw)
			}
		})
	}
}

// TestGeminiRedactedThinkingRoundTrip: Anthropic's redacted_thinking handed
// to a Gemini client comes back redacted, with its data.
func TestGeminiRedactedThinkingRoundTrip(t *testing.T) {
	red := Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "EmwKAhgBEgy"}}
	b := WriteGemini(&Response{Parts: []Part{red, {Kind: PartText, Text: "ok"}}}, "m")
	parts := gjson.GetBytes(b, "candidates.0.content.parts")
	if n := len(parts.Array()); n != 1 || parts.Get("0.thoughtSignature").Str == "" {
		t.Fatalf("parts %s", parts.Raw)
	}
	r, err := DecodeGemini([]byte(`{"contents":[{"role":"model","parts":` + parts.Raw + `}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Messages[0].Parts; len(got) != 2 || !reflect.DeepEqual(got[0], red) || got[1].Text != "ok" {
		t.Errorf("decoded %+v", got)
	}
}
