package convert

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func f64(f float64) *float64 { return &f }
func i64(n int64) *int64     { return &n }

func TestDecodeChat(t *testing.T) {
	user := func(parts ...Part) Message { return Message{Role: RoleUser, Parts: parts} }
	assistant := func(parts ...Part) Message { return Message{Role: RoleAssistant, Parts: parts} }
	text := func(s string) Part { return Part{Kind: PartText, Text: s} }
	hi := []Message{user(text("hi"))}
	tests := []struct {
		name string
		body string
		want Request
	}{
		{
			name: "minimal: no defaults filled in",
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			want: Request{Model: "gpt-4o", Messages: hi},
		},
		{
			name: "system and developer hoisted in order, cache_control on a system part marks the system prompt",
			body: `{"model":"m","messages":[{"role":"developer","content":[{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"user","content":"hi"},{"role":"system","content":"late"},{"role":"system","content":""}]}`,
			want: Request{Model: "m", System: []string{"A", "B", "late"}, SystemCache: true, Messages: hi},
		},
		{
			name: "images, files, cache marks on user parts",
			body: `{"model":"m","messages":[{"role":"user","content":[
				{"type":"image_url","image_url":{"url":"data:Image/PNG;base64,iVBO","detail":"low"},"cache_control":{"type":"ephemeral"}},
				{"type":"image_url","image_url":"https://x/y.png"},
				{"type":"file","file":{"file_data":"JVBERi0=","filename":"a.pdf"}},
				{"type":"file","file":{"file_data":"data:text/plain;base64,aGk="}}]}]}`,
			want: Request{Model: "m", Messages: []Message{user(
				Part{Kind: PartImage, MediaType: "image/png", Data: "iVBO", Cache: true},
				Part{Kind: PartImage, URL: "https://x/y.png"},
				Part{Kind: PartFile, MediaType: "application/pdf", Data: "JVBERi0="},
				Part{Kind: PartFile, MediaType: "text/plain", Data: "aGk="})}},
		},
		{
			name: "tool round trip: raw ids kept, arguments, tool results first and merged, reasoning_content dropped",
			body: `{"model":"m","messages":[
				{"role":"user","content":"go"},
				{"role":"assistant","content":"ok","reasoning_content":"I should call f","tool_calls":[
					{"id":"functions.f:0","type":"function","function":{"name":"f","arguments":" {\"a\":1} "}},
					{"id":"c2","function":{"name":"g","arguments":{"b":2}}},
					{"id":"c3","type":"function","function":{"name":"h"}}]},
				{"role":"user","content":"(aside)"},
				{"role":"tool","tool_call_id":"functions.f:0","content":"one"},
				{"role":"tool","tool_call_id":"c2","content":[{"type":"text","text":"two"},{"type":"image_url","image_url":{"url":"https://x/p.png"}}]},
				{"role":"tool","tool_call_id":"c3","content":""},
				{"role":"tool","tool_call_id":"c3","content":"three, again"}]}`,
			want: Request{Model: "m", Messages: []Message{
				user(text("go")),
				assistant(text("ok"),
					Part{Kind: PartToolCall, CallID: "functions.f:0", Name: "f", Args: `{"a":1}`},
					Part{Kind: PartToolCall, CallID: "c2", Name: "g", Args: `{"b":2}`},
					Part{Kind: PartToolCall, CallID: "c3", Name: "h", Args: `{}`}),
				user(
					Part{Kind: PartToolResult, CallID: "functions.f:0", Result: []Part{text("one")}},
					Part{Kind: PartToolResult, CallID: "c2", Result: []Part{text("two"), {Kind: PartImage, URL: "https://x/p.png"}}},
					Part{Kind: PartToolResult, CallID: "c3", Result: []Part{text("three, again")}},
					text("(aside)"))}},
		},
		{
			name: "assistant refusal part is text, empty turns vanish, same roles merge",
			body: `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":null},{"role":"user","content":[{"type":"text","text":"b"}]},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]}`,
			want: Request{Model: "m", Messages: []Message{user(text("a"), text("b")), assistant(text("no"))}},
		},
		{
			name: "tools and tool_choice function with parallel_tool_calls false",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],
				"tools":[{"type":"function","function":{"name":"a","description":"does a","parameters":{"type":"object","properties":{"q":{"type":"string"}}},"strict":true}},
					{"type":"function","function":{"name":"b"}},{"type":"function","function":{"name":"c","parameters":{}}}],
				"tool_choice":{"type":"function","function":{"name":"a"}},"parallel_tool_calls":false}`,
			want: Request{Model: "m", Messages: hi,
				Tools: []Tool{
					{Name: "a", Description: "does a", Schema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)},
					{Name: "b", Schema: json.RawMessage(`{"type":"object","properties":{}}`)},
					{Name: "c", Schema: json.RawMessage(`{"type":"object"}`)}},
				ToolChoice: ToolChoice{Mode: "tool", Name: "a", NoParallel: true}},
		},
		{
			name: "tool_choice none and parallel_tool_calls without tools mean nothing",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"none","parallel_tool_calls":false}`,
			want: Request{Model: "m", Messages: hi},
		},
		{
			name: "sampling in OpenAI's ranges, stop, limits, user, cache key, stream with usage",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":1.5,"top_p":0.5,"top_k":40,"stop":["a"," ","b"],
				"max_completion_tokens":300,"max_tokens":100,"user":"u1","safety_identifier":"s1","prompt_cache_key":"k","stream":true,"stream_options":{"include_usage":true},
				"seed":1,"n":1,"presence_penalty":0,"logit_bias":{},"metadata":{"a":"b"},"store":true,"verbosity":"low"}`,
			want: Request{Model: "m", Messages: hi, Temperature: f64(1.5), TopP: f64(0.5), TopK: i64(40), Stop: []string{"a", "b"},
				MaxTokens: 300, User: "u1", CacheKey: "k", Stream: true, IncludeUsage: true},
		},
		{
			name: "safety_identifier when no user; include_usage without stream is nothing",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"safety_identifier":"s1","stream_options":{"include_usage":true},"stop":"END","max_tokens":5}`,
			want: Request{Model: "m", Messages: hi, User: "s1", Stop: []string{"END"}, MaxTokens: 5},
		},
		{
			name: "reasoning_effort high",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high","temperature":0.2}`,
			want: Request{Model: "m", Messages: hi, Thinking: Thinking{Enabled: true, Effort: "high"}, Temperature: f64(0.2)},
		},
		{
			name: "reasoning_effort none",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"none"}`,
			want: Request{Model: "m", Messages: hi},
		},
		{
			name: "response_format json_schema",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":{"type":"object"}}}}`,
			want: Request{Model: "m", Messages: hi, Format: &Format{JSON: true, Name: "p", Strict: true, Schema: json.RawMessage(`{"type":"object"}`)}},
		},
		{
			name: "response_format json_object; text is nothing",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}`,
			want: Request{Model: "m", Messages: hi, Format: &Format{JSON: true}},
		},
		{
			name: "nulls are not given",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":null,"tools":null,"tool_choice":null,"response_format":null,"stop":null,"reasoning_effort":null,"audio":null}`,
			want: Request{Model: "m", Messages: hi},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeChat([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeChat: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tt.want)
				t.Errorf("got  %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestDecodeChatErrors(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	tests := []struct{ name, body, param string }{
		{"temperature above OpenAI's range", `{"model":"m",` + msgs + `,"temperature":2.5}`, "temperature"},
		{"negative top_p", `{"model":"m",` + msgs + `,"top_p":-0.1}`, "top_p"},
		{"empty model", `{"model":"",` + msgs + `}`, "model"},
		{"prompt_cache_key not a string", `{"model":"m",` + msgs + `,"prompt_cache_key":1}`, "prompt_cache_key"},
		{"safety_identifier not a string", `{"model":"m",` + msgs + `,"safety_identifier":1}`, "safety_identifier"},
		{"include_usage not a bool", `{"model":"m",` + msgs + `,"stream_options":{"include_usage":"yes"}}`, "stream_options.include_usage"},
		{"stream_options not an object", `{"model":"m",` + msgs + `,"stream_options":true}`, "stream_options"},
		{"json_schema schema not an object", `{"model":"m",` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"schema":[1]}}}`, "response_format.json_schema.schema"},
		{"response_format not an object", `{"model":"m",` + msgs + `,"response_format":"json"}`, "response_format"},
		{"tool_choice a number", `{"model":"m",` + msgs + `,"tool_choice":1}`, "tool_choice"},
		{"tool description not a string", `{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{"name":"a","description":1}}]}`, "tools[0].function.description"},
		{"file part in a tool result", `{"model":"m","messages":[{"role":"tool","tool_call_id":"c","content":[{"type":"file","file":{"file_data":"AA=="}}]}]}`, "messages[0].content[0].type"},
		{"refusal in a user message", `{"model":"m","messages":[{"role":"user","content":[{"type":"refusal","refusal":"x"}]}]}`, "messages[0].content[0].type"},
		{"tool_calls not an array", `{"model":"m","messages":[{"role":"assistant","tool_calls":{}}]}`, "messages[0].tool_calls"},
		{"n zero", `{"model":"m",` + msgs + `,"n":0}`, "n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeChat([]byte(tt.body))
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("got %+v, %v; want a *RequestError", got, err)
			}
			if re.Param != tt.param || re.Message == "" {
				t.Errorf("param %q message %q, want param %q", re.Param, re.Message, tt.param)
			}
		})
	}
}
