package convert

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// claudeCodeRequest is a second-turn request shaped like Claude Code's: a
// system prompt in blocks with a cache breakpoint, tools including an
// Anthropic server tool, adaptive thinking with an effort, a thinking block
// signed by Anthropic, a tool round trip with an image in the result.
const claudeCodeRequest = `{
  "model": "claude-sonnet-4-5",
  "max_tokens": 32000,
  "system": [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.0"},
    {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
  ],
  "messages": [
    {"role": "user", "content": [
      {"type": "text", "text": "What is in shot.png?"},
      {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    ]},
    {"role": "assistant", "content": [
      {"type": "thinking", "thinking": "I should read the file.", "signature": "EqQBCkYIBRgCKkA9"},
      {"type": "text", "text": "Reading it."},
      {"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": {"file_path": "/tmp/shot.png"}},
      {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
      {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    ]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_01A", "is_error": false, "content": [
        {"type": "text", "text": "PNG 2x2"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
      ]},
      {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}}
    ]}
  ],
  "tools": [
    {"name": "Read", "description": "Reads a file", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
  ],
  "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
  "thinking": {"type": "adaptive"},
  "output_config": {"effort": "max"},
  "metadata": {"user_id": "user_abc_account__session_1"},
  "stop_sequences": ["\n\nHuman:"],
  "stream": true,
  "context_management": {"edits": []}
}`

func TestDecodeMessagesClaudeCode(t *testing.T) {
	r, err := DecodeMessages([]byte(claudeCodeRequest))
	if err != nil {
		t.Fatal(err)
	}
	want := &Request{
		Model:       "claude-sonnet-4-5",
		System:      []string{"You are Claude Code."}, // the attribution line is not carried
		SystemCache: true,
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{
				{Kind: PartText, Text: "What is in shot.png?"},
				{Kind: PartImage, URL: "https://example.com/a.png"},
			}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "I should read the file.", Sig: Signature{Origin: OriginAnthropic, Value: "EqQBCkYIBRgCKkA9"}},
				{Kind: PartText, Text: "Reading it."},
				{Kind: PartToolCall, CallID: "toolu_01A", Name: "Read", Args: `{"file_path":"/tmp/shot.png"}`},
			}},
			{Role: RoleUser, Parts: []Part{
				{Kind: PartToolResult, CallID: "toolu_01A", Result: []Part{
					{Kind: PartText, Text: "PNG 2x2"},
					{Kind: PartImage, MediaType: "image/png", Data: "iVBORw0KGgo="},
				}},
				{Kind: PartText, Text: "and?", Cache: true},
			}},
		},
		Tools: []Tool{{Name: "Read", Description: "Reads a file",
			Schema: json.RawMessage(`{"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}`)}},
		ToolChoice: ToolChoice{Mode: "auto", NoParallel: true},
		MaxTokens:  32000,
		Stop:       []string{"\n\nHuman:"},
		Stream:     true,
		Thinking:   Thinking{Enabled: true, Adaptive: true, Effort: "xhigh"},
		User:       "user_abc_account__session_1",
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("DecodeMessages\n got: %+v\nwant: %+v", r, want)
	}
}

func TestDecodeMessagesFields(t *testing.T) {
	wrapped := WrapSignature(Signature{Origin: OriginOpenAI, ID: "rs_9", Value: "gAAAAB-state"}, "summary text")
	tests := []struct {
		name string
		body string
		want func(r *Request) any
		is   any
	}{
		{"system string", `{"model":"m","max_tokens":5,"system":"be brief","messages":[{"role":"user","content":"hi"}]}`,
			func(r *Request) any { return r.System }, []string{"be brief"}},
		{"content string", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			func(r *Request) any { return r.Messages[0].Parts }, []Part{{Kind: PartText, Text: "hi"}}},
		{"enabled thinking", `{"model":"m","messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":2048}}`,
			func(r *Request) any { return r.Thinking }, Thinking{Enabled: true, Budget: 2048}},
		{"disabled thinking ignores effort", `{"model":"m","messages":[{"role":"user","content":"hi"}],"thinking":{"type":"disabled"},"output_config":{"effort":"low"}}`,
			func(r *Request) any { return r.Thinking }, Thinking{}},
		{"effort with budget", `{"model":"m","messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":2048},"output_config":{"effort":"medium"}}`,
			func(r *Request) any { return r.Thinking }, Thinking{Enabled: true, Budget: 2048, Effort: "medium"}},
		{"sampling", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"top_p":0.9,"top_k":40}`,
			func(r *Request) any { return []any{*r.Temperature, *r.TopP, *r.TopK} }, []any{0.5, 0.9, int64(40)}},
		{"tool_choice any", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"any"}}`,
			func(r *Request) any { return r.ToolChoice }, ToolChoice{Mode: "required"}},
		{"tool_choice tool", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"tool","name":"Read","disable_parallel_tool_use":true}}`,
			func(r *Request) any { return r.ToolChoice }, ToolChoice{Mode: "tool", Name: "Read", NoParallel: true}},
		{"tool_choice none", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"none"}}`,
			func(r *Request) any { return r.ToolChoice }, ToolChoice{Mode: "none"}},
		{"custom tool type kept", `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"custom","name":"f","input_schema":{"type":"object"}},{"type":"bash_20250124","name":"bash"}]}`,
			func(r *Request) any { return r.Tools }, []Tool{{Name: "f", Schema: json.RawMessage(`{"type":"object"}`)}}},
		{"wrapped signature restores foreign state and text", `{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"shown","signature":"` + wrapped + `"}]}]}`,
			func(r *Request) any { return r.Messages[0].Parts },
			[]Part{{Kind: PartThinking, Text: "summary text", Sig: Signature{Origin: OriginOpenAI, ID: "rs_9", Value: "gAAAAB-state"}}}},
		{"redacted thinking", `{"model":"m","messages":[{"role":"assistant","content":[{"type":"redacted_thinking","data":"EmwKAhgB"}]}]}`,
			func(r *Request) any { return r.Messages[0].Parts },
			[]Part{{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "EmwKAhgB"}}}},
		{"unsigned thinking has no state", `{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":""}]}]}`,
			func(r *Request) any { return r.Messages[0].Parts }, []Part{{Kind: PartThinking, Text: "t"}}},
		{"tool result string, error", `{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"boom","is_error":true}]}]}`,
			func(r *Request) any { return r.Messages[0].Parts },
			[]Part{{Kind: PartToolResult, CallID: "t1", IsError: true, Result: []Part{{Kind: PartText, Text: "boom"}}}}},
		{"text document", `{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"notes"}}]}]}`,
			func(r *Request) any { return r.Messages[0].Parts }, []Part{{Kind: PartText, Text: "notes"}}},
		{"structured output", `{"model":"m","messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`,
			func(r *Request) any { return r.Format }, &Format{JSON: true, Schema: json.RawMessage(`{"type":"object"}`)}},
		{"beta structured output", `{"model":"m","messages":[{"role":"user","content":"x"}],"output_format":{"type":"json_schema","schema":{"type":"object"}}}`,
			func(r *Request) any { return r.Format }, &Format{JSON: true, Schema: json.RawMessage(`{"type":"object"}`)}},
		{"nulls are absent", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":null,"tools":null,"tool_choice":null,"thinking":null}`,
			func(r *Request) any { return r.Temperature == nil && r.Tools == nil && r.ToolChoice == (ToolChoice{}) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeMessages([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.want(r); !reflect.DeepEqual(got, tt.is) {
				t.Errorf("got %+v, want %+v", got, tt.is)
			}
		})
	}
}

func TestDecodeMessagesErrors(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct{ name, body, param string }{
		{"not json", `{"model":`, ""},
		{"not an object", `[1]`, ""},
		{"no messages", `{"model":"m"}`, "messages"},
		{"empty messages", `{"model":"m","messages":[]}`, "messages"},
		{"bad role", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].role"},
		{"bad max_tokens", `{"model":"m","max_tokens":0,` + msgs + `}`, "max_tokens"},
		{"temperature above 1", `{"model":"m","temperature":1.5,` + msgs + `}`, "temperature"},
		{"bad block", `{"model":"m","messages":[{"role":"user","content":[{"type":"audio"}]}]}`, "messages[0].content[0].type"},
		{"pdf document", `{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]}`, "messages[0].content[0].type"},
		{"image file source", `{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages[0].content[0].source.type"},
		{"tool_use input array", `{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"b","input":[1]}]}]}`, "messages[0].content[0].input"},
		{"tool without schema", `{"model":"m",` + msgs + `,"tools":[{"name":"f"}]}`, "tools[0].input_schema"},
		{"tool_choice names a server tool", `{"model":"m",` + msgs + `,"tools":[{"type":"web_search_20250305","name":"web_search"}],"tool_choice":{"type":"tool","name":"web_search"}}`, "tool_choice.name"},
		{"bad thinking type", `{"model":"m",` + msgs + `,"thinking":{"type":"deep"}}`, "thinking.type"},
		{"budget missing", `{"model":"m",` + msgs + `,"thinking":{"type":"enabled"}}`, "thinking.budget_tokens"},
		{"bad effort", `{"model":"m",` + msgs + `,"thinking":{"type":"adaptive"},"output_config":{"effort":"extreme"}}`, "output_config.effort"},
		{"bad output format", `{"model":"m",` + msgs + `,"output_config":{"format":{"type":"text"}}}`, "output_config.format"},
		{"bad stop", `{"model":"m",` + msgs + `,"stop_sequences":"x"}`, "stop_sequences"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMessages([]byte(tt.body))
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			if re.Param != tt.param {
				t.Errorf("param = %q, want %q (%s)", re.Param, tt.param, re.Message)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func user(parts ...Part) Message      { return Message{Role: RoleUser, Parts: parts} }
func assistant(parts ...Part) Message { return Message{Role: RoleAssistant, Parts: parts} }
func text(s string) Part              { return Part{Kind: PartText, Text: s} }

func TestEncodeMessages(t *testing.T) {
	antSig := Signature{Origin: OriginAnthropic, Value: "EqQBsig"}
	call := Part{Kind: PartToolCall, CallID: "call.1:x", Name: "get_weather", Args: `{"city":"Paris"}`}
	result := Part{Kind: PartToolResult, CallID: "call.1:x", Result: []Part{text("18C")}}
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{
			name: "system, cache, images, stop, user, default max_tokens",
			req: Request{Model: "claude-x", System: []string{"a", "b"}, SystemCache: true, Stop: []string{" ", "END"}, User: "u1", Stream: true,
				Messages: []Message{user(text("look"), Part{Kind: PartImage, MediaType: "image/png", Data: "AAA=", Cache: true},
					Part{Kind: PartImage, URL: "data:image/jpeg;base64,BBB="}, Part{Kind: PartImage, URL: "https://x/y.png"})}},
			want: `{"model":"claude-x","max_tokens":4096,"system":[{"type":"text","text":"a"},{"type":"text","text":"b","cache_control":{"type":"ephemeral"}}],
				"messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA="},"cache_control":{"type":"ephemeral"}},
				{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"BBB="}},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}],
				"stop_sequences":["END"],"metadata":{"user_id":"u1"},"stream":true}`,
		},
		{
			name: "tool round trip: ids sanitized, results first, same roles merged, empty text dropped",
			req: Request{Model: "m", MaxTokens: 100,
				Tools:      []Tool{{Name: "get_weather", Description: "d", Schema: json.RawMessage(`{"properties":{"city":{"type":"string"}}}`)}},
				ToolChoice: ToolChoice{NoParallel: true},
				Messages: []Message{user(text("weather?")), assistant(text(""), call),
					user(text("also, thanks")), user(result), Message{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "c2", IsError: true}}}}},
			want: `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"weather?"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"call_1_x","name":"get_weather","input":{"city":"Paris"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1_x","content":"18C"},{"type":"tool_result","tool_use_id":"c2","is_error":true},{"type":"text","text":"also, thanks"}]}],
				"tools":[{"name":"get_weather","description":"d","input_schema":{"properties":{"city":{"type":"string"}},"type":"object"}}],
				"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
		},
		{
			name: "custom tool and call, tool result with image blocks",
			req: Request{Model: "m", MaxTokens: 10, Tools: []Tool{{Name: "apply_patch", Description: "patch", Custom: true,
				Format: json.RawMessage(`{"type":"grammar","syntax":"lark","definition":"start: begin_patch"}`)}},
				ToolChoice: ToolChoice{Mode: "required"},
				Messages: []Message{user(text("fix")), assistant(Part{Kind: PartToolCall, CallID: "c", Name: "apply_patch", Custom: true, Args: "*** Begin Patch\n\"x\""}),
					user(Part{Kind: PartToolResult, CallID: "c", Result: []Part{text("ok"), {Kind: PartImage, MediaType: "image/png", Data: "QQ=="}}})}},
			want: `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"fix"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"c","name":"apply_patch","input":{"input":"*** Begin Patch\n\"x\""}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"c","content":[{"type":"text","text":"ok"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QQ=="}}]}]}],
				"tools":[{"name":"apply_patch","description":"patch\n\nSend the tool's raw input, verbatim, as the string property \"input\". It must follow this grammar (lark):\nstart: begin_patch","input_schema":{"type":"object","properties":{"input":{"type":"string"}},"required":["input"]}}],
				"tool_choice":{"type":"any"}}`,
		},
		{
			name: "json schema format becomes a system instruction",
			req: Request{Model: "m", MaxTokens: 10, System: []string{"s"}, Format: &Format{JSON: true, Name: "out", Schema: json.RawMessage(`{"type":"object"}`)},
				Messages: []Message{user(text("q"))}},
			want: `{"model":"m","max_tokens":10,"system":[{"type":"text","text":"s"},{"type":"text","text":` + string(appendString(nil, jsonSchemaInstruction+"\n\nSchema name: out\n\n{\"type\":\"object\"}")) + `}],
				"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}]}`,
		},
		{
			name: "effort-only thinking: budget from effort, added on top of a small max_tokens",
			req:  Request{Model: "m", MaxTokens: 1000, Thinking: Thinking{Enabled: true, Effort: "high"}, Temperature: ptr(1.0), Messages: []Message{user(text("q"))}},
			want: `{"model":"m","max_tokens":17384,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}],"temperature":1,"thinking":{"type":"enabled","budget_tokens":16384}}`,
		},
		{
			name: "small budget raised to the minimum; max_tokens above it kept",
			req:  Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Budget: 100}, Messages: []Message{user(text("q"))}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
		},
		{
			name: "adaptive with effort",
			req:  Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Adaptive: true, Effort: "minimal"}, Messages: []Message{user(text("q"))}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}],"thinking":{"type":"adaptive"},"output_config":{"effort":"low"}}`,
		},
		{
			name: "anthropic thinking replayed before the tool call keeps thinking on",
			req: Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Budget: 2000},
				Messages: []Message{user(text("q")), assistant(Part{Kind: PartThinking, Text: "hmm", Sig: antSig}, Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "RED"}}, call), user(result)}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]},
				{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"EqQBsig"},{"type":"redacted_thinking","data":"RED"},{"type":"tool_use","id":"call_1_x","name":"get_weather","input":{"city":"Paris"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1_x","content":"18C"}]}],"thinking":{"type":"enabled","budget_tokens":2000}}`,
		},
		{
			name: "foreign thinking dropped; the tool turn then lacks a signed block, so thinking goes off",
			req: Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Effort: "medium"},
				Messages: []Message{user(text("q")),
					assistant(Part{Kind: PartThinking, Text: "old", Sig: antSig}, text("earlier")), user(text("next")),
					assistant(Part{Kind: PartThinking, Text: "sum", Sig: Signature{Origin: OriginOpenAI, ID: "rs_1", Value: "gAAAA"}}, call), user(result)}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]},
				{"role":"assistant","content":[{"type":"text","text":"earlier"}]},{"role":"user","content":[{"type":"text","text":"next"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"call_1_x","name":"get_weather","input":{"city":"Paris"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1_x","content":"18C"}]}]}`,
		},
		{
			name: "thinking off: a turn of only thinking disappears and its neighbours merge",
			req: Request{Model: "m", MaxTokens: 10,
				Messages: []Message{user(text("a")), assistant(Part{Kind: PartThinking, Text: "t", Sig: antSig}), user(text("b"))}},
			want: `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		},
		{
			name: "top_k gives way to thinking (Gemini CLI sends topK 64 with thinkingConfig)",
			req: Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Budget: 2000}, Temperature: ptr(1.0), TopP: ptr(0.95), TopK: ptr(int64(64)),
				Messages: []Message{user(text("q"))}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}],"temperature":1,"top_p":0.95,"thinking":{"type":"enabled","budget_tokens":2000}}`,
		},
		{
			name: "top_k kept when thinking goes off (a prefill)",
			req: Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Budget: 2000}, TopK: ptr(int64(64)),
				Messages: []Message{user(text("q")), assistant(text("{"))}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]},{"role":"assistant","content":[{"type":"text","text":"{"}]}],"top_k":64}`,
		},
		{
			name: "a prefill without thinking turns thinking off",
			req: Request{Model: "m", MaxTokens: 8000, Thinking: Thinking{Enabled: true, Budget: 2000},
				Messages: []Message{user(text("q")), assistant(text("{"))}},
			want: `{"model":"m","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"q"}]},{"role":"assistant","content":[{"type":"text","text":"{"}]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeMessages(&tt.req)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, got, tt.want)
		})
	}
}

func TestEncodeMessagesErrors(t *testing.T) {
	q := []Message{user(text("q"))}
	th := Thinking{Enabled: true, Effort: "low"}
	tools := []Tool{{Name: "f"}}
	tests := []struct {
		name  string
		req   Request
		param string
	}{
		{"previous_response_id", Request{Messages: q, PreviousResponseID: "resp_1"}, "previous_response_id"},
		{"temperature with thinking", Request{Messages: q, Thinking: th, Temperature: ptr(0.7)}, "temperature"},
		{"top_p with thinking", Request{Messages: q, Thinking: th, TopP: ptr(0.5)}, "top_p"},
		{"forced tool with thinking", Request{Messages: q, Thinking: th, Tools: tools, ToolChoice: ToolChoice{Mode: "tool", Name: "f"}}, "tool_choice"},
		{"any tool with thinking", Request{Messages: q, Thinking: th, Tools: tools, ToolChoice: ToolChoice{Mode: "required"}}, "tool_choice"},
		{"tool_choice without tools", Request{Messages: q, ToolChoice: ToolChoice{Mode: "required"}}, "tool_choice"},
		{"temperature above Claude's range", Request{Messages: q, Temperature: ptr(1.6)}, "temperature"},
		{"no content", Request{Messages: []Message{assistant(Part{Kind: PartThinking, Text: "x"})}}, "messages"},
		{"arguments not an object", Request{Messages: []Message{user(text("q")), assistant(Part{Kind: PartToolCall, CallID: "c", Name: "f", Args: `[1`})}}, "messages"},
		{"file image url", Request{Messages: []Message{user(Part{Kind: PartImage, URL: "file:///etc/passwd"})}}, "messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Model = "m"
			_, err := EncodeMessages(&tt.req)
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			if re.Param != tt.param {
				t.Errorf("param = %q, want %q (%s)", re.Param, tt.param, re.Message)
			}
		})
	}
}

// TestMessagesRoundTrip checks that DecodeMessages then EncodeMessages keeps
// what an Anthropic upstream needs of a Claude Code request: everything but
// the Anthropic-defined tools, server-tool blocks and ignored fields.
func TestMessagesRoundTrip(t *testing.T) {
	r, err := DecodeMessages([]byte(claudeCodeRequest))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodeMessages(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"claude-sonnet-4-5","max_tokens":32000,
	  "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
	  "messages":[
	    {"role":"user","content":[{"type":"text","text":"What is in shot.png?"},{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
	    {"role":"assistant","content":[{"type":"thinking","thinking":"I should read the file.","signature":"EqQBCkYIBRgCKkA9"},{"type":"text","text":"Reading it."},
	      {"type":"tool_use","id":"toolu_01A","name":"Read","input":{"file_path":"/tmp/shot.png"}}]},
	    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01A","content":[{"type":"text","text":"PNG 2x2"},
	      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},{"type":"text","text":"and?","cache_control":{"type":"ephemeral"}}]}],
	  "stop_sequences":["\n\nHuman:"],"metadata":{"user_id":"user_abc_account__session_1"},
	  "tools":[{"name":"Read","description":"Reads a file","input_schema":{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}}],
	  "tool_choice":{"type":"auto","disable_parallel_tool_use":true},
	  "thinking":{"type":"adaptive"},"output_config":{"effort":"xhigh"},"stream":true}`
	jsonEqual(t, got, want)
	// Decoding what was encoded gives the same request again.
	r2, err := DecodeMessages(got)
	if err != nil {
		t.Fatal(err)
	}
	r.Tools[0].Schema, r2.Tools[0].Schema = nil, nil // whitespace differs
	if !reflect.DeepEqual(r, r2) {
		t.Errorf("second decode differs\n got: %+v\nwant: %+v", r2, r)
	}
}

// anthropicAnswer is a whole Messages answer with every block kind the
// parser reads or drops.
const anthropicAnswer = `{"id":"msg_01XYZ","type":"message","role":"assistant","model":"claude-sonnet-4-5",
 "content":[
  {"type":"thinking","thinking":"Let me think.","signature":"EqQBCkYIsig"},
  {"type":"redacted_thinking","data":"EmwKAhgBredacted"},
  {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},
  {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},
  {"type":"text","text":"Checking.","citations":null},
  {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city": "Paris"}}
 ],
 "stop_reason":"tool_use","stop_sequence":null,
 "usage":{"input_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":0},"output_tokens":50,"service_tier":"standard"}}`

func TestParseMessages(t *testing.T) {
	got, err := ParseMessages([]byte(anthropicAnswer))
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{
		ID: "msg_01XYZ", Model: "claude-sonnet-4-5",
		Parts: []Part{
			{Kind: PartThinking, Text: "Let me think.", Sig: Signature{Origin: OriginAnthropic, Value: "EqQBCkYIsig"}},
			{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "EmwKAhgBredacted"}},
			{Kind: PartText, Text: "Checking."},
			{Kind: PartToolCall, CallID: "toolu_01", Name: "get_weather", Args: `{"city":"Paris"}`},
		},
		Stop:  StopTool,
		Usage: provider.Usage{InputTokens: 100, CacheCreationTokens: 5, CacheReadTokens: 20, OutputTokens: 50},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseMessages\n got: %+v\nwant: %+v", got, want)
	}

	stops := map[string]StopReason{
		`"stop_reason":"stop_sequence","stop_sequence":"END"`: StopSequence,
		`"stop_reason":"max_tokens"`:                          StopMax,
		`"stop_reason":"model_context_window_exceeded"`:       StopMax,
		`"stop_reason":"refusal"`:                             StopRefusal,
		`"stop_reason":"pause_turn"`:                          StopPause,
		`"stop_reason":"something_new"`:                       StopEnd,
		`"stop_reason":null`:                                  StopEnd,
	}
	for frag, stop := range stops {
		r, err := ParseMessages([]byte(`{"id":"msg_1","content":[],` + frag + `}`))
		if err != nil || r.Stop != stop {
			t.Errorf("%s: stop %q, err %v; want %q", frag, r.Stop, err, stop)
		}
		if strings.Contains(frag, "END") && r.StopSequence != "END" {
			t.Errorf("stop_sequence = %q", r.StopSequence)
		}
	}
	for _, bad := range []string{`nope`, `[]`, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, `{"id":"x"}`} {
		if _, err := ParseMessages([]byte(bad)); err == nil {
			t.Errorf("ParseMessages(%s) did not fail", bad)
		}
	}
}

func TestWriteMessages(t *testing.T) {
	openaiSig := Signature{Origin: OriginOpenAI, ID: "rs_1", Value: "gAAAAB"}
	resp := &Response{
		ID: "resp_123", Model: "gpt-5",
		Parts: []Part{
			{Kind: PartThinking, Text: "**Plan** check", Sig: openaiSig},
			{Kind: PartThinking, Text: "anthropic's", Sig: Signature{Origin: OriginAnthropic, Value: "EqSig"}},
			{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: "REDACT"}},
			{Kind: PartText, Text: "Sure <b>"},
			{Kind: PartToolCall, CallID: "call_9", Name: "get_weather", Args: `{"city":"Paris"}`},
			{Kind: PartToolCall, CallID: "call_10", Name: "apply_patch", Custom: true, Args: "*** Begin\n\"q\""},
			{Kind: PartToolCall, CallID: "call_11", Name: "broken", Args: `{"city":`},
		},
		Stop:  StopTool,
		Usage: provider.Usage{InputTokens: 10, CacheReadTokens: 90, CacheCreationTokens: 1, OutputTokens: 7},
	}
	got := WriteMessages(resp, "claude-sonnet-4-5")
	want := `{"id":"msg_resp_123","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[
	  {"type":"thinking","thinking":"**Plan** check","signature":` + string(appendString(nil, WrapSignature(openaiSig, "**Plan** check"))) + `},
	  {"type":"thinking","thinking":"anthropic's","signature":"EqSig"},
	  {"type":"redacted_thinking","data":"REDACT"},
	  {"type":"text","text":"Sure <b>"},
	  {"type":"tool_use","id":"call_9","name":"get_weather","input":{"city":"Paris"}},
	  {"type":"tool_use","id":"call_10","name":"apply_patch","input":{"input":"*** Begin\n\"q\""}},
	  {"type":"tool_use","id":"call_11","name":"broken","input":{}}],
	 "stop_reason":"tool_use","stop_sequence":null,
	 "usage":{"input_tokens":10,"cache_creation_input_tokens":1,"cache_read_input_tokens":90,"output_tokens":7}}`
	jsonEqual(t, got, want)

	// What the client sends back restores the OpenAI state exactly.
	var msg struct{ Content json.RawMessage }
	if err := json.Unmarshal(got, &msg); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeMessages([]byte(`{"model":"m","messages":[{"role":"assistant","content":` + string(msg.Content) + `}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p := back.Messages[0].Parts[0]; p.Sig != openaiSig || p.Text != "**Plan** check" {
		t.Errorf("replayed thinking = %+v", p)
	}

	empty := WriteMessages(&Response{StopSequence: "END", Stop: StopSequence}, "m")
	var e struct {
		ID           string
		StopSequence string `json:"stop_sequence"`
		Content      []any
	}
	if err := json.Unmarshal(empty, &e); err != nil || !strings.HasPrefix(e.ID, "msg_") || len(e.ID) < 10 || e.StopSequence != "END" || e.Content == nil {
		t.Errorf("empty response: %s (%v)", empty, err)
	}
}

func TestUncustomCalls(t *testing.T) {
	resp := &Response{Parts: []Part{
		text("x"),
		{Kind: PartToolCall, Name: "apply_patch", Args: `{"input":"*** Begin Patch"}`},
		{Kind: PartToolCall, Name: "shell", Args: `{"cmd":"ls"}`},
		{Kind: PartToolCall, Name: "apply_patch", Args: `{"other":1}`},
	}}
	UncustomCalls(resp, []Tool{{Name: "apply_patch", Custom: true}, {Name: "shell"}})
	want := []Part{
		text("x"),
		{Kind: PartToolCall, Name: "apply_patch", Custom: true, Args: "*** Begin Patch"},
		{Kind: PartToolCall, Name: "shell", Args: `{"cmd":"ls"}`},
		{Kind: PartToolCall, Name: "apply_patch", Custom: true, Args: `{"other":1}`},
	}
	if !reflect.DeepEqual(resp.Parts, want) {
		t.Errorf("UncustomCalls\n got: %+v\nwant: %+v", resp.Parts, want)
	}
}

// Claude Code (2.1.3xx, its newest models and unknown ones) sends system
// messages inside messages, anywhere, and opens its system prompt with a
// per-conversation attribution line: the first become user-turn system
// reminders in place, the second is not carried.
func TestDecodeMessagesMidConversationSystem(t *testing.T) {
	body := `{"model":"gpt-5-codex","max_tokens":100,
		"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.337.abc; cc_entrypoint=sdk-cli;"},{"type":"text","text":"You are a Claude agent."}],
		"messages":[{"role":"user","content":"hi"},{"role":"system","content":"env: linux"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Read","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]},
			{"role":"system","content":[{"type":"text","text":"reminder"}]}]}`
	r, err := DecodeMessages([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.System) != 1 || r.System[0] != "You are a Claude agent." {
		t.Fatalf("system %q", r.System)
	}
	if len(r.Messages) != 5 || r.Messages[1].Role != RoleUser || r.Messages[1].Parts[0].Text != "<system-reminder>\nenv: linux\n</system-reminder>" ||
		r.Messages[4].Parts[0].Text != "<system-reminder>\nreminder\n</system-reminder>" {
		t.Fatalf("messages %+v", r.Messages)
	}
	for _, enc := range []func(*Request) ([]byte, error){EncodeMessages, EncodeResponses, EncodeChat, EncodeGemini} {
		r.Model = "m"
		if _, err := enc(r); err != nil {
			t.Fatalf("encoding: %v", err)
		}
	}
	if _, err := DecodeMessages([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"tool","content":"x"}]}`)); err == nil {
		t.Fatal("an unknown role was accepted")
	}
}
