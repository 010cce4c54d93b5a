package convert

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// DecodeMessages reads a client's Anthropic Messages request body (POST
// /v1/messages) into the neutral form, or returns a *RequestError for a body
// the client must fix.
//
// What has no neutral form, and what becomes of it:
//
//   - Anthropic-defined tools (any tools[] entry with a type other than
//     "custom": web_search_*, web_fetch_*, code_execution_*, bash_*,
//     text_editor_*, computer_*, memory_*...) are dropped: another provider
//     cannot run Anthropic's server tools nor knows these tools' schemas. A
//     tool_choice naming a dropped tool is a *RequestError.
//   - Server-tool history blocks (server_tool_use, mcp_tool_use and every
//     "*_tool_result" block other than tool_result, e.g.
//     web_search_tool_result) are dropped from assistant and user turns.
//   - A cache_control on a system block sets Request.SystemCache (one
//     breakpoint after the system prompt); on a tool it is dropped; on a
//     content block it is that Part's Cache.
//   - document blocks with a text source become text parts; other documents
//     (PDF) have no neutral form and are a *RequestError.
//   - output_config.effort is read only with thinking enabled or adaptive;
//     Anthropic's "max" becomes "xhigh", the highest neutral effort.
//   - Structured outputs (output_config.format, or the beta's
//     output_format) become Request.Format.
//   - Any other top-level field (context_management, mcp_servers,
//     container, service_tier...) is ignored.
//
// A thinking block's signature (a redacted_thinking block's data) goes
// through UnwrapSignature: a value the relay wrapped for this client restores
// the other provider's state and the exact text it signs; any other value is
// Anthropic's own (Sig.Origin OriginAnthropic). An empty signature is no
// state at all (Sig zero).
func DecodeMessages(body []byte) (*Request, error) {
	// gjson's validator: the relay's intake only checks that a body looks
	// like an object, and it is several times cheaper than encoding/json's.
	if !gjson.ValidBytes(body) {
		return nil, badRequest("", "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, badRequest("", "request body must be a JSON object")
	}
	r := &Request{}
	// One pass over the top-level members: the fields read afterwards (they
	// depend on others) are kept from it, the first of each name as Get
	// would find, instead of re-scanning the whole body for each.
	var later messagesLater
	var err error
	forEachMember(root, func(k string, v gjson.Result) bool {
		later.keep(k, v)
		err = decodeMessagesParam(r, k, v)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if !later.messages.Exists() {
		return nil, badRequest("messages", "messages is required")
	}
	if err := decodeMessagesThinking(r, later.thinking, later.outputConfig); err != nil {
		return nil, err
	}
	if err := decodeMessagesToolChoice(r, later.toolChoice, droppedTools(later.tools)); err != nil {
		return nil, err
	}
	if err := decodeMessagesFormat(r, later.outputConfig, later.outputFormat); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeMessagesFormat reads structured outputs: output_config.format, or
// the beta's top-level output_format, {"type":"json_schema","schema":...}.
func decodeMessagesFormat(r *Request, outputConfig, outputFormat gjson.Result) error {
	param, f := "output_config.format", outputConfig.Get("format")
	if !f.Exists() || f.Type == gjson.Null {
		param, f = "output_format", outputFormat
	}
	if !f.Exists() || f.Type == gjson.Null {
		return nil
	}
	schema := f.Get("schema")
	if f.Get("type").Str != "json_schema" || !schema.IsObject() {
		return badRequest(param, "%s must be {\"type\":\"json_schema\",\"schema\":{...}}", param)
	}
	r.Format = &Format{JSON: true, Schema: json.RawMessage(schema.Raw)}
	return nil
}

// decodeMessagesParam reads one top-level field; thinking, output_config and
// tool_choice are read afterwards (they depend on other fields).
func decodeMessagesParam(r *Request, key string, v gjson.Result) error {
	if v.Type == gjson.Null {
		return nil
	}
	switch key {
	case "model":
		if v.Type != gjson.String {
			return badRequest(key, "model must be a string")
		}
		r.Model = v.Str
	case "max_tokens":
		n, ok := positiveInt(v)
		if !ok {
			return badRequest(key, "max_tokens must be a positive integer")
		}
		r.MaxTokens = n
	case "system":
		return decodeMessagesSystem(r, v)
	case "messages":
		return decodeMessagesTurns(r, v)
	case "tools":
		return decodeMessagesTools(r, v)
	case "stop_sequences":
		return decodeStopSequences(r, v)
	case "temperature", "top_p":
		if v.Type != gjson.Number || v.Num < 0 || v.Num > 1 {
			return badRequest(key, "%s must be a number between 0 and 1", key)
		}
		f := v.Num
		if key == "temperature" {
			r.Temperature = &f
		} else {
			r.TopP = &f
		}
	case "top_k":
		n, ok := positiveInt(v)
		if !ok {
			return badRequest(key, "top_k must be a positive integer")
		}
		r.TopK = &n
	case "stream":
		if !v.IsBool() {
			return badRequest(key, "stream must be a boolean")
		}
		r.Stream = v.Bool()
	case "metadata":
		if !v.IsObject() {
			return badRequest(key, "metadata must be an object")
		}
		if u := v.Get("user_id"); u.Type == gjson.String {
			r.User = u.Str
		} else if u.Exists() && u.Type != gjson.Null {
			return badRequest("metadata.user_id", "metadata.user_id must be a string")
		}
	}
	return nil
}

func decodeStopSequences(r *Request, v gjson.Result) error {
	if !v.IsArray() {
		return badRequest("stop_sequences", "stop_sequences must be an array of strings")
	}
	var err error
	v.ForEach(func(_, s gjson.Result) bool {
		if s.Type != gjson.String {
			err = badRequest("stop_sequences", "stop_sequences must be an array of strings")
			return false
		}
		r.Stop = append(r.Stop, s.Str)
		return true
	})
	return err
}

// billingHeader starts the first system block Claude Code sends: Anthropic's
// attribution line, which differs per conversation. It means nothing to
// another provider and would spoil its prompt cache (a prefix that changes
// between conversations), so it is not carried.
const billingHeader = "x-anthropic-billing-header:"

// systemReminder carries a mid-conversation system message to APIs that
// have none, in the form Claude Code itself uses inside user turns.
func systemReminder(text string) string {
	return "<system-reminder>\n" + text + "\n</system-reminder>"
}

// messagesSystemText is the text of a mid-conversation system message: a
// string or text blocks, joined by blank lines.
func messagesSystemText(v gjson.Result, param string) (string, error) {
	if v.Type == gjson.String {
		return v.Str, nil
	}
	if !v.IsArray() {
		return "", badRequest(param, "%s must be a string or an array of text blocks", param)
	}
	var texts []string
	var err error
	v.ForEach(func(_, b gjson.Result) bool {
		if !b.IsObject() || b.Get("type").Str != "text" || b.Get("text").Type != gjson.String {
			err = badRequest(param, "%s must hold text blocks only", param)
			return false
		}
		if t := b.Get("text").Str; t != "" {
			texts = append(texts, t)
		}
		return true
	})
	return strings.Join(texts, "\n\n"), err
}

func decodeMessagesSystem(r *Request, v gjson.Result) error {
	if v.Type == gjson.String {
		if v.Str != "" && !strings.HasPrefix(v.Str, billingHeader) {
			r.System = append(r.System, v.Str)
		}
		return nil
	}
	if !v.IsArray() {
		return badRequest("system", "system must be a string or an array of text blocks")
	}
	var err error
	i := 0
	v.ForEach(func(_, b gjson.Result) bool {
		param := "system[" + strconv.Itoa(i) + "]"
		i++
		if !b.IsObject() || b.Get("type").Str != "text" || b.Get("text").Type != gjson.String {
			err = badRequest(param, "%s must be a text block", param)
			return false
		}
		if t := b.Get("text").Str; t != "" && !strings.HasPrefix(t, billingHeader) {
			r.System = append(r.System, t)
		}
		if b.Get("cache_control").IsObject() {
			r.SystemCache = true
		}
		return true
	})
	return err
}

func decodeMessagesTurns(r *Request, v gjson.Result) error {
	if !v.IsArray() {
		return badRequest("messages", "messages must be an array")
	}
	var err error
	i := 0
	v.ForEach(func(_, m gjson.Result) bool {
		param := "messages[" + strconv.Itoa(i) + "]"
		i++
		if !m.IsObject() {
			err = badRequest(param, "%s must be an object", param)
			return false
		}
		role := Role(m.Get("role").Str)
		if role == "system" {
			// Claude Code's newer models get mid-conversation system
			// messages (the environment, reminders), anywhere in the list.
			var text string
			if text, err = messagesSystemText(m.Get("content"), param+".content"); err != nil {
				return false
			}
			if text != "" {
				r.Messages = append(r.Messages, Message{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: systemReminder(text)}}})
			}
			return true
		}
		if role != RoleUser && role != RoleAssistant {
			err = badRequest(param+".role", "%s.role must be user, assistant or system", param)
			return false
		}
		var parts []Part
		parts, err = decodeMessagesContent(m.Get("content"), param+".content", role)
		if err != nil {
			return false
		}
		r.Messages = append(r.Messages, Message{Role: role, Parts: parts})
		return true
	})
	if err == nil && i == 0 {
		err = badRequest("messages", "messages must not be empty")
	}
	return err
}

// decodeMessagesContent reads a message's content: a string or blocks.
func decodeMessagesContent(v gjson.Result, param string, role Role) ([]Part, error) {
	if v.Type == gjson.String {
		if v.Str == "" {
			return nil, nil
		}
		return []Part{{Kind: PartText, Text: v.Str}}, nil
	}
	if !v.IsArray() {
		return nil, badRequest(param, "%s must be a string or an array of content blocks", param)
	}
	var (
		parts []Part
		err   error
	)
	j := 0
	v.ForEach(func(_, b gjson.Result) bool {
		var p Part
		var keep bool
		p, keep, err = decodeMessagesBlock(b, param+"["+strconv.Itoa(j)+"]", role)
		j++
		if keep {
			parts = append(parts, p)
		}
		return err == nil
	})
	return parts, err
}

// decodeMessagesBlock reads one content block; keep is false for a block
// with no neutral form that is dropped (see DecodeMessages).
func decodeMessagesBlock(b gjson.Result, param string, role Role) (p Part, keep bool, err error) {
	if !b.IsObject() {
		return Part{}, false, badRequest(param, "%s must be an object", param)
	}
	typ := b.Get("type").Str
	switch typ {
	case "text":
		t := b.Get("text")
		if t.Type != gjson.String {
			return Part{}, false, badRequest(param+".text", "%s.text must be a string", param)
		}
		p = Part{Kind: PartText, Text: t.Str}
	case "image":
		p, err = decodeMessagesImage(b, param)
	case "document":
		p, err = decodeMessagesDocument(b, param)
	case "tool_use":
		if role != RoleAssistant {
			return Part{}, false, badRequest(param+".type", "%s: tool_use blocks belong in assistant messages", param)
		}
		p, err = decodeMessagesToolUse(b, param)
	case "tool_result":
		if role != RoleUser {
			return Part{}, false, badRequest(param+".type", "%s: tool_result blocks belong in user messages", param)
		}
		p, err = decodeMessagesToolResult(b, param)
	case "thinking", "redacted_thinking":
		p, err = decodeMessagesThinkingBlock(b, param, typ)
	case "server_tool_use", "mcp_tool_use":
		return Part{}, false, nil
	default:
		if strings.HasSuffix(typ, "_tool_result") {
			return Part{}, false, nil // a server tool's result
		}
		return Part{}, false, badRequest(param+".type", "content block type %q cannot be sent to this account's API", typ)
	}
	if err != nil {
		return Part{}, false, err
	}
	p.Cache = b.Get("cache_control").IsObject()
	return p, true, nil
}

func decodeMessagesImage(b gjson.Result, param string) (Part, error) {
	src := b.Get("source")
	switch src.Get("type").Str {
	case "base64":
		mt, data := src.Get("media_type"), src.Get("data")
		if mt.Type != gjson.String || mt.Str == "" || data.Type != gjson.String || data.Str == "" {
			return Part{}, badRequest(param+".source", "%s.source needs media_type and data", param)
		}
		return Part{Kind: PartImage, MediaType: mt.Str, Data: data.Str}, nil
	case "url":
		u := src.Get("url")
		if u.Type != gjson.String || u.Str == "" {
			return Part{}, badRequest(param+".source.url", "%s.source.url must be a non-empty string", param)
		}
		return Part{Kind: PartImage, URL: u.Str}, nil
	}
	return Part{}, badRequest(param+".source.type", "image source type %q cannot be sent to this account's API; use base64 or url", src.Get("type").Str)
}

func decodeMessagesDocument(b gjson.Result, param string) (Part, error) {
	src := b.Get("source")
	if src.Get("type").Str == "text" && src.Get("data").Type == gjson.String {
		return Part{Kind: PartText, Text: src.Get("data").Str}, nil
	}
	return Part{}, badRequest(param+".type", "document blocks other than plain text cannot be sent to this account's API")
}

func decodeMessagesToolUse(b gjson.Result, param string) (Part, error) {
	id, name := b.Get("id"), b.Get("name")
	if id.Type != gjson.String || id.Str == "" || name.Type != gjson.String || name.Str == "" {
		return Part{}, badRequest(param, "%s needs a non-empty id and name", param)
	}
	args := "{}"
	switch in := b.Get("input"); {
	case in.IsObject():
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(in.Raw)) == nil {
			args = buf.String()
		}
	case !in.Exists() || in.Type == gjson.Null:
	default:
		return Part{}, badRequest(param+".input", "%s.input must be an object", param)
	}
	return Part{Kind: PartToolCall, CallID: id.Str, Name: name.Str, Args: args}, nil
}

func decodeMessagesToolResult(b gjson.Result, param string) (Part, error) {
	id := b.Get("tool_use_id")
	if id.Type != gjson.String || id.Str == "" {
		return Part{}, badRequest(param+".tool_use_id", "%s.tool_use_id must be a non-empty string", param)
	}
	p := Part{Kind: PartToolResult, CallID: id.Str, IsError: b.Get("is_error").Bool()}
	c := b.Get("content")
	switch {
	case !c.Exists() || c.Type == gjson.Null:
	case c.Type == gjson.String:
		if c.Str != "" {
			p.Result = []Part{{Kind: PartText, Text: c.Str}}
		}
	case c.IsArray():
		var err error
		j := 0
		c.ForEach(func(_, rb gjson.Result) bool {
			rp := param + ".content[" + strconv.Itoa(j) + "]"
			j++
			var part Part
			switch rb.Get("type").Str {
			case "text":
				part = Part{Kind: PartText, Text: rb.Get("text").Str}
			case "image":
				part, err = decodeMessagesImage(rb, rp)
			case "document":
				part, err = decodeMessagesDocument(rb, rp)
			default:
				err = badRequest(rp+".type", "tool result content type %q cannot be sent to this account's API", rb.Get("type").Str)
			}
			p.Result = append(p.Result, part)
			return err == nil
		})
		if err != nil {
			return Part{}, err
		}
	default:
		return Part{}, badRequest(param+".content", "%s.content must be a string or an array of blocks", param)
	}
	return p, nil
}

func decodeMessagesThinkingBlock(b gjson.Result, param, typ string) (Part, error) {
	field, textField := "signature", "thinking"
	if typ == "redacted_thinking" {
		field, textField = "data", ""
	}
	sig := b.Get(field)
	if sig.Exists() && sig.Type != gjson.String {
		return Part{}, badRequest(param+"."+field, "%s.%s must be a string", param, field)
	}
	p := Part{Kind: PartThinking}
	if textField != "" {
		p.Text = b.Get(textField).Str
	}
	if s, text, ok := UnwrapSignature(sig.Str); ok {
		p.Sig, p.Text = s, text
		return p, nil
	}
	if sig.Str != "" {
		p.Sig = Signature{Origin: OriginAnthropic, Value: sig.Str}
		p.Redacted = typ == "redacted_thinking"
	}
	return p, nil
}

// droppedTools reads the names of the Anthropic-defined tools that
// decodeMessagesTools drops.
func droppedTools(v gjson.Result) map[string]bool {
	var out map[string]bool
	v.ForEach(func(_, t gjson.Result) bool {
		if typ := t.Get("type").Str; typ != "" && typ != "custom" {
			if out == nil {
				out = map[string]bool{}
			}
			out[t.Get("name").Str] = true
		}
		return true
	})
	return out
}

func decodeMessagesTools(r *Request, v gjson.Result) error {
	if !v.IsArray() {
		return badRequest("tools", "tools must be an array")
	}
	var err error
	i := 0
	v.ForEach(func(_, t gjson.Result) bool {
		param := "tools[" + strconv.Itoa(i) + "]"
		i++
		if !t.IsObject() {
			err = badRequest(param, "%s must be an object", param)
			return false
		}
		if typ := t.Get("type").Str; typ != "" && typ != "custom" {
			return true // an Anthropic-defined tool: no neutral form
		}
		name := t.Get("name")
		if name.Type != gjson.String || name.Str == "" {
			err = badRequest(param+".name", "%s.name must be a non-empty string", param)
			return false
		}
		schema := t.Get("input_schema")
		if !schema.IsObject() {
			err = badRequest(param+".input_schema", "%s.input_schema must be a JSON Schema object", param)
			return false
		}
		r.Tools = append(r.Tools, Tool{Name: name.Str, Description: t.Get("description").Str, Schema: json.RawMessage(schema.Raw)})
		return true
	})
	return err
}

func decodeMessagesToolChoice(r *Request, v gjson.Result, dropped map[string]bool) error {
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	if !v.IsObject() {
		return badRequest("tool_choice", "tool_choice must be an object")
	}
	tc := ToolChoice{NoParallel: v.Get("disable_parallel_tool_use").Bool()}
	switch typ := v.Get("type").Str; typ {
	case "auto", "none":
		tc.Mode = typ
	case "any":
		tc.Mode = "required"
	case "tool":
		name := v.Get("name")
		if name.Type != gjson.String || name.Str == "" {
			return badRequest("tool_choice.name", "tool_choice.name must be a non-empty string")
		}
		if dropped[name.Str] {
			return badRequest("tool_choice.name", "tool %q is an Anthropic-defined tool this account's API cannot run", name.Str)
		}
		tc.Mode, tc.Name = "tool", name.Str
	default:
		return badRequest("tool_choice.type", "tool_choice type %q is not supported; use auto, any, tool or none", typ)
	}
	r.ToolChoice = tc
	return nil
}

// decodeMessagesThinking reads thinking and output_config.effort.
func decodeMessagesThinking(r *Request, th, oc gjson.Result) error {
	if !th.Exists() || th.Type == gjson.Null {
		return nil
	}
	if !th.IsObject() {
		return badRequest("thinking", "thinking must be an object")
	}
	switch typ := th.Get("type").Str; typ {
	case "disabled":
		return nil
	case "enabled":
		n, ok := positiveInt(th.Get("budget_tokens"))
		if !ok {
			return badRequest("thinking.budget_tokens", "thinking.budget_tokens must be a positive integer")
		}
		r.Thinking = Thinking{Enabled: true, Budget: n}
	case "adaptive":
		r.Thinking = Thinking{Enabled: true, Adaptive: true}
	default:
		return badRequest("thinking.type", "thinking type %q is not supported; use enabled, adaptive or disabled", typ)
	}
	e := oc.Get("effort")
	switch {
	case !e.Exists() || e.Type == gjson.Null:
	case e.Str == "max":
		r.Thinking.Effort = "xhigh"
	case e.Str == "low" || e.Str == "medium" || e.Str == "high" || e.Str == "xhigh":
		r.Thinking.Effort = e.Str
	default:
		return badRequest("output_config.effort", "output_config.effort %q is not supported; use low, medium, high, xhigh or max", e.String())
	}
	return nil
}
