package fakeupstream

import (
	"fmt"
	"strconv"
	"time"
)

// ToolUseJSON is a non-streaming Messages answer that calls one tool: some
// text, then a tool_use block, stop_reason tool_use. input is a JSON object.
func ToolUseJSON(model, text, id, name, input string) string {
	return fmt.Sprintf(`{"id":"msg_fake02","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q},{"type":"tool_use","id":%q,"name":%q,"input":%s}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":15}}`, model, text, id, name, input)
}

// ToolUseStream is the Messages SSE stream of ToolUseJSON, with the tool
// input sent as input_json_delta fragments of at most frag bytes.
func ToolUseStream(model, text, id, name, input string, frag int, gap time.Duration) []Event {
	ev := []Event{
		{Name: "message_start", Data: fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_fake02","type":"message","role":"assistant","content":[],"model":%q,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`, model)},
		{Name: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`, Delay: gap},
		{Name: "content_block_delta", Data: fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, text)},
		{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":0}`},
		{Name: "content_block_start", Data: fmt.Sprintf(`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":%q,"name":%q,"input":{}}}`, id, name), Delay: gap},
		{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`},
	}
	if frag <= 0 {
		frag = len(input)
	}
	for i := 0; i < len(input); i += frag {
		part := input[i:min(i+frag, len(input))]
		ev = append(ev, Event{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":` + strconv.Quote(part) + `}}`, Delay: gap})
	}
	return append(ev,
		Event{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":1}`},
		Event{Name: "message_delta", Data: `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":15}}`},
		Event{Name: "message_stop", Data: `{"type":"message_stop"}`},
	)
}

// AnthropicError is an error body in Anthropic's shape.
func AnthropicError(typ, message string) string {
	return fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q},"request_id":"req_fake"}`, typ, message)
}
