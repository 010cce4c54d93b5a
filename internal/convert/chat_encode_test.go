package convert

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestEncodeChat(t *testing.T) {
	text := func(s string) Part { return Part{Kind: PartText, Text: s} }
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{
			name: "minimal",
			req:  Request{Model: "deepseek-chat", Messages: []Message{{Role: RoleUser, Parts: []Part{text("hi")}}}},
			want: `{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}]}`,
		},
		{
			name: "system joined, streaming asks for usage, sampling, stop, user, limits; top_k, cache key and cache marks dropped",
			req: Request{Model: "m", System: []string{"You are Bob.", "Be brief."}, SystemCache: true,
				Messages:  []Message{{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "hi", Cache: true}}}},
				MaxTokens: 100, Temperature: f64(0.2), TopP: f64(0.9), TopK: i64(5), Stop: []string{"END"}, User: "u1",
				CacheKey: "k", Stream: true, IncludeUsage: false},
			want: `{"model":"m","messages":[{"role":"system","content":"You are Bob.\n\nBe brief."},{"role":"user","content":"hi"}],
				"max_tokens":100,"temperature":0.2,"top_p":0.9,"stop":["END"],"user":"u1","stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "Claude Code tool round trip: thinking dropped, tool results first as tool messages, tool images follow as a user message",
			req: Request{Model: "m", Messages: []Message{
				{Role: RoleUser, Parts: []Part{text("<system-reminder>x</system-reminder>"), text("fix it")}},
				{Role: RoleAssistant, Parts: []Part{
					{Kind: PartThinking, Text: "hmm", Sig: Signature{Origin: OriginAnthropic, Value: "EqQB"}},
					text("Reading."),
					{Kind: PartToolCall, CallID: "toolu_01", Name: "Read", Args: `{"file_path": "/a"}`},
					{Kind: PartToolCall, CallID: "toolu_02", Name: "Screenshot", Args: ``}}},
				{Role: RoleUser, Parts: []Part{
					{Kind: PartToolResult, CallID: "toolu_01", IsError: true, Result: []Part{text("no such file"), text("(twice)")}},
					{Kind: PartToolResult, CallID: "toolu_02", Result: []Part{{Kind: PartImage, MediaType: "image/png", Data: "iVBO"}}},
					text("go on")}}}},
			want: `{"model":"m","messages":[
				{"role":"user","content":"<system-reminder>x</system-reminder>\n\nfix it"},
				{"role":"assistant","content":"Reading.","tool_calls":[
					{"id":"toolu_01","type":"function","function":{"name":"Read","arguments":"{\"file_path\":\"/a\"}"}},
					{"id":"toolu_02","type":"function","function":{"name":"Screenshot","arguments":"{}"}}]},
				{"role":"tool","content":"no such file\n\n(twice)","tool_call_id":"toolu_01"},
				{"role":"tool","content":"","tool_call_id":"toolu_02"},
				{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},{"type":"text","text":"go on"}]}]}`,
		},
		{
			name: "pure tool-call turn has null content; a thinking-only turn vanishes; images, urls and documents",
			req: Request{Model: "m", Messages: []Message{
				{Role: RoleUser, Parts: []Part{text("look"), {Kind: PartImage, URL: "https://x/y.png"}, {Kind: PartFile, MediaType: "application/pdf", Data: "JVBE"}}},
				{Role: RoleAssistant, Parts: []Part{{Kind: PartThinking, Text: "only thinking"}}},
				{Role: RoleAssistant, Parts: []Part{{Kind: PartToolCall, CallID: "c", Name: "f", Args: `{}`}}}}},
			want: `{"model":"m","messages":[
				{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://x/y.png"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE"}}]},
				{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
		},
		{
			name: "tools: function, custom as {input}, forced tool, no parallel; a custom call replays as {input}",
			req: Request{Model: "m",
				Messages: []Message{{Role: RoleUser, Parts: []Part{text("x")}}, {Role: RoleAssistant, Parts: []Part{
					{Kind: PartToolCall, CallID: "call_1", Name: "apply_patch", Custom: true, Args: "*** Begin Patch\n"}}}},
				Tools: []Tool{{Name: "f", Description: "does f", Schema: json.RawMessage(`{"type":"object"}`)}, {Name: "g"},
					{Name: "apply_patch", Description: "patch", Custom: true, Format: json.RawMessage(`{"type":"grammar"}`)}},
				ToolChoice: ToolChoice{Mode: "tool", Name: "f", NoParallel: true}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\\n\"}"}}]}],
				"tools":[{"type":"function","function":{"name":"f","description":"does f","parameters":{"type":"object"}}},
					{"type":"function","function":{"name":"g","parameters":{"type":"object","properties":{}}}},
					{"type":"function","function":{"name":"apply_patch","description":"patch","parameters":` + chatCustomSchema + `}}],
				"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
		},
		{
			name: "reasoning from a Chat upstream goes back as reasoning_content; foreign thinking does not; an empty one on a thinking tool-call turn",
			req: Request{Model: "deepseek-reasoner", Thinking: Thinking{Enabled: true, Effort: "high"}, Messages: []Message{
				{Role: RoleUser, Parts: []Part{text("x")}},
				{Role: RoleAssistant, Parts: []Part{
					{Kind: PartThinking, Text: "plan ", Sig: Signature{Origin: OriginChat}},
					{Kind: PartThinking, Text: "signed", Sig: Signature{Origin: OriginAnthropic, Value: "EqQB"}},
					{Kind: PartThinking, Text: "more", Sig: Signature{Origin: OriginChat}},
					{Kind: PartToolCall, CallID: "c1", Name: "f", Args: "{}"}}},
				{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "c1"}}},
				{Role: RoleAssistant, Parts: []Part{
					{Kind: PartThinking, Text: "foreign", Sig: Signature{Origin: OriginOpenAI, Value: "gAAAA"}},
					{Kind: PartToolCall, CallID: "c2", Name: "f", Args: "{}"}}},
				{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "c2"}}},
				{Role: RoleAssistant, Parts: []Part{text("done")}}}},
			want: `{"model":"deepseek-reasoner","reasoning_effort":"high","messages":[{"role":"user","content":"x"},
				{"role":"assistant","content":null,"reasoning_content":"plan more","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
				{"role":"tool","content":"","tool_call_id":"c1"},
				{"role":"assistant","content":null,"reasoning_content":"","tool_calls":[{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
				{"role":"tool","content":"","tool_call_id":"c2"},
				{"role":"assistant","content":"done"}]}`,
		},
		{
			name: "tool_choice without tools is nothing",
			req:  Request{Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{text("x")}}}, ToolChoice: ToolChoice{Mode: "required", NoParallel: true}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"}]}`,
		},
		{
			name: "effort passes, json_schema gets a default name",
			req: Request{Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{text("x")}}},
				Thinking: Thinking{Enabled: true, Effort: "minimal"}, Format: &Format{JSON: true, Schema: json.RawMessage(`{"type":"object"}`), Strict: true}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"minimal",
				"response_format":{"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object"},"strict":true}}}`,
		},
		{
			name: "budget becomes an effort, json_object, tool_choice auto",
			req: Request{Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{text("x")}}}, Tools: []Tool{{Name: "f"}},
				ToolChoice: ToolChoice{Mode: "auto"}, Thinking: Thinking{Enabled: true, Budget: 10000}, Format: &Format{JSON: true}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],
				"tool_choice":"auto","reasoning_effort":"high","response_format":{"type":"json_object"}}`,
		},
		{
			name: "adaptive thinking leaves the effort to the model; disabled thinking sends none",
			req: Request{Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{text("x")}}},
				Thinking: Thinking{Enabled: true, Adaptive: true}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeChat(&tt.req)
			if err != nil {
				t.Fatalf("EncodeChat: %v", err)
			}
			jsonEqual(t, got, tt.want)
		})
	}
}

func TestEncodeChatGeneratesMissingCallIDs(t *testing.T) {
	got, err := EncodeChat(&Request{Model: "m", Messages: []Message{{Role: RoleAssistant, Parts: []Part{{Kind: PartToolCall, Name: "f"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Messages []struct {
			ToolCalls []struct{ ID string } `json:"tool_calls"`
		}
	}
	if err := json.Unmarshal(got, &b); err != nil || len(b.Messages) != 1 || len(b.Messages[0].ToolCalls) != 1 || len(b.Messages[0].ToolCalls[0].ID) < 10 {
		t.Fatalf("%s (%v)", got, err)
	}
}

func TestEncodeChatErrors(t *testing.T) {
	_, err := EncodeChat(&Request{Model: "m", PreviousResponseID: "resp_1", Messages: []Message{{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "x"}}}}})
	var re *RequestError
	if !errors.As(err, &re) || re.Param != "previous_response_id" {
		t.Errorf("previous_response_id: %v, want a *RequestError", err)
	}
	if _, err := EncodeChat(&Request{}); err == nil || errors.As(err, &re) {
		t.Errorf("no model: %v, want a plain error (the relay's fault)", err)
	}
}

// A decoded Chat request encodes back to the same request: the two sides of
// the codec agree.
func TestDecodeEncodeChatRoundTrip(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"x"},
		{"role":"assistant","content":"ok","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":[{"type":"text","text":"y"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],
		"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}}}],
		"tool_choice":"required","parallel_tool_calls":false,"max_tokens":9,"temperature":0.5,"stop":["z"],"reasoning_effort":"low","stream":true,"stream_options":{"include_usage":true},
		"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"}}},"user":"u"}`
	r, err := DecodeChat([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodeChat(r)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"x"},
		{"role":"assistant","content":"ok","reasoning_content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":[{"type":"text","text":"y"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],
		"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}}}],
		"tool_choice":"required","parallel_tool_calls":false,"max_tokens":9,"temperature":0.5,"stop":["z"],"reasoning_effort":"low","stream":true,"stream_options":{"include_usage":true},
		"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"}}},"user":"u"}`)
}

// DeepSeek's answer, parsed and replayed on the next turn, carries its
// reasoning_content back (DeepSeek answers 400 without it).
func TestParseEncodeChatKeepsReasoning(t *testing.T) {
	resp, err := ParseChat([]byte(`{"id":"d","model":"deepseek-reasoner","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"Need the weather.","tool_calls":[{"id":"call_0","type":"function","function":{"name":"w","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodeChat(&Request{Model: "deepseek-reasoner", Messages: []Message{
		{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "weather?"}}},
		{Role: RoleAssistant, Parts: resp.Parts},
		{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "call_0", Result: []Part{{Kind: PartText, Text: "sun"}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, `{"model":"deepseek-reasoner","messages":[{"role":"user","content":"weather?"},
		{"role":"assistant","content":null,"reasoning_content":"Need the weather.","tool_calls":[{"id":"call_0","type":"function","function":{"name":"w","arguments":"{}"}}]},
		{"role":"tool","content":"sun","tool_call_id":"call_0"}]}`)
}
