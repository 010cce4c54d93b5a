package convert

import (
	"strings"

	"github.com/tidwall/gjson"
)

// This file reads a client's generateContent / streamGenerateContent body
// (Gemini CLI, the GenAI SDKs) into the neutral Request. The model and the
// stream flag are in the URL: the relay sets Request.Model and Stream. A
// Code Assist body ({model, project, request}) is read from its request.
//
// Rules worth knowing (docs/matrix.md):
//   - systemInstruction's text parts become System; contents' roles user
//     (and the legacy "function") and model become user and assistant turns.
//   - Parts: text; thought:true text is thinking; inlineData of an image is
//     an image, of a PDF or text a file (other media are refused);
//     fileData of an image with an http(s) URI is an image by URL (other
//     URIs, such as the Files API's, are refused: no other provider can
//     read them); functionCall and functionResponse are tool calls and
//     results; executableCode and codeExecutionResult are dropped.
//   - Gemini ties a result to its call by name, and by id where the client
//     gives one: a call without id gets "call_<name>_<n>" (n counts the
//     calls of the conversation, so every turn maps alike), a result
//     without id answers the oldest unanswered call of its name.
//   - A functionResponse's response {"output": s} is the text s, {"error":
//     s} the text s marked as an error; any other object is its JSON text.
//   - thoughtSignature (on any part) becomes a thinking part placed before
//     that part: it takes the signature of a thought part just before it
//     (the thinking the signature belongs to), else it is a thinking part
//     with the signature only. A value the relay wrapped (WrapSignature)
//     restores the foreign signature and its exact text; anything else is
//     Gemini's own state. On a thought part itself the signature stays on
//     that thinking part (Sig.ID geminiSigOnThought).
//   - Tools: functionDeclarations (parametersJsonSchema as is, parameters
//     in Gemini's OpenAPI form turned into JSON schema); googleSearch,
//     codeExecution, urlContext and the other built-in tools are dropped.
//   - toolConfig.functionCallingConfig: AUTO, ANY (one allowed function:
//     that tool; several: any tool, the subset is not carried), NONE.
//   - generationConfig: maxOutputTokens, temperature, topP, topK,
//     stopSequences, responseMimeType application/json with responseSchema
//     or responseJsonSchema, thinkingConfig (thinkingBudget -1 adaptive, 0
//     off, N a budget; thinkingLevel an effort; includeThoughts alone
//     adaptive). candidateCount above 1 is refused.
//   - Dropped: safetySettings, cachedContent, labels, the other
//     generationConfig fields (seed, penalties, logprobs, speechConfig...).

// geminiSigOnThought marks, in Sig.ID, a Gemini signature that rode on the
// thought part itself rather than on the part after the thinking.
const geminiSigOnThought = "thought"

// geminiDecoder keeps the call ids of one conversation.
type geminiDecoder struct {
	r     *Request
	calls int
	// open are the unanswered calls' ids, by function name, oldest first.
	open map[string][]string
}

// DecodeGemini reads a client's Gemini request body. Client faults are
// *RequestError.
func DecodeGemini(body []byte) (*Request, error) {
	if !gjson.ValidBytes(body) {
		return nil, badRequest("", "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, badRequest("", "request body must be a JSON object")
	}
	if inner := root.Get("request"); inner.IsObject() && !root.Get("contents").Exists() {
		root = inner // Code Assist envelope
	}
	if inner := root.Get("generateContentRequest"); inner.IsObject() && !root.Get("contents").Exists() {
		root = inner // countTokens' form that counts a whole request
	}
	r := &Request{}
	if err := decodeGeminiSystem(r, geminiField(root, "systemInstruction", "system_instruction")); err != nil {
		return nil, err
	}
	d := &geminiDecoder{r: r, open: map[string][]string{}}
	contents := root.Get("contents")
	if contents.Exists() && !contents.IsArray() {
		return nil, badRequest("contents", "contents must be an array")
	}
	var err error
	i := 0
	contents.ForEach(func(_, c gjson.Result) bool {
		err = d.content(c, "contents["+itoa(i)+"]")
		i++
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if err := decodeGeminiTools(r, root.Get("tools")); err != nil {
		return nil, err
	}
	decodeGeminiToolConfig(r, geminiField(root, "toolConfig", "tool_config"))
	if err := decodeGeminiGeneration(r, geminiField(root, "generationConfig", "generation_config")); err != nil {
		return nil, err
	}
	return r, nil
}

// geminiField reads a field by its JSON name or its proto name.
func geminiField(v gjson.Result, camel, snake string) gjson.Result {
	if f := v.Get(camel); f.Exists() {
		return f
	}
	return v.Get(snake)
}

func decodeGeminiSystem(r *Request, si gjson.Result) error {
	switch {
	case !si.Exists() || si.Type == gjson.Null:
		return nil
	case si.Type == gjson.String: // the SDKs accept a bare string
		r.System = append(r.System, si.Str)
		return nil
	case !si.IsObject():
		return badRequest("systemInstruction", "systemInstruction must be a Content object")
	}
	si.Get("parts").ForEach(func(_, p gjson.Result) bool {
		if t := p.Get("text"); t.Type == gjson.String && t.Str != "" {
			r.System = append(r.System, t.Str)
		}
		return true
	})
	return nil
}

// content reads one Content into the conversation.
func (d *geminiDecoder) content(c gjson.Result, param string) error {
	if !c.IsObject() {
		return badRequest(param, "a content must be an object")
	}
	var role Role
	switch c.Get("role").String() {
	case "", "user", "function":
		role = RoleUser
	case "model":
		role = RoleAssistant
	default:
		return badRequest(param+".role", "role %q is not one of user, model", c.Get("role").String())
	}
	parts := c.Get("parts")
	if parts.Exists() && !parts.IsArray() {
		return badRequest(param+".parts", "parts must be an array")
	}
	msg := Message{Role: role}
	var err error
	j := 0
	parts.ForEach(func(_, p gjson.Result) bool {
		err = d.part(&msg, p, param+".parts["+itoa(j)+"]")
		j++
		return err == nil
	})
	if err != nil || len(msg.Parts) == 0 {
		return err
	}
	if n := len(d.r.Messages); n > 0 && d.r.Messages[n-1].Role == role {
		d.r.Messages[n-1].Parts = append(d.r.Messages[n-1].Parts, msg.Parts...)
	} else {
		d.r.Messages = append(d.r.Messages, msg)
	}
	return nil
}

// part reads one Part into msg.
func (d *geminiDecoder) part(msg *Message, p gjson.Result, param string) error {
	if !p.IsObject() {
		return badRequest(param, "a part must be an object")
	}
	thought := p.Get("thought").Bool()
	text := p.Get("text")
	if sig := geminiField(p, "thoughtSignature", "thought_signature").String(); sig != "" && msg.Role == RoleAssistant {
		if thought && text.Type == gjson.String {
			msg.Parts = append(msg.Parts, geminiSignedThought(sig, text.Str))
			return nil
		}
		for _, one := range splitGeminiSigs(sig) {
			addGeminiSignature(&msg.Parts, one)
		}
		if text.Exists() && text.Str == "" {
			return nil // a signature-only part
		}
	}
	switch {
	case text.Exists():
		t := text
		if t.Type != gjson.String {
			return badRequest(param+".text", "text must be a string")
		}
		if thought {
			if msg.Role == RoleAssistant && t.Str != "" {
				msg.Parts = append(msg.Parts, Part{Kind: PartThinking, Text: t.Str})
			}
			return nil
		}
		msg.Parts = append(msg.Parts, Part{Kind: PartText, Text: t.Str})
	case p.Get("inlineData").Exists() || p.Get("inline_data").Exists():
		part, err := decodeGeminiBlob(geminiField(p, "inlineData", "inline_data"), param+".inlineData")
		if err != nil {
			return err
		}
		msg.Parts = append(msg.Parts, part)
	case p.Get("fileData").Exists() || p.Get("file_data").Exists():
		part, err := decodeGeminiFileData(geminiField(p, "fileData", "file_data"), param+".fileData")
		if err != nil {
			return err
		}
		msg.Parts = append(msg.Parts, part)
	case p.Get("functionCall").Exists() || p.Get("function_call").Exists():
		return d.call(msg, geminiField(p, "functionCall", "function_call"), param+".functionCall")
	case p.Get("functionResponse").Exists() || p.Get("function_response").Exists():
		return d.result(msg, geminiField(p, "functionResponse", "function_response"), param+".functionResponse")
	}
	return nil
}

// geminiSig reads a thoughtSignature value: a wrapped foreign signature
// (with its text, and Anthropic's redacted flag), else Gemini's own.
func geminiSig(value string) (sig Signature, text string, wrapped, redacted bool) {
	sig, text, wrapped = UnwrapSignature(value)
	if !wrapped {
		return Signature{Origin: OriginGemini, Value: value}, "", false, false
	}
	if sig.Origin == OriginAnthropic && sig.ID == redactedSigID {
		sig.ID, redacted = "", true
	}
	return sig, text, true, redacted
}

// geminiSignedThought is a thought part that carries its own signature.
func geminiSignedThought(value, text string) Part {
	sig, wtext, wrapped, redacted := geminiSig(value)
	if wrapped {
		return Part{Kind: PartThinking, Text: wtext, Sig: sig, Redacted: redacted}
	}
	sig.ID = geminiSigOnThought
	return Part{Kind: PartThinking, Text: text, Sig: sig}
}

// addGeminiSignature records a thoughtSignature found on a part other than
// a thought: on the unsigned thinking part just before it, else as a
// thinking part of its own.
func addGeminiSignature(parts *[]Part, value string) {
	sig, text, wrapped, redacted := geminiSig(value)
	ps := *parts
	if n := len(ps); n > 0 && ps[n-1].Kind == PartThinking && ps[n-1].Sig.Origin == "" {
		ps[n-1].Sig, ps[n-1].Redacted = sig, redacted
		if wrapped {
			ps[n-1].Text = text
		}
		return
	}
	*parts = append(ps, Part{Kind: PartThinking, Text: text, Sig: sig, Redacted: redacted})
}

// decodeGeminiBlob reads inlineData: an image, or a document.
func decodeGeminiBlob(b gjson.Result, param string) (Part, error) {
	mt, data := b.Get("mimeType").String(), b.Get("data").String()
	if mt == "" {
		mt = b.Get("mime_type").String()
	}
	switch {
	case data == "":
		return Part{}, badRequest(param+".data", "inlineData needs data")
	case strings.HasPrefix(mt, "image/"):
		return Part{Kind: PartImage, MediaType: mt, Data: data}, nil
	case mt == "application/pdf" || strings.HasPrefix(mt, "text/"):
		return Part{Kind: PartFile, MediaType: mt, Data: data}, nil
	}
	return Part{}, badRequest(param+".mimeType", "inlineData of type %q is not supported for this model's provider", mt)
}

// decodeGeminiFileData reads fileData: an image by http(s) URL.
func decodeGeminiFileData(f gjson.Result, param string) (Part, error) {
	uri, mt := f.Get("fileUri").String(), f.Get("mimeType").String()
	if uri == "" {
		uri = f.Get("file_uri").String()
	}
	if mt != "" && !strings.HasPrefix(mt, "image/") {
		return Part{}, badRequest(param+".mimeType", "fileData of type %q is not supported for this model's provider", mt)
	}
	if !strings.HasPrefix(uri, "https://") && !strings.HasPrefix(uri, "http://") {
		return Part{}, badRequest(param+".fileUri", "fileData needs an http(s) fileUri for this model's provider")
	}
	return Part{Kind: PartImage, URL: uri}, nil
}

// geminiCallID is the id of a call that came without one: stable for the
// same conversation, unique within it.
func geminiCallID(name, base string, n int) string {
	id := "call_" + name
	if base != "" {
		id += "_" + base
	}
	return SanitizeCallID(id + "_" + itoa(n))
}

func (d *geminiDecoder) call(msg *Message, fc gjson.Result, param string) error {
	name := fc.Get("name").String()
	if name == "" {
		return badRequest(param+".name", "a functionCall needs a name")
	}
	id := fc.Get("id").String()
	if id == "" {
		id = geminiCallID(name, "", d.calls)
	}
	d.calls++
	d.open[name] = append(d.open[name], id)
	args := "{}"
	if a := fc.Get("args"); a.IsObject() {
		args = a.Raw
	} else if a.Exists() && a.Type != gjson.Null {
		return badRequest(param+".args", "functionCall args must be an object")
	}
	msg.Parts = append(msg.Parts, Part{Kind: PartToolCall, CallID: id, Name: name, Args: args})
	return nil
}

func (d *geminiDecoder) result(msg *Message, fr gjson.Result, param string) error {
	name := fr.Get("name").String()
	if name == "" {
		return badRequest(param+".name", "a functionResponse needs a name")
	}
	id := fr.Get("id").String()
	open := d.open[name]
	switch {
	case id != "":
		for i, o := range open {
			if o == id {
				d.open[name] = append(open[:i:i], open[i+1:]...)
				break
			}
		}
	case len(open) > 0:
		id, d.open[name] = open[0], open[1:]
	default:
		id = geminiCallID(name, "", d.calls)
		d.calls++
	}
	res, isErr := geminiResult(fr.Get("response"))
	fr.Get("parts").ForEach(func(_, p gjson.Result) bool {
		if b := geminiField(p, "inlineData", "inline_data"); b.Exists() {
			if img, err := decodeGeminiBlob(b, param); err == nil && img.Kind == PartImage {
				res = append(res, img)
			}
		}
		return true
	})
	msg.Parts = append(msg.Parts, Part{Kind: PartToolResult, CallID: id, Name: name, Result: res, IsError: isErr})
	return nil
}

// geminiResult reads a functionResponse's response object.
func geminiResult(resp gjson.Result) ([]Part, bool) {
	if !resp.Exists() || resp.Type == gjson.Null {
		return nil, false
	}
	if resp.IsObject() {
		keys := 0
		resp.ForEach(func(_, _ gjson.Result) bool { keys++; return true })
		if out := resp.Get("output"); keys == 1 && out.Type == gjson.String {
			return []Part{{Kind: PartText, Text: out.Str}}, false
		}
		if e := resp.Get("error"); keys == 1 && e.Exists() {
			text := e.Raw
			if e.Type == gjson.String {
				text = e.Str
			}
			return []Part{{Kind: PartText, Text: text}}, true
		}
	}
	if resp.Type == gjson.String {
		return []Part{{Kind: PartText, Text: resp.Str}}, false
	}
	return []Part{{Kind: PartText, Text: resp.Raw}}, false
}

// decodeGeminiTools reads the function declarations; built-in tools
// (googleSearch, codeExecution, urlContext...) are dropped.
func decodeGeminiTools(r *Request, tools gjson.Result) error {
	if !tools.Exists() || tools.Type == gjson.Null {
		return nil
	}
	if !tools.IsArray() {
		return badRequest("tools", "tools must be an array")
	}
	var err error
	i := 0
	tools.ForEach(func(_, t gjson.Result) bool {
		j := 0
		geminiField(t, "functionDeclarations", "function_declarations").ForEach(func(_, fd gjson.Result) bool {
			p := "tools[" + itoa(i) + "].functionDeclarations[" + itoa(j) + "]"
			j++
			name := fd.Get("name").String()
			if name == "" {
				err = badRequest(p+".name", "a function declaration needs a name")
				return false
			}
			tool := Tool{Name: name, Description: fd.Get("description").String()}
			if s := geminiField(fd, "parametersJsonSchema", "parameters_json_schema"); s.IsObject() {
				tool.Schema = []byte(s.Raw)
			} else if s := fd.Get("parameters"); s.IsObject() {
				tool.Schema = geminiSchemaToJSON([]byte(s.Raw))
			}
			r.Tools = append(r.Tools, tool)
			return true
		})
		i++
		return err == nil
	})
	return err
}

func decodeGeminiToolConfig(r *Request, tc gjson.Result) {
	fc := geminiField(tc, "functionCallingConfig", "function_calling_config")
	names := geminiField(fc, "allowedFunctionNames", "allowed_function_names").Array()
	switch strings.ToUpper(fc.Get("mode").String()) {
	case "AUTO", "VALIDATED":
		r.ToolChoice.Mode = "auto"
	case "NONE":
		r.ToolChoice.Mode = "none"
	case "ANY":
		r.ToolChoice.Mode = "required"
		if len(names) == 1 && names[0].String() != "" {
			r.ToolChoice.Mode, r.ToolChoice.Name = "tool", names[0].String()
		}
	}
}

// decodeGeminiGeneration reads generationConfig.
func decodeGeminiGeneration(r *Request, g gjson.Result) error {
	if !g.Exists() || g.Type == gjson.Null {
		return nil
	}
	if !g.IsObject() {
		return badRequest("generationConfig", "generationConfig must be an object")
	}
	if v := geminiField(g, "maxOutputTokens", "max_output_tokens"); v.Exists() && v.Type != gjson.Null {
		if v.Type != gjson.Number || v.Int() < 1 || v.Int() > maxTokenLimit {
			return badRequest("generationConfig.maxOutputTokens", "maxOutputTokens must be a positive integer")
		}
		r.MaxTokens = v.Int()
	}
	for _, f := range []struct {
		camel, snake string
		dst          **float64
	}{{"temperature", "temperature", &r.Temperature}, {"topP", "top_p", &r.TopP}} {
		if v := geminiField(g, f.camel, f.snake); v.Exists() && v.Type != gjson.Null {
			if v.Type != gjson.Number {
				return badRequest("generationConfig."+f.camel, "%s must be a number", f.camel)
			}
			x := v.Float()
			*f.dst = &x
		}
	}
	if v := geminiField(g, "topK", "top_k"); v.Exists() && v.Type != gjson.Null {
		if v.Type != gjson.Number || v.Int() < 1 {
			return badRequest("generationConfig.topK", "topK must be a positive integer")
		}
		k := v.Int()
		r.TopK = &k
	}
	geminiField(g, "stopSequences", "stop_sequences").ForEach(func(_, s gjson.Result) bool {
		if s.Type == gjson.String && s.Str != "" {
			r.Stop = append(r.Stop, s.Str)
		}
		return true
	})
	if n := geminiField(g, "candidateCount", "candidate_count"); n.Int() > 1 {
		return badRequest("generationConfig.candidateCount", "candidateCount above 1 is not supported for this model's provider")
	}
	decodeGeminiFormat(r, g)
	decodeGeminiThinking(r, geminiField(g, "thinkingConfig", "thinking_config"))
	return nil
}

func decodeGeminiFormat(r *Request, g gjson.Result) {
	if geminiField(g, "responseMimeType", "response_mime_type").String() != "application/json" {
		return
	}
	r.Format = &Format{JSON: true}
	if s := geminiField(g, "responseJsonSchema", "response_json_schema"); s.IsObject() {
		r.Format.Schema = []byte(s.Raw)
	} else if s := geminiField(g, "responseSchema", "response_schema"); s.IsObject() {
		r.Format.Schema = geminiSchemaToJSON([]byte(s.Raw))
	}
}

func decodeGeminiThinking(r *Request, tc gjson.Result) {
	if !tc.IsObject() {
		return
	}
	budget := geminiField(tc, "thinkingBudget", "thinking_budget")
	level := strings.ToLower(geminiField(tc, "thinkingLevel", "thinking_level").String())
	switch {
	case budget.Type == gjson.Number && budget.Int() < 0:
		r.Thinking = Thinking{Enabled: true, Adaptive: true}
	case budget.Type == gjson.Number && budget.Int() == 0:
		r.Thinking = Thinking{}
	case budget.Type == gjson.Number:
		r.Thinking = Thinking{Enabled: true, Budget: budget.Int()}
	case level == "minimal" || level == "low" || level == "medium" || level == "high":
		r.Thinking = Thinking{Enabled: true, Effort: level}
	case geminiField(tc, "includeThoughts", "include_thoughts").Bool():
		r.Thinking = Thinking{Enabled: true, Adaptive: true}
	}
}
