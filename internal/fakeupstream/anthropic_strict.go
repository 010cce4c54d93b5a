package fakeupstream

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// This file is the Anthropic fake's strict mode (Anthropic.Strict): it
// refuses a Messages request the way the real API does, with a 400
// invalid_request_error in Anthropic's shape, for the mistakes a protocol
// converter can make: unknown top-level fields, thinking state the fake did
// not issue (a foreign or altered signature), a final assistant tool turn
// without its thinking block while thinking is on, and the neighbouring
// shape rules (empty text, tool ids, tool names, unanswered tool calls and
// unasked tool results, the thinking
// budget and sampling constraints). Its thinking answers
// (ThinkingToolUseJSON, ThinkingToolUseStream) carry signatures it
// recognises, so multi-turn tests can replay them.

// messagesFields are the top-level fields the Messages API accepts.
var messagesFields = map[string]bool{
	"model": true, "max_tokens": true, "messages": true, "system": true, "metadata": true,
	"stop_sequences": true, "stream": true, "temperature": true, "top_p": true, "top_k": true,
	"tools": true, "tool_choice": true, "thinking": true, "service_tier": true, "container": true,
	"mcp_servers": true, "context_management": true, "output_config": true, "output_format": true,
}

// fakeSigPrefix and fakeRedactedPrefix start the thinking state the fake
// issues.
const (
	fakeSigPrefix      = "fakesig1"
	fakeRedactedPrefix = "fakeredacted1"
)

// FakeSignature is the signature the strict fake issues for a thinking
// block with this text, and the only one it accepts back with it: like the
// real API's, it is bound to the exact text.
func FakeSignature(thinking string) string {
	sum := sha256.Sum256([]byte("ccrelay fake anthropic thinking\x00" + thinking))
	return fakeSigPrefix + base64.StdEncoding.EncodeToString(sum[:])
}

// FakeRedactedData is the data of a redacted_thinking block the strict
// fake issues and accepts back.
func FakeRedactedData(n int) string {
	return fakeRedactedPrefix + base64.StdEncoding.EncodeToString([]byte("redacted "+strconv.Itoa(n)))
}

// CheckStrictMessages returns the error the strict fake (like the real API)
// answers a Messages request body with, or nil. Tests of converters call it
// directly to check a body without a server.
func CheckStrictMessages(body []byte) error {
	if !gjson.ValidBytes(body) {
		return strictError("", "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return strictError("", "request body must be a JSON object")
	}
	var err error
	root.ForEach(func(k, _ gjson.Result) bool {
		if !messagesFields[k.Str] {
			err = strictError(k.Str, "Extra inputs are not permitted")
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if m := root.Get("model"); m.Type != gjson.String || m.Str == "" {
		return strictError("model", "Field required")
	}
	if n := root.Get("max_tokens"); n.Type != gjson.Number || n.Int() < 1 {
		return strictError("max_tokens", "Field required")
	}
	if err := checkStrictToolNames(root.Get("tools")); err != nil {
		return err
	}
	msgs := root.Get("messages").Array()
	if len(msgs) == 0 {
		return strictError("messages", "at least one message is required")
	}
	for i, m := range msgs {
		if err := checkStrictMessage(msgs, i, m); err != nil {
			return err
		}
	}
	return checkStrictThinking(root, msgs)
}

// StrictError is a refusal of the strict fake: Param is the offending
// field's path ("messages.1.content.0"), Message the API's text.
type StrictError struct{ Param, Message string }

// Error returns the message as the API writes it, prefixed by the path.
func (e *StrictError) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return e.Param + ": " + e.Message
}

func strictError(param, format string, args ...any) error {
	return &StrictError{Param: param, Message: fmt.Sprintf(format, args...)}
}

func checkStrictMessage(msgs []gjson.Result, i int, m gjson.Result) error {
	param := "messages." + strconv.Itoa(i)
	role := m.Get("role").Str
	if role != "user" && role != "assistant" {
		return strictError(param+".role", "Input should be 'user' or 'assistant'")
	}
	content := m.Get("content")
	if content.Type == gjson.String {
		if content.Str == "" && (role == "user" || i != len(msgs)-1) {
			return strictError(param, "all messages must have non-empty content except for the optional final assistant message")
		}
		return nil
	}
	blocks := content.Array()
	if len(blocks) == 0 && (role == "user" || i != len(msgs)-1) {
		return strictError(param, "all messages must have non-empty content except for the optional final assistant message")
	}
	for j, b := range blocks {
		if err := checkStrictBlock(param+".content."+strconv.Itoa(j), role, b); err != nil {
			return err
		}
	}
	if role == "assistant" {
		return checkToolResults(msgs, i, blocks)
	}
	return checkToolUses(msgs, i, blocks)
}

// checkToolUses enforces that every tool_result of user turn i answers a
// tool_use of the turn before.
func checkToolUses(msgs []gjson.Result, i int, blocks []gjson.Result) error {
	called := map[string]bool{}
	if i > 0 {
		for _, b := range msgs[i-1].Get("content").Array() {
			if b.Get("type").Str == "tool_use" {
				called[b.Get("id").Str] = true
			}
		}
	}
	for _, b := range blocks {
		if id := b.Get("tool_use_id").Str; b.Get("type").Str == "tool_result" && !called[id] {
			return strictError("messages."+strconv.Itoa(i)+".content.0", "unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", id)
		}
	}
	return nil
}

func checkStrictBlock(param, role string, b gjson.Result) error {
	switch typ := b.Get("type").Str; typ {
	case "text":
		if b.Get("text").Str == "" {
			return strictError(param+".text", "text content blocks must be non-empty")
		}
	case "thinking":
		if role != "assistant" {
			return strictError(param+".type", "thinking blocks are only allowed in assistant messages")
		}
		if sig := b.Get("signature"); sig.Type != gjson.String || sig.Str != FakeSignature(b.Get("thinking").Str) {
			return strictError(param, "Invalid `signature` in `thinking` block")
		}
	case "redacted_thinking":
		if !strings.HasPrefix(b.Get("data").Str, fakeRedactedPrefix) {
			return strictError(param, "Invalid `data` in `redacted_thinking` block")
		}
	case "tool_use", "tool_result":
		id := b.Get("id")
		if typ == "tool_result" {
			id = b.Get("tool_use_id")
		}
		if !validToolID(id.Str) {
			return strictError(param+".id", "String should match pattern '^[a-zA-Z0-9_-]+$'")
		}
		if typ == "tool_use" && !b.Get("input").IsObject() {
			return strictError(param+".input", "Input should be a valid dictionary")
		}
	case "image", "document", "search_result", "server_tool_use", "web_search_tool_result":
	default:
		return strictError(param+".type", "Input tag '%s' found using 'type' does not match any of the expected tags", typ)
	}
	return nil
}

// anthropicNameMax is the longest tool name the Messages API takes.
const anthropicNameMax = 128

// checkStrictToolNames applies the rule on a custom tool's name,
// ^[a-zA-Z0-9_-]{1,128}$, with the API's wording (its length check comes
// first). Server tools (a "type" other than "custom") have fixed names.
func checkStrictToolNames(tools gjson.Result) error {
	var err error
	tools.ForEach(func(i, t gjson.Result) bool {
		if typ := t.Get("type").Str; typ != "" && typ != "custom" {
			return true
		}
		param := "tools." + i.String() + ".custom.name"
		switch name := t.Get("name").Str; {
		case len(name) > anthropicNameMax:
			err = strictError(param, "String should have at most %d characters", anthropicNameMax)
		case !validToolID(name):
			err = strictError(param, "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
		}
		return err == nil
	})
	return err
}

func validToolID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkToolResults enforces that every tool_use of assistant turn i is
// answered by a tool_result in the next turn, when there is one.
func checkToolResults(msgs []gjson.Result, i int, blocks []gjson.Result) error {
	if i+1 >= len(msgs) {
		return nil
	}
	answered := map[string]bool{}
	for _, b := range msgs[i+1].Get("content").Array() {
		if b.Get("type").Str == "tool_result" {
			answered[b.Get("tool_use_id").Str] = true
		}
	}
	for _, b := range blocks {
		if b.Get("type").Str == "tool_use" && !answered[b.Get("id").Str] {
			return strictError("messages."+strconv.Itoa(i+1), "`tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", b.Get("id").Str)
		}
	}
	return nil
}

// checkStrictThinking applies the extended-thinking rules.
func checkStrictThinking(root gjson.Result, msgs []gjson.Result) error {
	th := root.Get("thinking")
	typ := th.Get("type").Str
	if !th.Exists() || typ == "disabled" {
		return nil
	}
	if typ != "enabled" && typ != "adaptive" {
		return strictError("thinking.type", "Input tag '%s' found using 'type' does not match any of the expected tags", typ)
	}
	if typ == "enabled" {
		budget := th.Get("budget_tokens").Int()
		if budget < 1024 {
			return strictError("thinking.enabled.budget_tokens", "Input should be greater than or equal to 1024")
		}
		if budget >= root.Get("max_tokens").Int() {
			return strictError("max_tokens", "`max_tokens` must be greater than `thinking.budget_tokens`")
		}
	}
	if t := root.Get("temperature"); t.Exists() && t.Float() != 1 {
		return strictError("temperature", "`temperature` may only be set to 1 when thinking is enabled")
	}
	if root.Get("top_k").Exists() {
		return strictError("top_k", "`top_k` cannot be set when thinking is enabled")
	}
	if tc := root.Get("tool_choice.type").Str; tc == "any" || tc == "tool" {
		return strictError("tool_choice", "Thinking may not be enabled when tool_choice forces tool use.")
	}
	return checkFinalThinking(msgs)
}

// checkFinalThinking is the rule a converter most often breaks: with
// thinking on, the final assistant turn must start with a thinking block
// when it is a prefill or made the tool calls the conversation is on.
func checkFinalThinking(msgs []gjson.Result) error {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Get("role").Str != "assistant" {
			continue
		}
		blocks := msgs[i].Get("content").Array()
		needs := i == len(msgs)-1
		for _, b := range blocks {
			needs = needs || b.Get("type").Str == "tool_use"
		}
		if !needs || len(blocks) == 0 {
			return nil
		}
		if first := blocks[0].Get("type").Str; first != "thinking" && first != "redacted_thinking" {
			return strictError("messages."+strconv.Itoa(i)+".content.0.type",
				"Expected `thinking` or `redacted_thinking`, but found `%s`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`.", first)
		}
		return nil
	}
	return nil
}

// strictReply is the strict fake's refusal of a request, or nil.
func strictReply(rec *Recorded) *Reply {
	if isCountTokens(rec) {
		return anthropicCountRefusal(rec)
	}
	if !strings.HasSuffix(rec.Path, "/messages") {
		return nil // models
	}
	err := CheckStrictMessages(rec.Body)
	if err == nil {
		return nil
	}
	return &Reply{Status: 400, Body: AnthropicError("invalid_request_error", err.Error())}
}

// ThinkingToolUseJSON is a non-streaming Messages answer that thinks (a
// thinking block signed with FakeSignature, then a redacted_thinking
// block), says text and calls one tool. input is a JSON object.
func ThinkingToolUseJSON(model, thinking, text, id, name, input string) string {
	return fmt.Sprintf(`{"id":"msg_fake03","type":"message","role":"assistant","model":%q,"content":[{"type":"thinking","thinking":%q,"signature":%q},{"type":"redacted_thinking","data":%q},{"type":"text","text":%q},{"type":"tool_use","id":%q,"name":%q,"input":%s}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":25}}`,
		model, thinking, FakeSignature(thinking), FakeRedactedData(1), text, id, name, input)
}

// ThinkingToolUseStream is the Messages SSE stream of ThinkingToolUseJSON:
// the thinking in two deltas, its signature_delta just before the block
// stops, the tool input in input_json_delta fragments of at most frag bytes.
func ThinkingToolUseStream(model, thinking, text, id, name, input string, frag int, gap time.Duration) []Event {
	half := len(thinking) / 2
	ev := []Event{
		{Name: "message_start", Data: fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_fake03","type":"message","role":"assistant","content":[],"model":%q,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`, model)},
		{Name: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`, Delay: gap},
		{Name: "content_block_delta", Data: fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":%q}}`, thinking[:half])},
		{Name: "content_block_delta", Data: fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":%q}}`, thinking[half:]), Delay: gap},
		{Name: "content_block_delta", Data: fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":%q}}`, FakeSignature(thinking))},
		{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":0}`},
		{Name: "content_block_start", Data: fmt.Sprintf(`{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":%q}}`, FakeRedactedData(1))},
		{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":1}`},
	}
	// The text and the tool call are ToolUseStream's, two blocks later.
	for _, e := range ToolUseStream(model, text, id, name, input, frag, gap)[1:] {
		e.Data = shiftIndex(e.Data, 2)
		if e.Name == "message_delta" {
			e.Data = `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":25}}`
		}
		ev = append(ev, e)
	}
	return ev
}

// shiftIndex moves a content-block event's index by n.
func shiftIndex(data string, n int64) string {
	idx := gjson.Get(data, "index")
	if !idx.Exists() {
		return data
	}
	return strings.Replace(data, `"index":`+idx.Raw, `"index":`+strconv.FormatInt(idx.Int()+n, 10), 1)
}
