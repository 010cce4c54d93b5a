package convert

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// contentMode says which content parts a role may carry.
type contentMode int

const (
	modeSystem contentMode = iota
	modeUser
	modeAssistant
	modeTool
)

func (c *chatConverter) convertMessages() error {
	v := c.messages
	if !v.Exists() || v.Type == gjson.Null {
		return badRequest("messages", "messages is required")
	}
	if !v.IsArray() {
		return badRequest("messages", "messages must be an array")
	}
	var err error
	i := 0
	v.ForEach(func(_, m gjson.Result) bool {
		err = c.convertMessage(i, m)
		i++
		return err == nil
	})
	if err != nil {
		return err
	}
	if i == 0 {
		return badRequest("messages", "messages must not be empty")
	}
	if len(c.out.Messages) == 0 {
		return badRequest("messages", "messages must contain at least one user or assistant message with content")
	}
	// Inside a user turn Anthropic wants tool results before anything else.
	for i := range c.out.Messages {
		m := &c.out.Messages[i]
		if m.Role == "user" {
			toolResultsFirst(m.Content)
		}
	}
	return nil
}

func (c *chatConverter) convertMessage(i int, m gjson.Result) error {
	param := "messages[" + strconv.Itoa(i) + "]"
	if !m.IsObject() {
		return badRequest(param, "%s must be an object", param)
	}
	role := m.Get("role")
	if role.Type != gjson.String {
		return badRequest(param+".role", "%s.role must be a string", param)
	}
	content := m.Get("content")
	switch role.Str {
	case "system", "developer":
		blocks, err := c.contentBlocks(content, param+".content", modeSystem)
		if err != nil {
			return err
		}
		c.out.System = append(c.out.System, blocks...)
	case "user":
		blocks, err := c.contentBlocks(content, param+".content", modeUser)
		if err != nil {
			return err
		}
		c.appendBlocks("user", blocks)
	case "assistant":
		if fc := m.Get("function_call"); fc.Exists() && fc.Type != gjson.Null {
			return badRequest(param+".function_call", "the legacy function_call field is not supported; use tool_calls")
		}
		blocks, err := c.contentBlocks(content, param+".content", modeAssistant)
		if err != nil {
			return err
		}
		calls, err := toolUses(m.Get("tool_calls"), param+".tool_calls")
		if err != nil {
			return err
		}
		c.appendBlocks("assistant", append(blocks, calls...))
	case "tool":
		return c.convertToolMessage(param, m)
	case "function":
		return badRequest(param+".role", "the legacy function role is not supported; use tool")
	default:
		return badRequest(param+".role", "unknown role %q", role.Str)
	}
	return nil
}

func (c *chatConverter) convertToolMessage(param string, m gjson.Result) error {
	id := m.Get("tool_call_id")
	if id.Type != gjson.String || id.Str == "" {
		return badRequest(param+".tool_call_id", "%s.tool_call_id must be a non-empty string", param)
	}
	res := block{Type: "tool_result", ToolUseID: sanitizeToolID(id.Str)}
	content := m.Get("content")
	var raw any
	switch {
	case content.Type == gjson.String:
		if content.Str != "" {
			raw = content.Str
		}
	default:
		blocks, err := c.contentBlocks(content, param+".content", modeTool)
		if err != nil {
			return err
		}
		if len(blocks) > 0 {
			raw = blocks
		}
	}
	if raw != nil {
		b, err := marshal(raw)
		if err != nil {
			return fmt.Errorf("encode tool result: %w", err)
		}
		res.Content = b
	}

	// A repeated result for the same call replaces the earlier one:
	// Anthropic accepts one result per tool_use.
	if n := len(c.out.Messages); n > 0 && c.out.Messages[n-1].Role == "user" {
		last := c.out.Messages[n-1].Content
		for j := range last {
			if last[j].Type == "tool_result" && last[j].ToolUseID == res.ToolUseID {
				last[j] = res
				return nil
			}
		}
	}
	c.appendBlocks("user", []block{res})
	return nil
}

// appendBlocks adds blocks as a turn of role, merging into the previous turn
// when it has the same role: Anthropic requires strict alternation.
func (c *chatConverter) appendBlocks(role string, blocks []block) {
	if len(blocks) == 0 {
		return
	}
	if n := len(c.out.Messages); n > 0 && c.out.Messages[n-1].Role == role {
		c.out.Messages[n-1].Content = append(c.out.Messages[n-1].Content, blocks...)
		return
	}
	c.out.Messages = append(c.out.Messages, message{Role: role, Content: blocks})
}

// toolResultsFirst moves tool_result blocks to the front, keeping the order
// within each group.
func toolResultsFirst(blocks []block) {
	firstOther := -1
	for i := range blocks {
		if blocks[i].Type != "tool_result" {
			if firstOther < 0 {
				firstOther = i
			}
			continue
		}
		if firstOther >= 0 {
			b := blocks[i]
			copy(blocks[firstOther+1:i+1], blocks[firstOther:i])
			blocks[firstOther] = b
			firstOther++
		}
	}
}

// contentBlocks converts an OpenAI content value (string, array of parts or
// null) into Anthropic blocks. Empty text is dropped: Anthropic rejects empty
// text blocks.
func (c *chatConverter) contentBlocks(v gjson.Result, param string, mode contentMode) ([]block, error) {
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return nil, nil
	case v.Type == gjson.String:
		if v.Str == "" {
			return nil, nil
		}
		return []block{{Type: "text", Text: v.Str}}, nil
	case v.IsArray():
	default:
		return nil, badRequest(param, "%s must be a string, an array of content parts or null", param)
	}
	var (
		blocks []block
		err    error
	)
	j := 0
	v.ForEach(func(_, part gjson.Result) bool {
		var b *block
		b, err = contentPart(part, param+"["+strconv.Itoa(j)+"]", mode)
		if b != nil {
			blocks = append(blocks, *b)
		}
		j++
		return err == nil
	})
	return blocks, err
}

func contentPart(part gjson.Result, param string, mode contentMode) (*block, error) {
	if !part.IsObject() {
		return nil, badRequest(param, "%s must be an object", param)
	}
	typ := part.Get("type").String()
	var b *block
	switch {
	case typ == "text":
		t := part.Get("text")
		if t.Type != gjson.String {
			return nil, badRequest(param+".text", "%s.text must be a string", param)
		}
		if t.Str != "" {
			b = &block{Type: "text", Text: t.Str}
		}
	case typ == "refusal" && mode == modeAssistant:
		t := part.Get("refusal")
		if t.Type != gjson.String {
			return nil, badRequest(param+".refusal", "%s.refusal must be a string", param)
		}
		if t.Str != "" {
			b = &block{Type: "text", Text: t.Str}
		}
	case typ == "image_url" && (mode == modeUser || mode == modeTool):
		img, err := imageBlock(part, param)
		if err != nil {
			return nil, err
		}
		b = img
	case typ == "file" && mode == modeUser:
		doc, err := documentBlock(part, param)
		if err != nil {
			return nil, err
		}
		b = doc
	case typ == "input_audio":
		return nil, badRequest(param+".type", "audio input is not supported")
	case mode == modeSystem:
		return nil, badRequest(param+".type", "system and developer messages accept only text parts, got %q", typ)
	default:
		return nil, badRequest(param+".type", "content part type %q is not supported here", typ)
	}
	if b != nil {
		if cc := part.Get("cache_control"); cc.IsObject() {
			b.CacheControl = json.RawMessage(cc.Raw)
		}
	}
	return b, nil
}

func imageBlock(part gjson.Result, param string) (*block, error) {
	iu := part.Get("image_url")
	url := iu.Get("url")
	if iu.Type == gjson.String { // some clients flatten image_url to the URL
		url = iu
	}
	if url.Type != gjson.String || url.Str == "" {
		return nil, badRequest(param+".image_url.url", "%s.image_url.url must be a non-empty string", param)
	}
	u := url.Str
	if hasPrefixFold(u, "data:") {
		mt, data, isBase64 := parseDataURL(u)
		if mt == "" || !isBase64 || data == "" {
			return nil, badRequest(param+".image_url.url", "image data URLs must look like data:<media type>;base64,<data>")
		}
		return &block{Type: "image", Source: &source{Type: "base64", MediaType: mt, Data: data}}, nil
	}
	if hasPrefixFold(u, "https://") || hasPrefixFold(u, "http://") {
		return &block{Type: "image", Source: &source{Type: "url", URL: u}}, nil
	}
	return nil, badRequest(param+".image_url.url", "image URLs must be http(s) or base64 data URLs")
}

func documentBlock(part gjson.Result, param string) (*block, error) {
	f := part.Get("file")
	if fid := f.Get("file_id"); fid.Exists() && fid.Type != gjson.Null {
		return nil, badRequest(param+".file.file_id", "file_id references are not supported; send file_data")
	}
	fd := f.Get("file_data")
	if fd.Type != gjson.String || fd.Str == "" {
		return nil, badRequest(param+".file.file_data", "%s.file.file_data must be a non-empty string", param)
	}
	// OpenAI documents file_data as a data URL; bare base64 is taken as PDF,
	// the only binary document type Anthropic accepts.
	mt, data, isBase64 := "application/pdf", fd.Str, true
	if hasPrefixFold(fd.Str, "data:") {
		mt, data, isBase64 = parseDataURL(fd.Str)
	}
	if mt == "" || !isBase64 || data == "" {
		return nil, badRequest(param+".file.file_data", "file data URLs must look like data:<media type>;base64,<data>")
	}
	if strings.EqualFold(mt, "text/plain") {
		// Anthropic takes plain-text documents as text, not base64.
		text, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, badRequest(param+".file.file_data", "file_data is not valid base64")
		}
		return &block{Type: "document", Source: &source{Type: "text", MediaType: "text/plain", Data: string(text)}}, nil
	}
	return &block{Type: "document", Source: &source{Type: "base64", MediaType: mt, Data: data}}, nil
}

// parseDataURL splits "data:<mt>[;param]*[;base64],<data>".
func parseDataURL(u string) (mediaType, data string, isBase64 bool) {
	rest := u[len("data:"):]
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", false
	}
	params := strings.Split(meta, ";")
	for _, p := range params[1:] {
		if strings.EqualFold(strings.TrimSpace(p), "base64") {
			isBase64 = true
		}
	}
	return strings.ToLower(strings.TrimSpace(params[0])), data, isBase64
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// toolUses converts assistant tool_calls into tool_use blocks.
func toolUses(v gjson.Result, param string) ([]block, error) {
	if !v.Exists() || v.Type == gjson.Null {
		return nil, nil
	}
	if !v.IsArray() {
		return nil, badRequest(param, "%s must be an array", param)
	}
	var (
		blocks []block
		err    error
	)
	j := 0
	v.ForEach(func(_, call gjson.Result) bool {
		var b block
		b, err = toolUse(call, param+"["+strconv.Itoa(j)+"]")
		blocks = append(blocks, b)
		j++
		return err == nil
	})
	return blocks, err
}

func toolUse(call gjson.Result, param string) (block, error) {
	if !call.IsObject() {
		return block{}, badRequest(param, "%s must be an object", param)
	}
	if typ := call.Get("type"); typ.Exists() && typ.String() != "function" {
		return block{}, badRequest(param+".type", "tool call type %q is not supported; only function is", typ.String())
	}
	id := call.Get("id")
	if id.Type != gjson.String || id.Str == "" {
		return block{}, badRequest(param+".id", "%s.id must be a non-empty string", param)
	}
	name := call.Get("function.name")
	if name.Type != gjson.String || name.Str == "" {
		return block{}, badRequest(param+".function.name", "%s.function.name must be a non-empty string", param)
	}
	input := json.RawMessage("{}")
	switch args := call.Get("function.arguments"); {
	case !args.Exists() || args.Type == gjson.Null:
	case args.Type == gjson.String:
		s := strings.TrimSpace(args.Str)
		if s == "" {
			break
		}
		// Anthropic's tool_use input is always an object; anything else
		// cannot be replayed faithfully.
		if !json.Valid([]byte(s)) || !gjson.Parse(s).IsObject() {
			return block{}, badRequest(param+".function.arguments", "%s.function.arguments must be a JSON object encoded as a string", param)
		}
		input = json.RawMessage(s)
	case args.IsObject(): // some clients send the object itself
		input = json.RawMessage(args.Raw)
	default:
		return block{}, badRequest(param+".function.arguments", "%s.function.arguments must be a JSON object encoded as a string", param)
	}
	return block{Type: "tool_use", ID: sanitizeToolID(id.Str), Name: name.Str, Input: input}, nil
}

// sanitizeToolID maps a tool call id onto Anthropic's charset
// [A-Za-z0-9_-]. The same mapping is applied to tool_use ids and to
// tool_call_id, so pairs still match.
func sanitizeToolID(id string) string {
	clean := true
	for i := 0; i < len(id); i++ {
		if !isToolIDByte(id[i]) {
			clean = false
			break
		}
	}
	if clean {
		return id
	}
	b := []byte(id)
	for i, c := range b {
		if !isToolIDByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func isToolIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
