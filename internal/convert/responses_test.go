package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

func responsesFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/responses/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeResponsesCodexRequest reads a Codex CLI turn as Codex sends it
// (developer prompt, reasoning items, shell function tool, apply_patch
// custom tool, hosted items and tools, include, store:false).
func TestDecodeResponsesCodexRequest(t *testing.T) {
	r, err := DecodeResponses(responsesFixture(t, "codex_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := false
	want := &Request{
		Model:  "gpt-5-codex",
		Stream: true,
		System: []string{"You are Codex, a coding agent.", "<permissions instructions>sandbox: workspace-write</permissions instructions>"},
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{
				{Kind: PartText, Text: "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>"},
				{Kind: PartText, Text: "Fix the failing test"},
				{Kind: PartImage, MediaType: "image/png", Data: "iVBORw0KGgo="},
			}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "**Inspecting the tests**\n\nRunning them first.", Sig: Signature{Origin: OriginOpenAI, Value: "gAAAAABnative", ID: "rs_0a1"}},
				{Kind: PartToolCall, CallID: "call_A1", Name: "shell", Args: `{"command":["go","test","./..."],"workdir":"/repo"}`},
			}},
			{Role: RoleUser, Parts: []Part{
				{Kind: PartToolResult, CallID: "call_A1", Result: []Part{{Kind: PartText, Text: "Chunk ID: 1\nProcess exited with code 1\nOutput:\nFAIL x_test.go:12\n"}}},
			}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "I should patch x.go exactly.", Sig: Signature{Origin: OriginAnthropic, Value: "EqQBsig"}},
				{Kind: PartToolCall, CallID: "call_B2", Name: "apply_patch", Custom: true, Args: "*** Begin Patch\n*** Update File: x.go\n@@\n-return 1\n+return 2\n*** End Patch\n"},
			}},
			{Role: RoleUser, Parts: []Part{
				{Kind: PartToolResult, CallID: "call_B2", Result: []Part{{Kind: PartText, Text: "Success. Updated the following files:\nM x.go\n"}}},
			}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartText, Text: "Patched x.go; the test passes."},
				{Kind: PartToolCall, CallID: "call_C3", Name: "view_image", Args: `{"path":"a.png"}`},
			}},
			{Role: RoleUser, Parts: []Part{
				{Kind: PartToolResult, CallID: "call_C3", Result: []Part{{Kind: PartText, Text: "image:"}, {Kind: PartImage, URL: "https://example.com/a.png"}}},
				{Kind: PartText, Text: "thanks, now run the linter"},
			}},
		},
		Tools: []Tool{
			{Name: "shell", Description: "Runs a shell command", Schema: json.RawMessage(`{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"}},"workdir":{"type":"string"}},"required":["command"],"additionalProperties":false}`)},
			{Name: "apply_patch", Description: "Use the apply_patch tool to edit files.", Custom: true, Format: json.RawMessage(`{"type":"grammar","syntax":"lark","definition":"start: begin_patch hunk+ end_patch"}`)},
			{Name: "multi_agent_v1___spawn_agent", Description: "Spawns", Schema: json.RawMessage(`{"type":"object","properties":{}}`)},
		},
		ToolChoice:         ToolChoice{Mode: "auto", NoParallel: true},
		Thinking:           Thinking{Enabled: true, Effort: "high", Summary: "auto"},
		CacheKey:           "0199a7c1-thread",
		WantReasoningState: true,
		Store:              &f,
	}
	responsesCompactJSON(t, r)
	if !reflect.DeepEqual(r, want) {
		g, _ := json.MarshalIndent(r, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("decoded\n%s\nwant\n%s", g, w)
	}
}

// responsesCompactJSON compacts the raw JSON fields so a comparison ignores the
// fixture's indentation.
func responsesCompactJSON(t *testing.T, r *Request) {
	t.Helper()
	c := func(b json.RawMessage) json.RawMessage {
		if b == nil {
			return nil
		}
		var out bytes.Buffer
		if err := json.Compact(&out, b); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	for i := range r.Tools {
		r.Tools[i].Schema, r.Tools[i].Format = c(r.Tools[i].Schema), c(r.Tools[i].Format)
	}
	if r.Format != nil {
		r.Format.Schema = c(r.Format.Schema)
	}
}

func TestDecodeResponsesParams(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(t *testing.T, r *Request)
	}{
		{"string input", `{"model":"m","input":"hi"}`, func(t *testing.T, r *Request) {
			if len(r.Messages) != 1 || r.Messages[0].Role != RoleUser || r.Messages[0].Parts[0].Text != "hi" {
				t.Fatalf("%+v", r.Messages)
			}
		}},
		{"sampling and limits", `{"model":"m","input":"x","max_output_tokens":300,"temperature":0.2,"top_p":0.9,"safety_identifier":"u1","user":"old","previous_response_id":"resp_1"}`, func(t *testing.T, r *Request) {
			if r.MaxTokens != 300 || *r.Temperature != 0.2 || *r.TopP != 0.9 || r.User != "u1" || r.PreviousResponseID != "resp_1" {
				t.Fatalf("%+v", r)
			}
		}},
		{"user when no safety_identifier", `{"input":"x","user":"old"}`, func(t *testing.T, r *Request) {
			if r.User != "old" {
				t.Fatal(r.User)
			}
		}},
		{"json schema", `{"input":"x","text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}}}`, func(t *testing.T, r *Request) {
			if f := r.Format; f == nil || !f.JSON || string(f.Schema) != `{"type":"object"}` || f.Name != "out" || !f.Strict {
				t.Fatalf("%+v", r.Format)
			}
		}},
		{"json object", `{"input":"x","text":{"format":{"type":"json_object"}}}`, func(t *testing.T, r *Request) {
			if f := r.Format; f == nil || !f.JSON || f.Schema != nil {
				t.Fatalf("%+v", r.Format)
			}
		}},
		{"effort none is off", `{"input":"x","reasoning":{"effort":"none","summary":"detailed"}}`, func(t *testing.T, r *Request) {
			if r.Thinking.Enabled || r.Thinking.Summary != "detailed" {
				t.Fatalf("%+v", r.Thinking)
			}
		}},
		{"tool choice function", `{"input":"x","tool_choice":{"type":"function","name":"shell"}}`, func(t *testing.T, r *Request) {
			if r.ToolChoice.Mode != "tool" || r.ToolChoice.Name != "shell" {
				t.Fatalf("%+v", r.ToolChoice)
			}
		}},
		{"tool choice custom", `{"input":"x","tool_choice":{"type":"custom","name":"apply_patch"}}`, func(t *testing.T, r *Request) {
			if r.ToolChoice.Mode != "tool" || r.ToolChoice.Name != "apply_patch" {
				t.Fatalf("%+v", r.ToolChoice)
			}
		}},
		{"tool choice required", `{"input":"x","tool_choice":"required"}`, func(t *testing.T, r *Request) {
			if r.ToolChoice.Mode != "required" {
				t.Fatalf("%+v", r.ToolChoice)
			}
		}},
		{"codex additional_tools item", `{"input":[{"type":"additional_tools","role":"developer","tools":[{"type":"namespace","name":"functions","tools":[{"type":"custom","name":"exec","description":"d"}]}]},{"type":"configuration_update"},{"role":"user","content":"x"}]}`, func(t *testing.T, r *Request) {
			if len(r.Tools) != 1 || r.Tools[0].Name != "functions___exec" || !r.Tools[0].Custom || len(r.Messages) != 1 {
				t.Fatalf("%+v %+v", r.Tools, r.Messages)
			}
		}},
		{"compaction items: the relay's summary is read, OpenAI's sealed one dropped", `{"input":[{"type":"compaction","encrypted_content":"gAAAAsealed"},{"type":"compaction","encrypted_content":"` + WrapSignature(Signature{Origin: OriginAnthropic}, "Summary: fixed x.go") + `"},{"role":"user","content":"go on"}]}`, func(t *testing.T, r *Request) {
			if len(r.Messages) != 1 || len(r.Messages[0].Parts) != 2 || r.Messages[0].Parts[0].Text != "Summary: fixed x.go" || r.Messages[0].Parts[1].Text != "go on" {
				t.Fatalf("%+v", r.Messages)
			}
		}},
		{"a namespaced call joins its namespace", `{"input":[{"type":"function_call","call_id":"c","namespace":"multi_agent_v1","name":"close_agent","arguments":"{}"}],"tool_choice":{"type":"function","namespace":"multi_agent_v1","name":"close_agent"}}`, func(t *testing.T, r *Request) {
			if p := r.Messages[0].Parts[0]; p.Name != "multi_agent_v1___close_agent" || r.ToolChoice.Name != "multi_agent_v1___close_agent" {
				t.Fatalf("%+v %+v", p, r.ToolChoice)
			}
		}},
		{"tool output object with success false", `{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":{"content":"boom","success":false}}]}`, func(t *testing.T, r *Request) {
			res := r.Messages[1].Parts[0]
			if !res.IsError || res.Result[0].Text != "boom" {
				t.Fatalf("%+v", res)
			}
		}},
		{"reasoning_text content when no summary", `{"input":[{"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"raw"}]}]}`, func(t *testing.T, r *Request) {
			p := r.Messages[0].Parts[0]
			if p.Text != "raw" || p.Sig != (Signature{Origin: OriginOpenAI, ID: "rs_1"}) {
				t.Fatalf("%+v", p)
			}
		}},
		{"wrapped redacted thinking", `{"input":[{"type":"reasoning","summary":[],"encrypted_content":"` + WrapSignature(Signature{Origin: OriginAnthropic, ID: redactedSigID, Value: "opaque"}, "") + `"}]}`, func(t *testing.T, r *Request) {
			p := r.Messages[0].Parts[0]
			if !p.Redacted || p.Sig != (Signature{Origin: OriginAnthropic, Value: "opaque"}) {
				t.Fatalf("%+v", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeResponses([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

func TestDecodeResponsesErrors(t *testing.T) {
	tests := []struct{ name, body, param string }{
		{"not json", `{"input":`, ""},
		{"not object", `[1]`, ""},
		{"background", `{"input":"x","background":true}`, "background"},
		{"conversation", `{"input":"x","conversation":"conv_1"}`, "conversation"},
		{"bad effort", `{"input":"x","reasoning":{"effort":"max"}}`, "reasoning.effort"},
		{"bad role", `{"input":[{"type":"message","role":"tool","content":"x"}]}`, "input[0].role"},
		{"file input", `{"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "input[0].content[0].type"},
		{"image file id", `{"input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]}`, "input[0].content[0].image_url"},
		{"bad data url", `{"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:text/plain,hi"}]}]}`, "input[0].content[0].image_url"},
		{"item reference", `{"input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0]"},
		{"call without id", `{"input":[{"type":"function_call","name":"f","arguments":"{}"}]}`, "input[0].call_id"},
		{"bad tool choice", `{"input":"x","tool_choice":"sometimes"}`, "tool_choice"},
		{"hosted tool choice", `{"input":"x","tool_choice":{"type":"web_search_preview"}}`, "tool_choice.type"},
		{"max tokens", `{"input":"x","max_output_tokens":0}`, "max_output_tokens"},
		{"temperature", `{"input":"x","temperature":"hot"}`, "temperature"},
		{"schema", `{"input":"x","text":{"format":{"type":"json_schema","name":"n"}}}`, "text.format.schema"},
		{"nameless tool", `{"input":"x","tools":[{"type":"function"}]}`, "tools[0].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResponses([]byte(tt.body))
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want *RequestError", err)
			}
			if re.Param != tt.param {
				t.Fatalf("param %q, want %q (%s)", re.Param, tt.param, re.Message)
			}
		})
	}
}

// TestEncodeResponsesClaudeCodeTurn encodes a Claude Code conversation (as
// the Anthropic decoder hands it over) for an OpenAI account.
func TestEncodeResponsesClaudeCodeTurn(t *testing.T) {
	temp := 0.5
	r := &Request{
		Model:       "gpt-5-codex",
		System:      []string{"You are Claude Code.", "Be brief."},
		SystemCache: true,
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "read a.go"}, {Kind: PartImage, MediaType: "image/png", Data: "AAAA", Cache: true}}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "claude thought", Sig: Signature{Origin: OriginAnthropic, Value: "EqQB"}},
				{Kind: PartThinking, Text: "openai summary", Sig: Signature{Origin: OriginOpenAI, Value: "gAAAAB", ID: "rs_9"}},
				{Kind: PartText, Text: "Reading."},
				{Kind: PartToolCall, CallID: "toolu_01", Name: "Read", Args: `{"file_path":"a.go"}`},
				{Kind: PartToolCall, CallID: "call_p", Name: "apply_patch", Custom: true, Args: "*** Begin Patch"},
			}},
			{Role: RoleUser, Parts: []Part{
				{Kind: PartToolResult, CallID: "toolu_01", Result: []Part{{Kind: PartText, Text: "package a"}}, IsError: true},
				{Kind: PartToolResult, CallID: "call_p", Result: []Part{{Kind: PartText, Text: "ok"}, {Kind: PartImage, URL: "https://x/y.png"}}},
				{Kind: PartText, Text: "go on"},
			}},
		},
		Tools: []Tool{
			{Name: "Read", Description: "Reads a file", Schema: json.RawMessage(`{"type":"object","properties":{"file_path":{"type":"string"}}}`)},
			{Name: "Ping"},
			{Name: "apply_patch", Custom: true, Format: json.RawMessage(`{"type":"grammar","syntax":"lark","definition":"x"}`)},
		},
		ToolChoice:  ToolChoice{Mode: "tool", Name: "apply_patch", NoParallel: true},
		MaxTokens:   32000,
		Temperature: &temp,
		TopK:        new(int64),
		Stop:        []string{"\n\nHuman:"},
		Stream:      true,
		Thinking:    Thinking{Enabled: true, Budget: 31999},
		User:        strings.Repeat("u", 100),
	}
	b, err := EncodeResponses(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"gpt-5-codex","instructions":"You are Claude Code.\n\nBe brief.","input":[` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"read a.go"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]},` +
		`{"type":"reasoning","id":"rs_9","summary":[{"type":"summary_text","text":"openai summary"}],"encrypted_content":"gAAAAB"},` +
		`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Reading."}]},` +
		`{"type":"function_call","call_id":"toolu_01","name":"Read","arguments":"{\"file_path\":\"a.go\"}"},` +
		`{"type":"custom_tool_call","call_id":"call_p","name":"apply_patch","input":"*** Begin Patch"},` +
		`{"type":"function_call_output","call_id":"toolu_01","output":"package a"},` +
		`{"type":"custom_tool_call_output","call_id":"call_p","output":[{"type":"input_text","text":"ok"},{"type":"input_image","image_url":"https://x/y.png"}]},` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"go on"}]}],` +
		`"tools":[{"description":"Reads a file","name":"Read","parameters":{"type":"object","properties":{"file_path":{"type":"string"}}},"strict":false,"type":"function"},` +
		`{"name":"Ping","parameters":{"type":"object","properties":{}},"strict":false,"type":"function"},` +
		`{"format":{"type":"grammar","syntax":"lark","definition":"x"},"name":"apply_patch","type":"custom"}],` +
		`"tool_choice":{"name":"apply_patch","type":"custom"},"parallel_tool_calls":false,` +
		`"reasoning":{"effort":"high","summary":"auto"},"include":["reasoning.encrypted_content"],"store":false,"stream":true,` +
		`"max_output_tokens":32000,"safety_identifier":"` + safetyIdentifier(strings.Repeat("u", 100)) + `"}`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
	if len(safetyIdentifier(strings.Repeat("u", 100))) != 64 {
		t.Fatal("a long user is not hashed to 64 characters")
	}
}

func TestEncodeResponsesThinking(t *testing.T) {
	tests := []struct {
		name     string
		thinking Thinking
		msgs     []Message
		want     string // the reasoning and include members, "" for none
	}{
		{"off", Thinking{}, nil, ""},
		{"effort", Thinking{Enabled: true, Effort: "low", Summary: "detailed"}, nil, `"reasoning":{"effort":"low","summary":"detailed"},"include":["reasoning.encrypted_content"]`},
		{"adaptive", Thinking{Enabled: true, Adaptive: true}, nil, `"reasoning":{"effort":"medium","summary":"auto"},"include":["reasoning.encrypted_content"]`},
		{"budget", Thinking{Enabled: true, Budget: 2000}, nil, `"reasoning":{"effort":"low","summary":"auto"},"include":["reasoning.encrypted_content"]`},
		{"replayed reasoning keeps include", Thinking{}, []Message{{Role: RoleAssistant, Parts: []Part{{Kind: PartThinking, Sig: Signature{Origin: OriginOpenAI, Value: "gAAAA"}}}}}, `"include":["reasoning.encrypted_content"]`},
		{"a model without reasoning", Thinking{Enabled: true, Effort: "high"}, nil, ""},
		{"foreign thinking only", Thinking{}, []Message{{Role: RoleAssistant, Parts: []Part{{Kind: PartThinking, Text: "t", Sig: Signature{Origin: OriginGemini, Value: "g"}}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := "gpt-5"
			if strings.Contains(tt.name, "without reasoning") {
				model = "gpt-4.1"
			}
			b, err := EncodeResponses(&Request{Model: model, Thinking: tt.thinking, Messages: tt.msgs})
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			if tt.want == "" {
				if strings.Contains(s, "reasoning\":{") || strings.Contains(s, "include") || strings.Contains(s, `"type":"reasoning"`) {
					t.Fatalf("unexpected reasoning in %s", s)
				}
				return
			}
			if !strings.Contains(s, tt.want) {
				t.Fatalf("%s lacks %s", s, tt.want)
			}
			if !strings.Contains(s, `"store":false`) {
				t.Fatalf("%s lacks store:false", s)
			}
		})
	}
}

func TestEncodeResponsesFormat(t *testing.T) {
	b, err := EncodeResponses(&Request{Model: "m", Format: &Format{JSON: true, Schema: json.RawMessage(`{"type":"object"}`), Strict: true}, ToolChoice: ToolChoice{Mode: "none"}, CacheKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","instructions":"","input":[],"tool_choice":"none","store":false,"stream":false,"text":{"format":{"name":"response","schema":{"type":"object"},"strict":true,"type":"json_schema"}},"prompt_cache_key":"k"}`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
	b, _ = EncodeResponses(&Request{Model: "m", Format: &Format{JSON: true}})
	if !strings.Contains(string(b), `"text":{"format":{"type":"json_object"}}`) {
		t.Fatal(string(b))
	}
}

// A Responses answer with reasoning and a function call, as the API sends it.
const responsesToolAnswer = `{"id":"resp_68a1","object":"response","created_at":1767225600,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-5-codex","output":[` +
	`{"id":"rs_68a1","type":"reasoning","summary":[{"type":"summary_text","text":"**Planning**"},{"type":"summary_text","text":"Read the file."}],"encrypted_content":"gAAAAABenc"},` +
	`{"id":"msg_68a1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Let me ","annotations":[]},{"type":"output_text","text":"look.","annotations":[]}]},` +
	`{"id":"fc_68a1","type":"function_call","status":"completed","arguments":"{\"path\":\"a.go\"}","call_id":"call_X","name":"read"},` +
	`{"id":"ctc_68a1","type":"custom_tool_call","status":"completed","call_id":"call_Y","name":"apply_patch","input":"*** Begin Patch"},` +
	`{"id":"ws_1","type":"web_search_call","status":"completed","action":{"type":"search","query":"q"}}],` +
	`"usage":{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1000},"output_tokens":90,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":1290}}`

func TestParseResponses(t *testing.T) {
	tests := []struct {
		name, body string
		want       *Response
	}{
		{"reasoning and tools", responsesToolAnswer, &Response{
			ID: "resp_68a1", Model: "gpt-5-codex",
			Parts: []Part{
				{Kind: PartThinking, Text: "**Planning**\n\nRead the file.", Sig: Signature{Origin: OriginOpenAI, Value: "gAAAAABenc", ID: "rs_68a1"}},
				{Kind: PartText, Text: "Let me look."},
				{Kind: PartToolCall, CallID: "call_X", Name: "read", Args: `{"path":"a.go"}`},
				{Kind: PartToolCall, CallID: "call_Y", Name: "apply_patch", Args: "*** Begin Patch", Custom: true},
			},
			Stop:            StopTool,
			Usage:           provider.Usage{InputTokens: 200, CacheReadTokens: 1000, OutputTokens: 90},
			ReasoningTokens: 64,
		}},
		{"incomplete", `{"id":"resp_2","model":"m","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"message","content":[{"type":"output_text","text":"cut"}]}],"usage":{"input_tokens":5,"output_tokens":7}}`, &Response{
			ID: "resp_2", Model: "m", Parts: []Part{{Kind: PartText, Text: "cut"}}, Stop: StopMax,
			Usage: provider.Usage{InputTokens: 5, OutputTokens: 7},
		}},
		{"refusal", `{"id":"resp_3","model":"m","status":"completed","output":[{"type":"message","content":[{"type":"refusal","refusal":"I can't help with that."}]}]}`, &Response{
			ID: "resp_3", Model: "m", Parts: []Part{{Kind: PartText, Text: "I can't help with that."}}, Stop: StopRefusal,
		}},
		{"plain", `{"id":"resp_4","model":"m","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":0},"output_tokens":1}}`, &Response{
			ID: "resp_4", Model: "m", Parts: []Part{{Kind: PartText, Text: "hi"}}, Stop: StopEnd,
			Usage: provider.Usage{InputTokens: 3, OutputTokens: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponses([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseResponsesErrors(t *testing.T) {
	_, err := ParseResponses([]byte(`{"id":"resp_5","status":"failed","error":{"code":"server_error","message":"The server had an error"}}`))
	if !errors.Is(err, ErrResponseFailed) || !strings.Contains(err.Error(), "server_error") {
		t.Fatalf("failed response: %v", err)
	}
	for _, body := range []string{``, `[]`, `{"id":`} {
		if _, err := ParseResponses([]byte(body)); err == nil {
			t.Fatalf("%q parsed", body)
		}
	}
}

// responsesShape is what openai-go and Codex read from a Response object.
type responsesShape struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Status            string `json:"status"`
	Model             string `json:"model"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Output []struct {
		Type             string  `json:"type"`
		ID               string  `json:"id"`
		Role             string  `json:"role"`
		Status           string  `json:"status"`
		CallID           string  `json:"call_id"`
		Name             string  `json:"name"`
		Arguments        string  `json:"arguments"`
		Input            string  `json:"input"`
		EncryptedContent *string `json:"encrypted_content"`
		Summary          []struct {
			Type, Text string
		} `json:"summary"`
		Content []struct {
			Type, Text string
		} `json:"content"`
	} `json:"output"`
	Usage struct {
		InputTokens        int64 `json:"input_tokens"`
		InputTokensDetails struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokens        int64 `json:"output_tokens"`
		OutputTokensDetails struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
		TotalTokens int64 `json:"total_tokens"`
	} `json:"usage"`
}

func TestWriteResponses(t *testing.T) {
	resp := &Response{
		ID: "msg_01Abc", Model: "claude-sonnet-4-5",
		Parts: []Part{
			{Kind: PartThinking, Text: "thinking it over", Sig: Signature{Origin: OriginAnthropic, Value: "EqQBsig"}},
			{Kind: PartThinking, Sig: Signature{Origin: OriginAnthropic, Value: "opaque"}, Redacted: true},
			{Kind: PartText, Text: "Hello "},
			{Kind: PartText, Text: "there."},
			{Kind: PartToolCall, CallID: "toolu_1", Name: "shell", Args: `{"command":["ls"]}`},
			{Kind: PartToolCall, CallID: "toolu_2", Name: "apply_patch", Args: "*** Begin Patch", Custom: true},
			{Kind: PartToolCall, CallID: "toolu_3", Name: "multi_agent_v1___close_agent", Args: `{"target":"a"}`},
		},
		Stop:  StopTool,
		Usage: provider.Usage{InputTokens: 10, CacheReadTokens: 100, CacheCreationTokens: 5, OutputTokens: 40},
	}
	b := WriteResponses(resp, "gpt-5-codex")
	var got responsesShape
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if got.ID != "resp_01Abc" || got.Object != "response" || got.Status != "completed" || got.Model != "gpt-5-codex" || got.IncompleteDetails != nil {
		t.Fatalf("header: %s", b)
	}
	if u := got.Usage; u.InputTokens != 115 || u.InputTokensDetails.CachedTokens != 100 || u.OutputTokens != 40 || u.TotalTokens != 155 {
		t.Fatalf("usage: %+v", u)
	}
	if len(got.Output) != 6 {
		t.Fatalf("%d items: %s", len(got.Output), b)
	}
	rs := got.Output[0]
	if rs.Type != "reasoning" || rs.ID != "rs_01Abc_0" || len(rs.Summary) != 1 || rs.Summary[0].Text != "thinking it over" || rs.EncryptedContent == nil {
		t.Fatalf("reasoning item: %+v", rs)
	}
	if sig, text, ok := UnwrapSignature(*rs.EncryptedContent); !ok || sig != (Signature{Origin: OriginAnthropic, Value: "EqQBsig"}) || text != "thinking it over" {
		t.Fatalf("encrypted_content does not unwrap: %v %+v %q", ok, sig, text)
	}
	if red := got.Output[1]; red.Type != "reasoning" || len(red.Summary) != 0 || red.EncryptedContent == nil {
		t.Fatalf("redacted item: %+v", red)
	}
	if m := got.Output[2]; m.Type != "message" || m.Role != "assistant" || m.ID != "msg_01Abc_2" || len(m.Content) != 1 || m.Content[0].Text != "Hello there." || m.Content[0].Type != "output_text" {
		t.Fatalf("message item: %+v", m)
	}
	if fc := got.Output[3]; fc.Type != "function_call" || fc.CallID != "toolu_1" || fc.Name != "shell" || fc.Arguments != `{"command":["ls"]}` || fc.ID != "fc_01Abc_3" || fc.Status != "completed" {
		t.Fatalf("function call: %+v", fc)
	}
	if cc := got.Output[4]; cc.Type != "custom_tool_call" || cc.CallID != "toolu_2" || cc.Input != "*** Begin Patch" || !strings.HasPrefix(cc.ID, "ctc_") {
		t.Fatalf("custom call: %+v", cc)
	}
	if !strings.Contains(string(b), `"call_id":"toolu_3","namespace":"multi_agent_v1","name":"close_agent"`) {
		t.Fatalf("the namespaced call is not split: %s", b)
	}
	// The client sends the items back: the decoder restores both thinking
	// parts exactly, the redacted one as redacted.
	var items []json.RawMessage
	var raw struct{ Output []json.RawMessage }
	_ = json.Unmarshal(b, &raw)
	items = raw.Output
	back, err := DecodeResponses([]byte(`{"input":[` + string(items[0]) + `,` + string(items[1]) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if ps := back.Messages[0].Parts; !reflect.DeepEqual(ps, resp.Parts[:2]) {
		t.Fatalf("round trip: %+v, want %+v", ps, resp.Parts[:2])
	}
}

func TestWriteResponsesIncomplete(t *testing.T) {
	b := WriteResponses(&Response{ID: "resp_x", Parts: []Part{{Kind: PartText, Text: "cut"}}, Stop: StopMax, ReasoningTokens: 3,
		Usage: provider.Usage{InputTokens: 1, OutputTokens: 2}}, "m")
	var got responsesShape
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "incomplete" || got.IncompleteDetails == nil || got.IncompleteDetails.Reason != "max_output_tokens" || got.ID != "resp_x" {
		t.Fatalf("%s", b)
	}
	if got.Usage.OutputTokensDetails.ReasoningTokens != 3 {
		t.Fatalf("%s", b)
	}
	// An OpenAI reasoning item keeps its id and native state.
	b = WriteResponses(&Response{Parts: []Part{{Kind: PartThinking, Sig: Signature{Origin: OriginOpenAI, Value: "gAAAA", ID: "rs_7"}}}}, "m")
	if !strings.Contains(string(b), `{"type":"reasoning","id":"rs_7","summary":[],"encrypted_content":"gAAAA"}`) {
		t.Fatalf("%s", b)
	}
}

// TestResponsesRoundTripThroughClaude is the multi-turn case: Codex on a
// Claude account sends back what it was given, and the tool turn keeps
// Claude's signed thinking, while an OpenAI answer's reasoning goes back to
// OpenAI intact.
func TestResponsesRoundTripThroughOpenAI(t *testing.T) {
	resp, err := ParseResponses([]byte(responsesToolAnswer))
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Model: "gpt-5", Messages: []Message{
		{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "go"}}},
		{Role: RoleAssistant, Parts: resp.Parts},
		{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "call_X", Result: []Part{{Kind: PartText, Text: "package a"}}}, {Kind: PartToolResult, CallID: "call_Y", Result: []Part{{Kind: PartText, Text: "done"}}}}},
	}}
	b, err := EncodeResponses(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"type":"reasoning","id":"rs_68a1","summary":[{"type":"summary_text","text":"**Planning**\n\nRead the file."}],"encrypted_content":"gAAAAABenc"}`,
		`{"type":"custom_tool_call_output","call_id":"call_Y","output":"done"}`,
		`{"type":"function_call_output","call_id":"call_X","output":"package a"}`,
		`"include":["reasoning.encrypted_content"]`,
	} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("%s\nlacks %s", b, want)
		}
	}
}

func TestEncodeResponsesSampling(t *testing.T) {
	temp, topP := 0.3, 0.9
	for _, tt := range []struct {
		model string
		want  bool
	}{{"gpt-4.1", true}, {"gpt-4o-mini", true}, {"gpt-5", false}, {"o3", false}, {"gpt-5-codex", false}} {
		b, err := EncodeResponses(&Request{Model: tt.model, Temperature: &temp, TopP: &topP})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), `"temperature":0.3,"top_p":0.9`); got != tt.want {
			t.Fatalf("%s: sampling sent %v, want %v: %s", tt.model, got, tt.want, b)
		}
	}
}
