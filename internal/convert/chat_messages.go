package convert

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// chatRoleParts says which content parts a Chat role may carry.
type chatRoleParts uint8

const (
	chatSystemParts chatRoleParts = iota
	chatUserParts
	chatAssistantParts
	chatToolParts
)

func (d *chatDecoder) decodeMessages() error {
	v := d.messages
	if !v.Exists() || v.Type == gjson.Null {
		return badRequest("messages", "messages is required")
	}
	if !v.IsArray() {
		return badRequest("messages", "messages must be an array")
	}
	var err error
	i := 0
	v.ForEach(func(_, m gjson.Result) bool {
		err = d.decodeMessage(i, m)
		i++
		return err == nil
	})
	if err != nil {
		return err
	}
	if i == 0 {
		return badRequest("messages", "messages must not be empty")
	}
	if len(d.r.Messages) == 0 {
		return badRequest("messages", "messages must contain at least one user or assistant message with content")
	}
	// Tool results answer the turn before; they come first in their turn
	// (Anthropic requires it, and no dialect means anything else).
	for i := range d.r.Messages {
		if m := &d.r.Messages[i]; m.Role == RoleUser {
			chatResultsFirst(m.Parts)
		}
	}
	return nil
}

func (d *chatDecoder) decodeMessage(i int, m gjson.Result) error {
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
		parts, err := chatContent(content, param+".content", chatSystemParts)
		if err != nil {
			return err
		}
		for _, p := range parts {
			d.r.System = append(d.r.System, p.Text)
			d.r.SystemCache = d.r.SystemCache || p.Cache
		}
	case "user":
		parts, err := chatContent(content, param+".content", chatUserParts)
		if err != nil {
			return err
		}
		d.appendParts(RoleUser, parts)
	case "assistant":
		if fc := m.Get("function_call"); fc.Exists() && fc.Type != gjson.Null {
			return badRequest(param+".function_call", "the legacy function_call field is not supported; use tool_calls")
		}
		// reasoning_content (DeepSeek, Kimi) carries no state any upstream
		// can continue from; it is dropped like a foreign thinking part.
		parts, err := chatContent(content, param+".content", chatAssistantParts)
		if err != nil {
			return err
		}
		calls, err := chatToolCalls(m.Get("tool_calls"), param+".tool_calls")
		if err != nil {
			return err
		}
		d.appendParts(RoleAssistant, append(parts, calls...))
	case "tool":
		return d.decodeToolMessage(param, m)
	case "function":
		return badRequest(param+".role", "the legacy function role is not supported; use tool")
	default:
		return badRequest(param+".role", "unknown role %q", role.Str)
	}
	return nil
}

func (d *chatDecoder) decodeToolMessage(param string, m gjson.Result) error {
	id := m.Get("tool_call_id")
	if id.Type != gjson.String || id.Str == "" {
		return badRequest(param+".tool_call_id", "%s.tool_call_id must be a non-empty string", param)
	}
	res := Part{Kind: PartToolResult, CallID: id.Str}
	content := m.Get("content")
	if content.Type == gjson.String {
		if content.Str != "" {
			res.Result = []Part{{Kind: PartText, Text: content.Str}}
		}
	} else {
		parts, err := chatContent(content, param+".content", chatToolParts)
		if err != nil {
			return err
		}
		res.Result = parts
	}
	// A repeated result for the same call replaces the earlier one: a call
	// has one result.
	if n := len(d.r.Messages); n > 0 && d.r.Messages[n-1].Role == RoleUser {
		last := d.r.Messages[n-1].Parts
		for j := range last {
			if last[j].Kind == PartToolResult && last[j].CallID == res.CallID {
				last[j] = res
				return nil
			}
		}
	}
	d.appendParts(RoleUser, []Part{res})
	return nil
}

// appendParts adds parts as a turn of role, merging into the previous turn
// when it has the same role.
func (d *chatDecoder) appendParts(role Role, parts []Part) {
	if len(parts) == 0 {
		return
	}
	if n := len(d.r.Messages); n > 0 && d.r.Messages[n-1].Role == role {
		d.r.Messages[n-1].Parts = append(d.r.Messages[n-1].Parts, parts...)
		return
	}
	d.r.Messages = append(d.r.Messages, Message{Role: role, Parts: parts})
}

// chatResultsFirst moves tool results to the front, keeping the order
// within each group.
func chatResultsFirst(parts []Part) {
	firstOther := -1
	for i := range parts {
		if parts[i].Kind != PartToolResult {
			if firstOther < 0 {
				firstOther = i
			}
			continue
		}
		if firstOther >= 0 {
			p := parts[i]
			copy(parts[firstOther+1:i+1], parts[firstOther:i])
			parts[firstOther] = p
			firstOther++
		}
	}
}

// chatContent reads a content value (string, array of parts or null).
// Empty texts are dropped.
func chatContent(v gjson.Result, param string, allow chatRoleParts) ([]Part, error) {
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return nil, nil
	case v.Type == gjson.String:
		if v.Str == "" {
			return nil, nil
		}
		return []Part{{Kind: PartText, Text: v.Str}}, nil
	case v.IsArray():
	default:
		return nil, badRequest(param, "%s must be a string, an array of content parts or null", param)
	}
	var (
		parts []Part
		err   error
	)
	j := 0
	v.ForEach(func(_, cp gjson.Result) bool {
		var p *Part
		p, err = chatContentPart(cp, param+"["+strconv.Itoa(j)+"]", allow)
		if p != nil {
			parts = append(parts, *p)
		}
		j++
		return err == nil
	})
	return parts, err
}

func chatContentPart(cp gjson.Result, param string, allow chatRoleParts) (*Part, error) {
	if !cp.IsObject() {
		return nil, badRequest(param, "%s must be an object", param)
	}
	typ := cp.Get("type").String()
	var p *Part
	switch {
	case typ == "text" || typ == "refusal" && allow == chatAssistantParts:
		t := cp.Get(typ)
		if t.Type != gjson.String {
			return nil, badRequest(param+"."+typ, "%s.%s must be a string", param, typ)
		}
		if t.Str != "" {
			p = &Part{Kind: PartText, Text: t.Str}
		}
	case typ == "image_url" && (allow == chatUserParts || allow == chatToolParts):
		img, err := chatImage(cp, param)
		if err != nil {
			return nil, err
		}
		p = img
	case typ == "file" && allow == chatUserParts:
		f, err := chatFile(cp, param)
		if err != nil {
			return nil, err
		}
		p = f
	case typ == "input_audio":
		return nil, badRequest(param+".type", "audio input is not supported")
	case allow == chatSystemParts:
		return nil, badRequest(param+".type", "system and developer messages accept only text parts, got %q", typ)
	default:
		return nil, badRequest(param+".type", "content part type %q is not supported here", typ)
	}
	// cache_control is Anthropic's, sent by clients that know Claude; its
	// ttl does not survive (Part.Cache is a plain breakpoint).
	if p != nil && cp.Get("cache_control").IsObject() {
		p.Cache = true
	}
	return p, nil
}

func chatImage(cp gjson.Result, param string) (*Part, error) {
	iu := cp.Get("image_url")
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
		return &Part{Kind: PartImage, MediaType: mt, Data: data}, nil
	}
	if hasPrefixFold(u, "https://") || hasPrefixFold(u, "http://") {
		return &Part{Kind: PartImage, URL: u}, nil
	}
	return nil, badRequest(param+".image_url.url", "image URLs must be http(s) or base64 data URLs")
}

func chatFile(cp gjson.Result, param string) (*Part, error) {
	f := cp.Get("file")
	if fid := f.Get("file_id"); fid.Exists() && fid.Type != gjson.Null {
		return nil, badRequest(param+".file.file_id", "file_id references are not supported; send file_data")
	}
	fd := f.Get("file_data")
	if fd.Type != gjson.String || fd.Str == "" {
		return nil, badRequest(param+".file.file_data", "%s.file.file_data must be a non-empty string", param)
	}
	// OpenAI documents file_data as a data URL; bare base64 is taken as a
	// PDF, the one binary document type every upstream that takes
	// documents accepts.
	mt, data, isBase64 := "application/pdf", fd.Str, true
	if hasPrefixFold(fd.Str, "data:") {
		mt, data, isBase64 = parseDataURL(fd.Str)
	}
	if mt == "" || !isBase64 || data == "" {
		return nil, badRequest(param+".file.file_data", "file data URLs must look like data:<media type>;base64,<data>")
	}
	// Encoders decode plain text (Anthropic takes it as text); bad base64
	// is the client's fault, so it is found here.
	if mt == "text/plain" {
		if _, err := base64.StdEncoding.DecodeString(data); err != nil {
			return nil, badRequest(param+".file.file_data", "file_data is not valid base64")
		}
	}
	return &Part{Kind: PartFile, MediaType: mt, Data: data}, nil
}

// chatToolCalls reads an assistant message's tool_calls.
func chatToolCalls(v gjson.Result, param string) ([]Part, error) {
	if !v.Exists() || v.Type == gjson.Null {
		return nil, nil
	}
	if !v.IsArray() {
		return nil, badRequest(param, "%s must be an array", param)
	}
	var (
		parts []Part
		err   error
	)
	j := 0
	v.ForEach(func(_, call gjson.Result) bool {
		var p Part
		p, err = chatToolCall(call, param+"["+strconv.Itoa(j)+"]")
		parts = append(parts, p)
		j++
		return err == nil
	})
	return parts, err
}

func chatToolCall(call gjson.Result, param string) (Part, error) {
	if !call.IsObject() {
		return Part{}, badRequest(param, "%s must be an object", param)
	}
	if typ := call.Get("type"); typ.Exists() && typ.String() != "function" {
		return Part{}, badRequest(param+".type", "tool call type %q is not supported; only function is", typ.String())
	}
	id := call.Get("id")
	if id.Type != gjson.String || id.Str == "" {
		return Part{}, badRequest(param+".id", "%s.id must be a non-empty string", param)
	}
	name := call.Get("function.name")
	if name.Type != gjson.String || name.Str == "" {
		return Part{}, badRequest(param+".function.name", "%s.function.name must be a non-empty string", param)
	}
	args := "{}"
	switch a := call.Get("function.arguments"); {
	case !a.Exists() || a.Type == gjson.Null:
	case a.Type == gjson.String:
		s := strings.TrimSpace(a.Str)
		if s == "" {
			break
		}
		// A function's arguments are an object in every dialect; anything
		// else cannot be replayed faithfully.
		if !json.Valid([]byte(s)) || !gjson.Parse(s).IsObject() {
			return Part{}, badRequest(param+".function.arguments", "%s.function.arguments must be a JSON object encoded as a string", param)
		}
		args = s
	case a.IsObject(): // some clients send the object itself
		args = a.Raw
	default:
		return Part{}, badRequest(param+".function.arguments", "%s.function.arguments must be a JSON object encoded as a string", param)
	}
	return Part{Kind: PartToolCall, CallID: id.Str, Name: name.Str, Args: args}, nil
}
