package convert

import (
	"encoding/base64"
	"strings"

	"github.com/tidwall/gjson"
)

// This file reads a client's POST /v1/responses body (Codex CLI, the OpenAI
// SDKs) into the neutral Request. It is only called when the account behind
// the route does not speak Responses (same dialect passes through), so a
// parameter only OpenAI can honour is a *RequestError here.
//
// Rules worth knowing (docs/matrix.md):
//   - instructions and every system/developer input message become System,
//     in order; Codex sends its base prompt as a developer message.
//   - Consecutive items of one role join one Message: reasoning,
//     function_call and custom_tool_call items join the assistant turn,
//     function_call_output and custom_tool_call_output the user turn.
//   - Items with no neutral form are dropped: local_shell_call and its
//     output, web_search_call, file_search_call, computer_call, mcp_*,
//     image_generation_call, ghost_snapshot,
//     configuration_update, OpenAI's own compaction items and unknown types.
//     Codex's additional_tools item contributes its tools; a compaction item
//     whose encrypted_content the relay wrapped (WrapSignature of the
//     summary text) becomes that text in a user turn.
//   - Tools: function and custom tools are kept; a namespace's function and
//     custom tools are flattened as "<namespace>___<name>" (a name every
//     provider accepts), and a call's namespace joins its name the same way,
//     so the writers can split it back into the namespace Codex needs to
//     route the call ("unsupported call" without it); hosted tools
//     (web_search, local_shell, file_search, image_generation, mcp,
//     code_interpreter, computer_use...) are dropped: no other provider can
//     run them. function.strict is not kept.
//   - A reasoning item's encrypted_content that the relay wrapped restores
//     the foreign signature and its exact text; any other is OpenAI's own
//     state (Sig.Origin openai, Sig.ID the item id).
//   - reasoning.effort "none" (or no effort) leaves thinking off.
//   - Ignored, with nothing to carry them: text.verbosity, max_tool_calls,
//     truncation, service_tier, top_logprobs, metadata, client_metadata,
//     stream_options; item_reference (like background, conversation and
//     prompt) needs OpenAI's stored state and is refused.

// Parameters that need OpenAI's server-side state or features no other
// provider has: refused rather than silently ignored.
var responsesRefused = [...]string{"background", "conversation", "prompt"}

// redactedSigID marks, in a wrapped signature's ID, an Anthropic
// redacted_thinking block handed to a Responses client (WrapSignature keeps
// no flag of its own); DecodeResponses turns it back into Part.Redacted.
const redactedSigID = "redacted_thinking"

// responsesMembers are the top-level members DecodeResponses reads.
var responsesMembers = [...]string{
	"model", "stream", "background", "conversation", "prompt", "instructions", "input", "tools",
	"parallel_tool_calls", "tool_choice", "max_output_tokens", "temperature", "top_p", "reasoning",
	"text", "include", "store", "prompt_cache_key", "safety_identifier", "user", "previous_response_id",
}

// responsesTop holds a request's responsesMembers, by index.
type responsesTop [len(responsesMembers)]gjson.Result

// get returns the member name (one of responsesMembers), or the zero
// Result when the body has none.
func (t *responsesTop) get(name string) gjson.Result {
	for i, n := range responsesMembers {
		if n == name {
			return t[i]
		}
	}
	return gjson.Result{}
}

// DecodeResponses reads a client's Responses request body. Client faults
// are *RequestError.
func DecodeResponses(body []byte) (*Request, error) {
	if !gjson.ValidBytes(body) {
		return nil, badRequest("", "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, badRequest("", "request body must be a JSON object")
	}
	// One pass over the top-level members instead of a Get of each over
	// the whole body (which re-skips the input history every time).
	var top responsesTop
	pickMembers(root, responsesMembers[:], top[:])
	r := &Request{Model: top.get("model").String(), Stream: top.get("stream").Bool()}
	for _, k := range responsesRefused {
		if v := top.get(k); v.Exists() && v.Type != gjson.Null && v.Type != gjson.False {
			return nil, badRequest(k, "%s is not supported for this model's provider", k)
		}
	}
	if ins := top.get("instructions"); ins.Type == gjson.String && ins.Str != "" {
		r.System = append(r.System, ins.Str)
	}
	if err := decodeResponsesInput(r, top.get("input")); err != nil {
		return nil, err
	}
	if err := decodeResponsesTools(r, top.get("tools"), "tools", ""); err != nil {
		return nil, err
	}
	if err := decodeResponsesToolChoice(r, &top); err != nil {
		return nil, err
	}
	if err := decodeResponsesParams(r, &top); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeResponsesParams reads the sampling, reasoning, format and
// bookkeeping parameters.
func decodeResponsesParams(r *Request, top *responsesTop) error {
	if v := top.get("max_output_tokens"); v.Exists() && v.Type != gjson.Null {
		if v.Type != gjson.Number || v.Int() < 1 || v.Int() > maxTokenLimit {
			return badRequest("max_output_tokens", "max_output_tokens must be a positive integer")
		}
		r.MaxTokens = v.Int()
	}
	for _, f := range []struct {
		name string
		dst  **float64
	}{{"temperature", &r.Temperature}, {"top_p", &r.TopP}} {
		if v := top.get(f.name); v.Exists() && v.Type != gjson.Null {
			if v.Type != gjson.Number {
				return badRequest(f.name, "%s must be a number", f.name)
			}
			x := v.Float()
			*f.dst = &x
		}
	}
	if err := decodeResponsesReasoning(r, top.get("reasoning")); err != nil {
		return err
	}
	if err := decodeResponsesFormat(r, top.get("text").Get("format")); err != nil {
		return err
	}
	top.get("include").ForEach(func(_, v gjson.Result) bool {
		if v.Str == "reasoning.encrypted_content" {
			r.WantReasoningState = true
		}
		return true
	})
	if v := top.get("store"); v.IsBool() {
		b := v.Bool()
		r.Store = &b
	}
	r.CacheKey = top.get("prompt_cache_key").String()
	r.User = top.get("safety_identifier").String()
	if r.User == "" {
		r.User = top.get("user").String()
	}
	r.PreviousResponseID = top.get("previous_response_id").String()
	return nil
}

func decodeResponsesReasoning(r *Request, v gjson.Result) error {
	if !v.IsObject() {
		return nil
	}
	r.Thinking.Summary = v.Get("summary").String()
	if r.Thinking.Summary == "" {
		r.Thinking.Summary = v.Get("generate_summary").String()
	}
	effort := v.Get("effort").String()
	switch effort {
	case "", "none":
	case "minimal", "low", "medium", "high", "xhigh":
		r.Thinking.Enabled = true
		r.Thinking.Effort = effort
	default:
		return badRequest("reasoning.effort", "reasoning.effort %q is not one of none, minimal, low, medium, high, xhigh", effort)
	}
	return nil
}

func decodeResponsesFormat(r *Request, f gjson.Result) error {
	switch f.Get("type").String() {
	case "", "text":
	case "json_object":
		r.Format = &Format{JSON: true}
	case "json_schema":
		s := f.Get("schema")
		if !s.IsObject() {
			return badRequest("text.format.schema", "text.format.schema must be a JSON schema object")
		}
		r.Format = &Format{JSON: true, Schema: []byte(s.Raw), Name: f.Get("name").String(), Strict: f.Get("strict").Bool()}
	default:
		return badRequest("text.format.type", "text.format.type %q is not supported", f.Get("type").String())
	}
	return nil
}

func decodeResponsesToolChoice(r *Request, top *responsesTop) error {
	if v := top.get("parallel_tool_calls"); v.Type == gjson.False {
		r.ToolChoice.NoParallel = true
	}
	tc := top.get("tool_choice")
	switch {
	case !tc.Exists() || tc.Type == gjson.Null:
	case tc.Type == gjson.String:
		switch tc.Str {
		case "auto", "none", "required":
			r.ToolChoice.Mode = tc.Str
		default:
			return badRequest("tool_choice", "tool_choice %q is not one of auto, none, required", tc.Str)
		}
	case tc.IsObject():
		switch typ := tc.Get("type").String(); typ {
		case "function", "custom":
			name := tc.Get("name").String()
			if name == "" {
				return badRequest("tool_choice.name", "tool_choice of type %s needs a name", typ)
			}
			r.ToolChoice.Mode, r.ToolChoice.Name = "tool", joinNamespace(tc.Get("namespace").String(), name)
		case "allowed_tools":
			// The subset is not carried: the model sees every declared tool.
			r.ToolChoice.Mode = tc.Get("mode").String()
			if r.ToolChoice.Mode != "required" {
				r.ToolChoice.Mode = "auto"
			}
		default:
			// A hosted tool (web_search...) is dropped with its
			// declaration: forcing it cannot be honoured.
			return badRequest("tool_choice.type", "tool_choice %q names a tool this model's provider cannot run", typ)
		}
	default:
		return badRequest("tool_choice", "tool_choice must be a string or an object")
	}
	return nil
}

// decodeResponsesTools reads a tools array (top-level, an additional_tools
// item's, or the namespace ns's).
func decodeResponsesTools(r *Request, tools gjson.Result, param, ns string) error {
	if !tools.Exists() || tools.Type == gjson.Null {
		return nil
	}
	if !tools.IsArray() {
		return badRequest(param, "%s must be an array", param)
	}
	var err error
	i := 0
	tools.ForEach(func(_, t gjson.Result) bool {
		p := param + "[" + itoa(i) + "]"
		i++
		switch t.Get("type").String() {
		case "function":
			name := t.Get("name").String()
			if name == "" {
				err = badRequest(p+".name", "a function tool needs a name")
				return false
			}
			tool := Tool{Name: joinNamespace(ns, name), Description: t.Get("description").String()}
			if s := t.Get("parameters"); s.IsObject() {
				tool.Schema = []byte(s.Raw)
			}
			r.Tools = append(r.Tools, tool)
		case "custom":
			name := t.Get("name").String()
			if name == "" {
				err = badRequest(p+".name", "a custom tool needs a name")
				return false
			}
			tool := Tool{Name: joinNamespace(ns, name), Description: t.Get("description").String(), Custom: true}
			if f := t.Get("format"); f.IsObject() {
				tool.Format = []byte(f.Raw)
			}
			r.Tools = append(r.Tools, tool)
		case "namespace":
			err = decodeResponsesTools(r, t.Get("tools"), p+".tools", t.Get("name").String())
			return err == nil
		}
		return true
	})
	return err
}

// decodeResponsesInput reads input: a string (one user message) or items.
func decodeResponsesInput(r *Request, in gjson.Result) error {
	switch {
	case !in.Exists() || in.Type == gjson.Null:
		return nil
	case in.Type == gjson.String:
		r.Messages = append(r.Messages, Message{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: in.Str}}})
		return nil
	case !in.IsArray():
		return badRequest("input", "input must be a string or an array of items")
	}
	var err error
	i := 0
	in.ForEach(func(_, item gjson.Result) bool {
		err = decodeResponsesItem(r, item, "input["+itoa(i)+"]")
		i++
		return err == nil
	})
	return err
}

// decodeResponsesItem reads one input item into r.
func decodeResponsesItem(r *Request, item gjson.Result, param string) error {
	if !item.IsObject() {
		return badRequest(param, "an input item must be an object")
	}
	typ := item.Get("type").String()
	if typ == "" && item.Get("role").Exists() {
		typ = "message" // EasyInputMessage: {role, content}
	}
	switch typ {
	case "message":
		return decodeResponsesMessage(r, item, param)
	case "function_call", "custom_tool_call":
		callID := item.Get("call_id").String()
		if callID == "" {
			return badRequest(param+".call_id", "a %s item needs a call_id", typ)
		}
		p := Part{Kind: PartToolCall, CallID: callID, Name: callName(item)}
		if typ == "custom_tool_call" {
			p.Custom, p.Args = true, item.Get("input").String()
		} else {
			p.Args = item.Get("arguments").String()
		}
		appendPart(r, RoleAssistant, p)
	case "function_call_output", "custom_tool_call_output":
		callID := item.Get("call_id").String()
		if callID == "" {
			return badRequest(param+".call_id", "a %s item needs a call_id", typ)
		}
		res, isErr, err := decodeToolOutput(item.Get("output"), param+".output")
		if err != nil {
			return err
		}
		appendPart(r, RoleUser, Part{Kind: PartToolResult, CallID: callID, Result: res, IsError: isErr})
	case "reasoning":
		appendPart(r, RoleAssistant, decodeReasoningItem(item))
	case "additional_tools":
		return decodeResponsesTools(r, item.Get("tools"), param+".tools", "")
	case "item_reference":
		return badRequest(param, "item_reference needs items stored by OpenAI; this model's provider keeps none (send the items themselves)")
	case "compaction", "compaction_summary":
		// A summary the relay wrote for a non-OpenAI account carries its
		// text wrapped; OpenAI's own sealed summary cannot be read elsewhere.
		if _, text, ok := UnwrapSignature(item.Get("encrypted_content").String()); ok && text != "" {
			appendPart(r, RoleUser, Part{Kind: PartText, Text: text})
		}
	}
	return nil
}

// decodeReasoningItem turns a reasoning item into one thinking part: its
// summaries (else its reasoning_text content) joined, and its state.
func decodeReasoningItem(item gjson.Result) Part {
	p := Part{Kind: PartThinking, Text: reasoningText(item)}
	enc := item.Get("encrypted_content").String()
	if sig, text, ok := UnwrapSignature(enc); ok {
		p.Text = text
		if sig.Origin == OriginAnthropic && sig.ID == redactedSigID {
			sig.ID, p.Redacted = "", true
		}
		p.Sig = sig
		return p
	}
	if id := item.Get("id").String(); enc != "" || id != "" {
		p.Sig = Signature{Origin: OriginOpenAI, Value: enc, ID: id}
	}
	return p
}

// reasoningText is a reasoning item's summaries joined by blank lines, or
// its reasoning_text content when it has no summary.
func reasoningText(item gjson.Result) string {
	var parts []string
	item.Get("summary").ForEach(func(_, s gjson.Result) bool {
		parts = append(parts, s.Get("text").String())
		return true
	})
	if len(parts) == 0 {
		item.Get("content").ForEach(func(_, c gjson.Result) bool {
			if t := c.Get("text"); t.Exists() {
				parts = append(parts, t.String())
			}
			return true
		})
	}
	return strings.Join(parts, "\n\n")
}

// decodeResponsesMessage reads a message item: system and developer text
// joins System, user and assistant content their turn.
func decodeResponsesMessage(r *Request, item gjson.Result, param string) error {
	role := item.Get("role").String()
	content := item.Get("content")
	switch role {
	case "system", "developer":
		texts, err := contentTexts(content, param+".content")
		if err != nil {
			return err
		}
		r.System = append(r.System, texts...)
		return nil
	case "user", "assistant":
	default:
		return badRequest(param+".role", "role %q is not one of user, assistant, system, developer", role)
	}
	if content.Type == gjson.String {
		appendPart(r, Role(role), Part{Kind: PartText, Text: content.Str})
		return nil
	}
	if !content.IsArray() {
		return badRequest(param+".content", "content must be a string or an array")
	}
	var err error
	i := 0
	content.ForEach(func(_, c gjson.Result) bool {
		var p Part
		p, err = decodeContentPart(c, param+".content["+itoa(i)+"]")
		i++
		if err == nil {
			appendPart(r, Role(role), p)
		}
		return err == nil
	})
	return err
}

// contentTexts reads a system/developer message's text.
func contentTexts(content gjson.Result, param string) ([]string, error) {
	if content.Type == gjson.String {
		return []string{content.Str}, nil
	}
	if !content.IsArray() {
		return nil, badRequest(param, "content must be a string or an array")
	}
	var out []string
	var err error
	content.ForEach(func(_, c gjson.Result) bool {
		switch c.Get("type").String() {
		case "input_text", "output_text", "text":
			out = append(out, c.Get("text").String())
		default:
			err = badRequest(param, "a system or developer message may only hold text")
		}
		return err == nil
	})
	return out, err
}

// decodeContentPart reads one content part of a user or assistant message
// (or a tool output array).
func decodeContentPart(c gjson.Result, param string) (Part, error) {
	switch typ := c.Get("type").String(); typ {
	case "input_text", "output_text", "text":
		return Part{Kind: PartText, Text: c.Get("text").String()}, nil
	case "refusal":
		return Part{Kind: PartText, Text: c.Get("refusal").String()}, nil
	case "input_image":
		return decodeImageURL(c.Get("image_url"), param)
	default:
		return Part{}, badRequest(param+".type", "content type %q is not supported for this model's provider", typ)
	}
}

// decodeImageURL reads an input_image's image_url: a data: URL becomes
// inline data, an https URL stays a reference.
func decodeImageURL(u gjson.Result, param string) (Part, error) {
	url := u.String()
	if url == "" {
		return Part{}, badRequest(param+".image_url", "input_image needs an image_url (file_id is not supported for this model's provider)")
	}
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
			return Part{}, badRequest(param+".image_url", "image_url must be an http(s) or data: URL")
		}
		return Part{Kind: PartImage, URL: url}, nil
	}
	meta, data, found := strings.Cut(rest, ",")
	mediaType, isB64 := strings.CutSuffix(meta, ";base64")
	if !found || !isB64 || !strings.HasPrefix(mediaType, "image/") {
		return Part{}, badRequest(param+".image_url", "a data: image_url must be data:image/<type>;base64,<data>")
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return Part{}, badRequest(param+".image_url", "the image data is not valid base64")
	}
	return Part{Kind: PartImage, MediaType: mediaType, Data: data}, nil
}

// decodeToolOutput reads a function_call_output's output: a string, an
// array of content parts, or Codex's older {content, success} object.
func decodeToolOutput(out gjson.Result, param string) ([]Part, bool, error) {
	switch {
	case out.Type == gjson.String:
		return []Part{{Kind: PartText, Text: out.Str}}, false, nil
	case out.IsArray():
		var parts []Part
		var err error
		i := 0
		out.ForEach(func(_, c gjson.Result) bool {
			var p Part
			p, err = decodeContentPart(c, param+"["+itoa(i)+"]")
			i++
			parts = append(parts, p)
			return err == nil
		})
		return parts, false, err
	case out.IsObject():
		return []Part{{Kind: PartText, Text: out.Get("content").String()}}, out.Get("success").Type == gjson.False, nil
	case !out.Exists() || out.Type == gjson.Null:
		return nil, false, nil
	}
	return nil, false, badRequest(param, "output must be a string or an array")
}

// appendPart adds p to the last message when it has role, else to a new
// message.
func appendPart(r *Request, role Role, p Part) {
	if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == role {
		r.Messages[n-1].Parts = append(r.Messages[n-1].Parts, p)
		return
	}
	r.Messages = append(r.Messages, Message{Role: role, Parts: []Part{p}})
}

// namespaceSep joins a Responses tool namespace and a tool name into one
// tool name ([A-Za-z0-9_-], as Anthropic, Chat and Gemini require). Codex
// joins MCP server and tool names with "__", hence three.
const namespaceSep = "___"

// joinNamespace is the neutral name of tool name in namespace ns.
func joinNamespace(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + namespaceSep + name
}

// splitNamespace undoes joinNamespace.
func splitNamespace(name string) (ns, base string) {
	if i := strings.Index(name, namespaceSep); i > 0 && i+len(namespaceSep) < len(name) {
		return name[:i], name[i+len(namespaceSep):]
	}
	return "", name
}

// callName is a call item's neutral tool name (its namespace joined).
func callName(item gjson.Result) string {
	return joinNamespace(item.Get("namespace").String(), item.Get("name").String())
}

func itoa(i int) string { return string(appendInt(nil, int64(i))) }
