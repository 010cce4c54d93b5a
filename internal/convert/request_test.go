package convert

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestChatToMessages(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		aliases map[string]string
		want    string // Anthropic body
	}{
		{
			name: "minimal request gets default max_tokens",
			body: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		},
		{
			name:    "model alias",
			body:    `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			aliases: map[string]string{"gpt-4o": "claude-sonnet-4-5"},
			want:    `{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		},
		{
			name:    "model without alias passes through",
			body:    `{"model":"claude-opus-4-1","messages":[{"role":"user","content":"hi"}]}`,
			aliases: map[string]string{"gpt-4o": "claude-sonnet-4-5"},
			want:    `{"model":"claude-opus-4-1","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		},
		{
			name: "system and developer kept verbatim in order, including mid-conversation",
			body: `{"model":"m","messages":[
				{"role":"system","content":"You are Bob. <rules> & more"},
				{"role":"developer","content":[{"type":"text","text":"Part A"},{"type":"text","text":"Part B","cache_control":{"type":"ephemeral"}}]},
				{"role":"user","content":"hi"},
				{"role":"system","content":"Late rule"}]}`,
			want: `{"model":"m","max_tokens":4096,
				"system":[{"type":"text","text":"You are Bob. <rules> & more"},{"type":"text","text":"Part A"},{"type":"text","text":"Part B","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Late rule"}],
				"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		},
		{
			name: "multi-part user content with images and files",
			body: `{"model":"m","messages":[{"role":"user","content":[
				{"type":"text","text":"look"},
				{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K","detail":"high"}},
				{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}},
				{"type":"image_url","image_url":"http://example.com/dog.gif"},
				{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}},
				{"type":"file","file":{"file_data":"data:text/plain;base64,aGVsbG8="}},
				{"type":"text","text":""}]}]}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[
				{"type":"text","text":"look"},
				{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}},
				{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
				{"type":"image","source":{"type":"url","url":"http://example.com/dog.gif"}},
				{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},
				{"type":"document","source":{"type":"text","media_type":"text/plain","data":"hello"}}]}]}`,
		},
		{
			name: "assistant tool_calls with null content become tool_use, tool results merge with following user turn",
			body: `{"model":"m","messages":[
				{"role":"user","content":"weather in Paris and Rome?"},
				{"role":"assistant","content":null,"tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
				{"role":"tool","tool_call_id":"call_1","content":"sunny"},
				{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"rainy"}]},
				{"role":"user","content":"thanks, and Oslo?"}]}`,
			want: `{"model":"m","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"weather in Paris and Rome?"}]},
				{"role":"assistant","content":[
					{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
					{"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"call_1","content":"sunny"},
					{"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"rainy"}]},
					{"type":"text","text":"thanks, and Oslo?"}]}]}`,
		},
		{
			name: "assistant text before tool calls, empty arguments, object arguments",
			body: `{"model":"m","messages":[
				{"role":"user","content":"go"},
				{"role":"assistant","content":"let me check","tool_calls":[
					{"id":"call_a","type":"function","function":{"name":"now","arguments":""}},
					{"id":"call_b","function":{"name":"echo","arguments":{"x":1}}}]},
				{"role":"tool","tool_call_id":"call_a","content":""},
				{"role":"tool","tool_call_id":"call_b","content":"1"}]}`,
			want: `{"model":"m","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"go"}]},
				{"role":"assistant","content":[
					{"type":"text","text":"let me check"},
					{"type":"tool_use","id":"call_a","name":"now","input":{}},
					{"type":"tool_use","id":"call_b","name":"echo","input":{"x":1}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"call_a"},
					{"type":"tool_result","tool_use_id":"call_b","content":"1"}]}]}`,
		},
		{
			name: "tool ids sanitized on both sides, repeated result replaces, results move before text",
			body: `{"model":"m","messages":[
				{"role":"user","content":"go"},
				{"role":"assistant","tool_calls":[{"id":"functions.run:0","type":"function","function":{"name":"run","arguments":"{}"}}]},
				{"role":"user","content":"(note)"},
				{"role":"tool","tool_call_id":"functions.run:0","content":"first"},
				{"role":"tool","tool_call_id":"functions.run:0","content":"second"}]}`,
			want: `{"model":"m","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"go"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"functions_run_0","name":"run","input":{}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"functions_run_0","content":"second"},
					{"type":"text","text":"(note)"}]}]}`,
		},
		{
			name: "consecutive same-role messages merge, empty messages vanish",
			body: `{"model":"m","messages":[
				{"role":"user","content":"a"},
				{"role":"user","content":[{"type":"text","text":"b"}]},
				{"role":"assistant","content":""},
				{"role":"user","content":null},
				{"role":"assistant","content":"c"},
				{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]}`,
			want: `{"model":"m","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
				{"role":"assistant","content":[{"type":"text","text":"c"},{"type":"text","text":"no"}]}]}`,
		},
		{
			name: "tools, default schema, typeless schema, tool_choice auto",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],
				"tools":[
					{"type":"function","function":{"name":"a","description":"does a","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]},"strict":true}},
					{"type":"function","function":{"name":"b"}},
					{"type":"function","function":{"name":"c","parameters":{}}}],
				"tool_choice":"auto"}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[
					{"name":"a","description":"does a","input_schema":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}},
					{"name":"b","input_schema":{"type":"object","properties":{}}},
					{"name":"c","input_schema":{"type":"object"}}],
				"tool_choice":{"type":"auto"}}`,
		},
		{
			name: "tool_choice none",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"none","parallel_tool_calls":false}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"}}`,
		},
		{
			name: "tool_choice required",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"required"}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"any"}}`,
		},
		{
			name: "tool_choice function with parallel_tool_calls false",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"a"}},"parallel_tool_calls":false}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"tool","name":"a","disable_parallel_tool_use":true}}`,
		},
		{
			name: "parallel_tool_calls false without tool_choice",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"parallel_tool_calls":false}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
		},
		{
			name: "tool_choice auto without tools is dropped",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[],"tool_choice":"auto","parallel_tool_calls":false}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "sampling, stop string, user, stream",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.2,"top_p":0.9,"stop":"END","user":"u-42","stream":true,"stream_options":{"include_usage":true},"max_tokens":100}`,
			want: `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"stop_sequences":["END"],"temperature":0.2,"top_p":0.9,"metadata":{"user_id":"u-42"},"stream":true}`,
		},
		{
			name: "stop array drops blanks, max_completion_tokens wins over max_tokens",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a"," ","b"],"max_completion_tokens":300,"max_tokens":100}`,
			want: `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"stop_sequences":["a","b"]}`,
		},
		{
			name: "temperature 0 is kept",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0,"stop":null}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":0}`,
		},
		{
			name: "harmless parameters ignored",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"seed":7,"presence_penalty":0,"frequency_penalty":0,"store":false,"metadata":{"k":"v"},"service_tier":"auto","stream_options":{"include_usage":true},"n":1,"logprobs":false,"top_logprobs":null,"logit_bias":{},"modalities":["text"],"audio":null,"functions":null,"prompt_cache_key":"abc"}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "response_format json_object adds an instruction after the caller's system",
			body: `{"model":"m","messages":[{"role":"system","content":"sys"},{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
			want: `{"model":"m","max_tokens":4096,"system":[{"type":"text","text":"sys"},{"type":"text","text":"` + jsonObjectInstruction + `"}],"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "response_format text is a no-op",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "reasoning_effort low fits in the default max_tokens",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low"}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
		},
		{
			name: "reasoning_effort medium adds the budget on top of a max_tokens that cannot hold it",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium"}`,
			want: `{"model":"m","max_tokens":8192,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":4096}}`,
		},
		{
			name: "reasoning_effort high with a small max_completion_tokens",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":500,"temperature":1,"top_p":0.99}`,
			want: `{"model":"m","max_tokens":16884,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":1,"top_p":0.99,"thinking":{"type":"enabled","budget_tokens":16384}}`,
		},
		{
			name: "reasoning_effort high with a large max_tokens keeps it",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_tokens":32000,"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"auto"}`,
			want: `{"model":"m","max_tokens":32000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"auto"},"thinking":{"type":"enabled","budget_tokens":16384}}`,
		},
		{
			name: "reasoning_effort is left off when the conversation ends in tool results",
			body: `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}],"reasoning_effort":"high","tools":[{"type":"function","function":{"name":"f"}}]}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},{"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c","content":"r"}]}],"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}]}`,
		},
		{
			name: "reasoning_effort is left off for an assistant prefill",
			body: `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"{"}],"reasoning_effort":"low"}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},{"role":"assistant","content":[{"type":"text","text":"{"}]}]}`,
		},
		{
			name: "reasoning_effort applies again once the user speaks after a tool loop",
			body: `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"},{"role":"assistant","content":"done"},{"role":"user","content":"more"}],"reasoning_effort":"low"}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},{"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c","content":"r"}]},{"role":"assistant","content":[{"type":"text","text":"done"}]},{"role":"user","content":[{"type":"text","text":"more"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
		},
		{
			name: "reasoning_effort none leaves thinking off",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none","temperature":0.3}`,
			want: `{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":0.3}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChatToMessages([]byte(tt.body), tt.aliases)
			if err != nil {
				t.Fatalf("ChatToMessages: %v", err)
			}
			jsonEqual(t, got.Body, tt.want)
		})
	}
}

func TestChatToMessagesMetadata(t *testing.T) {
	tests := []struct {
		name string
		body string
		want ChatRequest
	}{
		{
			name: "stream with usage",
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}`,
			want: ChatRequest{Model: "claude-x", RequestedModel: "gpt-4o", Stream: true, IncludeUsage: true},
		},
		{
			name: "include_usage without stream is meaningless",
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`,
			want: ChatRequest{Model: "claude-x", RequestedModel: "gpt-4o"},
		},
		{
			name: "stream without usage",
			body: `{"model":"other","messages":[{"role":"user","content":"x"}],"stream":true}`,
			want: ChatRequest{Model: "other", RequestedModel: "other", Stream: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChatToMessages([]byte(tt.body), map[string]string{"gpt-4o": "claude-x"})
			if err != nil {
				t.Fatalf("ChatToMessages: %v", err)
			}
			got.Body = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestChatToMessagesJSONSchema(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}`
	got, err := ChatToMessages([]byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := jsonSchemaInstruction + "\n\nSchema name: person\n\n" + `{"type":"object","properties":{"name":{"type":"string"}}}`
	jsonEqual(t, got.Body, `{"model":"m","max_tokens":4096,"system":[{"type":"text","text":`+string(appendString(nil, want))+`}],"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`)
}

func TestChatToMessagesNoHTMLEscaping(t *testing.T) {
	got, err := ChatToMessages([]byte(`{"model":"m","messages":[{"role":"user","content":"a<b>&c"}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got.Body), `"a<b>&c"`) {
		t.Errorf("text was rewritten: %s", got.Body)
	}
}

func TestChatToMessagesErrors(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	const tools = `"tools":[{"type":"function","function":{"name":"a"}}]`
	tests := []struct {
		name      string
		body      string
		wantParam string
	}{
		{"invalid JSON", `{"model":`, ""},
		{"not an object", `[1,2]`, ""},
		{"missing model", `{` + msgs + `}`, "model"},
		{"model not a string", `{"model":5,` + msgs + `}`, "model"},
		{"missing messages", `{"model":"m"}`, "messages"},
		{"messages not an array", `{"model":"m","messages":{}}`, "messages"},
		{"empty messages", `{"model":"m","messages":[]}`, "messages"},
		{"only system", `{"model":"m","messages":[{"role":"system","content":"s"}]}`, "messages"},
		{"only empty user", `{"model":"m","messages":[{"role":"user","content":""}]}`, "messages"},
		{"unknown role", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"robot","content":"x"}]}`, "messages[1].role"},
		{"legacy function role", `{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, "messages[0].role"},
		{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
		{"message not an object", `{"model":"m","messages":["hi"]}`, "messages[0]"},
		{"content number", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"x"}]}`, "messages[0].content[0].type"},
		{"image in assistant", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[1].content[0].type"},
		{"audio input", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}`, "messages[0].content[0].type"},
		{"unknown part", `{"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}`, "messages[0].content[0].type"},
		{"text part not a string", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`, "messages[0].content[0].text"},
		{"image ftp url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image data url not base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image without url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "messages[0].content[0].image_url.url"},
		{"file id", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0].file.file_id"},
		{"bad text file base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/plain;base64,!!!"}}]}]}`, "messages[0].content[0].file.file_data"},
		{"invalid tool arguments", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"array tool arguments", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"tool call without id", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].id"},
		{"tool call without name", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].function.name"},
		{"custom tool call", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"f","input":"x"}}]}]}`, "messages[1].tool_calls[0].type"},
		{"assistant function_call", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`, "messages[1].function_call"},
		{"tool without id", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","content":"r"}]}`, "messages[1].tool_call_id"},
		{"n > 1", `{"model":"m",` + msgs + `,"n":2}`, "n"},
		{"logprobs", `{"model":"m",` + msgs + `,"logprobs":true}`, "logprobs"},
		{"top_logprobs", `{"model":"m",` + msgs + `,"top_logprobs":3}`, "top_logprobs"},
		{"audio modality", `{"model":"m",` + msgs + `,"modalities":["text","audio"]}`, "modalities"},
		{"audio", `{"model":"m",` + msgs + `,"audio":{"voice":"alloy","format":"mp3"}}`, "audio"},
		{"legacy functions", `{"model":"m",` + msgs + `,"functions":[{"name":"f"}]}`, "functions"},
		{"legacy function_call", `{"model":"m",` + msgs + `,"function_call":"auto"}`, "function_call"},
		{"logit_bias", `{"model":"m",` + msgs + `,"logit_bias":{"50256":-100}}`, "logit_bias"},
		{"logit_bias not an object", `{"model":"m",` + msgs + `,"logit_bias":3}`, "logit_bias"},
		{"presence_penalty", `{"model":"m",` + msgs + `,"presence_penalty":0.5}`, "presence_penalty"},
		{"frequency_penalty", `{"model":"m",` + msgs + `,"frequency_penalty":-1}`, "frequency_penalty"},
		{"web search", `{"model":"m",` + msgs + `,"web_search_options":{}}`, "web_search_options"},
		{"max_tokens zero", `{"model":"m",` + msgs + `,"max_tokens":0}`, "max_tokens"},
		{"max_tokens fraction", `{"model":"m",` + msgs + `,"max_tokens":10.5}`, "max_tokens"},
		{"max_completion_tokens huge", `{"model":"m",` + msgs + `,"max_completion_tokens":1e30}`, "max_completion_tokens"},
		{"temperature above Claude's range", `{"model":"m",` + msgs + `,"temperature":1.5}`, "temperature"},
		{"top_p above 1", `{"model":"m",` + msgs + `,"top_p":1.01}`, "top_p"},
		{"temperature string", `{"model":"m",` + msgs + `,"temperature":"hot"}`, "temperature"},
		{"stop number", `{"model":"m",` + msgs + `,"stop":5}`, "stop"},
		{"stop array of numbers", `{"model":"m",` + msgs + `,"stop":[5]}`, "stop"},
		{"stream not bool", `{"model":"m",` + msgs + `,"stream":"yes"}`, "stream"},
		{"user not string", `{"model":"m",` + msgs + `,"user":1}`, "user"},
		{"tools not array", `{"model":"m",` + msgs + `,"tools":{}}`, "tools"},
		{"non-function tool", `{"model":"m",` + msgs + `,"tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{"tool without name", `{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{}}]}`, "tools[0].function.name"},
		{"tool parameters not object", `{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{"name":"a","parameters":[]}}]}`, "tools[0].function.parameters"},
		{"tool_choice unknown", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":"sometimes"}`, "tool_choice"},
		{"tool_choice object without name", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":{"type":"function","function":{}}}`, "tool_choice.function.name"},
		{"tool_choice allowed_tools", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":{"type":"allowed_tools"}}`, "tool_choice.type"},
		{"tool_choice required without tools", `{"model":"m",` + msgs + `,"tool_choice":"required"}`, "tool_choice"},
		{"response_format unknown", `{"model":"m",` + msgs + `,"response_format":{"type":"xml"}}`, "response_format.type"},
		{"json_schema without schema object", `{"model":"m",` + msgs + `,"response_format":{"type":"json_schema"}}`, "response_format.json_schema"},
		{"reasoning_effort unknown", `{"model":"m",` + msgs + `,"reasoning_effort":"max"}`, "reasoning_effort"},
		{"reasoning with temperature", `{"model":"m",` + msgs + `,"reasoning_effort":"low","temperature":0.5}`, "temperature"},
		{"reasoning with low top_p", `{"model":"m",` + msgs + `,"reasoning_effort":"low","top_p":0.5}`, "top_p"},
		{"reasoning with top_k", `{"model":"m",` + msgs + `,"reasoning_effort":"low","top_k":5}`, "top_k"},
		{"reasoning with forced tool", `{"model":"m",` + msgs + `,` + tools + `,"reasoning_effort":"low","tool_choice":"required"}`, "tool_choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChatToMessages([]byte(tt.body), nil)
			if err == nil {
				t.Fatalf("want error, got body %s", got.Body)
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is %T, want *RequestError", err, err)
			}
			if re.Param != tt.wantParam {
				t.Errorf("param = %q, want %q (message %q)", re.Param, tt.wantParam, re.Message)
			}
			if re.Message == "" || re.Error() != re.Message {
				t.Errorf("bad message %q / %q", re.Message, re.Error())
			}
			if c := re.Message[0]; c >= 'A' && c <= 'Z' {
				t.Errorf("message %q is not lowercase", re.Message)
			}
		})
	}
}

func TestToolResultsFirst(t *testing.T) {
	in := []block{{Type: "text", Text: "1"}, {Type: "tool_result", ToolUseID: "a"}, {Type: "text", Text: "2"}, {Type: "tool_result", ToolUseID: "b"}}
	toolResultsFirst(in)
	var got []string
	for _, b := range in {
		got = append(got, b.Type+":"+b.Text+b.ToolUseID)
	}
	want := "tool_result:a tool_result:b text:1 text:2"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
