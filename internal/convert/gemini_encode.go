package convert

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// This file writes the neutral Request as an upstream generateContent body
// (public API and, inside Code Assist's {model, project, request}
// envelope, Code Assist). The model goes in the URL, not in the body.
//
// Rules worth knowing (docs/matrix.md):
//   - System becomes systemInstruction (one text part per block); turns
//     become contents with roles user and model.
//   - Tool calls are functionCall parts with their id (Gemini echoes it),
//     name and args; tool results functionResponse parts with the id and
//     the function's name (looked up from the conversation's calls: other
//     dialects give the call id only), response {"output": text} or, for a
//     failed tool, {"error": text}. A result's images follow it as
//     inlineData parts. A result whose call is not in the conversation is
//     sent as text (Gemini cannot tie it to anything).
//   - Custom (freeform) tools are functions taking {"input": string}; their
//     calls' raw input is sent as that object (the relay maps answers back
//     with UncustomCalls).
//   - Thinking is sent only when Gemini made it: its thoughtSignature goes
//     back onto the part after the thinking (a functionCall, or text), as
//     Gemini sent it; a signature that rode on a thought part goes back on
//     that thought. Thought text is not sent (Gemini needs only the
//     signatures). Foreign thinking is dropped. A model turn with function
//     calls of which none carries a signature (the turn came from another
//     pool, or a client that lost it) gets Google's documented placeholder
//     geminiSkipSignature on its first call, so Gemini 3 does not refuse it.
//   - Tool schemas are cleaned for Gemini (CleanGeminiSchema).
//   - Thinking becomes thinkingConfig with includeThoughts: for Gemini 3
//     models thinkingLevel (minimal and low effort "low", any other
//     "high"), for older ones thinkingBudget (Budget, else the budget of
//     Effort, adaptive -1), clamped to 128..32768 (24576 for Flash).
//     Without thinking the model's default applies.
//   - Format becomes responseMimeType application/json (and responseSchema,
//     cleaned); with tools, Gemini before 3 refuses it, so it is dropped
//     there.
//   - Dropped: cache breakpoints, User, CacheKey, Store, NoParallel, stop
//     sequences beyond Gemini's 5. PreviousResponseID is a *RequestError.

// geminiSkipSignature is the thoughtSignature Google documents for function
// calls that did not come from Gemini: it skips the validator.
const geminiSkipSignature = "skip_thought_signature_validator"

// geminiMaxStops is the most stopSequences Gemini takes.
const geminiMaxStops = 5

// geminiCustomSchema is the parameters schema of a custom tool.
const geminiCustomSchema = `{"type":"object","properties":{"input":{"type":"string","description":"The raw input of the tool."}},"required":["input"]}`

type (
	geminiRequest struct {
		Contents          []geminiContent   `json:"contents"`
		SystemInstruction *geminiContent    `json:"systemInstruction,omitempty"`
		Tools             []geminiTool      `json:"tools,omitempty"`
		ToolConfig        *geminiToolConfig `json:"toolConfig,omitempty"`
		GenerationConfig  *geminiGenConfig  `json:"generationConfig,omitempty"`
	}
	geminiContent struct {
		Role  string       `json:"role,omitempty"`
		Parts []geminiPart `json:"parts"`
	}
	geminiPart struct {
		Text             *string             `json:"text,omitempty"`
		Thought          bool                `json:"thought,omitempty"`
		InlineData       *geminiBlob         `json:"inlineData,omitempty"`
		FileData         *geminiFileData     `json:"fileData,omitempty"`
		FunctionCall     *geminiFunctionCall `json:"functionCall,omitempty"`
		FunctionResponse *geminiFunctionResp `json:"functionResponse,omitempty"`
		ThoughtSignature string              `json:"thoughtSignature,omitempty"`
	}
	geminiBlob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	geminiFileData struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	}
	geminiFunctionCall struct {
		ID   string          `json:"id,omitempty"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	geminiFunctionResp struct {
		ID       string         `json:"id,omitempty"`
		Name     string         `json:"name"`
		Response map[string]any `json:"response"`
	}
	geminiTool struct {
		FunctionDeclarations []geminiFunctionDecl `json:"functionDeclarations"`
	}
	geminiFunctionDecl struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	}
	geminiToolConfig struct {
		FunctionCallingConfig geminiCallingConfig `json:"functionCallingConfig"`
	}
	geminiCallingConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	}
	geminiGenConfig struct {
		MaxOutputTokens  int64           `json:"maxOutputTokens,omitempty"`
		Temperature      *float64        `json:"temperature,omitempty"`
		TopP             *float64        `json:"topP,omitempty"`
		TopK             *int64          `json:"topK,omitempty"`
		StopSequences    []string        `json:"stopSequences,omitempty"`
		ResponseMimeType string          `json:"responseMimeType,omitempty"`
		ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
		ThinkingConfig   *geminiThinking `json:"thinkingConfig,omitempty"`
	}
	geminiThinking struct {
		IncludeThoughts bool   `json:"includeThoughts,omitempty"`
		ThinkingBudget  *int64 `json:"thinkingBudget,omitempty"`
		ThinkingLevel   string `json:"thinkingLevel,omitempty"`
	}
)

// EncodeGemini writes r as an upstream generateContent body.
func EncodeGemini(r *Request) ([]byte, error) {
	if r.PreviousResponseID != "" {
		return nil, badRequest("previous_response_id", "previous_response_id needs an OpenAI account: this relay keeps no conversation; send the whole input")
	}
	out := geminiRequest{Contents: []geminiContent{}}
	var sys []geminiPart
	for _, s := range r.System {
		if s != "" {
			sys = append(sys, geminiTextPart(s))
		}
	}
	if len(sys) > 0 {
		out.SystemInstruction = &geminiContent{Parts: sys}
	}
	names := callNames(r.Messages)
	for _, m := range r.Messages {
		var parts []geminiPart
		role := "user"
		if m.Role == RoleAssistant {
			role, parts = "model", encodeGeminiModelParts(m.Parts, geminiUpstream)
		} else {
			parts = encodeGeminiUserParts(m.Parts, names)
		}
		if len(parts) > 0 {
			out.Contents = append(out.Contents, geminiContent{Role: role, Parts: parts})
		}
	}
	encodeGeminiTools(&out, r)
	out.GenerationConfig = encodeGeminiGeneration(r)
	b, err := marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode gemini request: %w", err)
	}
	return b, nil
}

func geminiTextPart(s string) geminiPart { return geminiPart{Text: &s} }

// callNames maps every tool call's id to its function's name.
func callNames(msgs []Message) map[string]string {
	names := map[string]string{}
	for _, m := range msgs {
		for _, p := range m.Parts {
			if p.Kind == PartToolCall {
				names[p.CallID] = p.Name
			}
		}
	}
	return names
}

// geminiAudience says for whom model parts are written.
type geminiAudience uint8

const (
	// geminiUpstream: Gemini itself (EncodeGemini): only Gemini's own
	// signatures, no thought text.
	geminiUpstream geminiAudience = iota
	// geminiClient: a Gemini client (WriteGemini): thought text shown,
	// foreign signatures wrapped.
	geminiClient
)

// encodeGeminiModelParts writes a model turn's parts; a thinking part's
// signature goes onto the next part written.
func encodeGeminiModelParts(parts []Part, to geminiAudience) []geminiPart {
	var out []geminiPart
	pending := ""
	for _, p := range parts {
		var gp geminiPart
		switch p.Kind {
		case PartThinking:
			sig := geminiPartSig(p, to)
			onThought := p.Sig.Origin == OriginGemini && p.Sig.ID == geminiSigOnThought
			if to == geminiClient && p.Text != "" || onThought && sig != "" {
				th := geminiTextPart(p.Text)
				th.Thought = true
				if onThought {
					th.ThoughtSignature = sig
					sig = ""
				}
				out = append(out, th)
			}
			if sig != "" {
				var flush string
				pending, flush = queueGeminiSig(pending, sig)
				if flush != "" {
					sp := geminiTextPart("")
					sp.ThoughtSignature = flush
					out = append(out, sp)
				}
			}
			continue
		case PartText:
			if p.Text == "" && pending == "" {
				continue
			}
			gp = geminiTextPart(p.Text)
		case PartToolCall:
			name := p.Name
			if to == geminiUpstream {
				name = geminiNames.upstreamName(name)
			}
			gp.FunctionCall = &geminiFunctionCall{ID: p.CallID, Name: name, Args: geminiArgs(p)}
		case PartImage, PartFile:
			gp = geminiMedia(p)
		default:
			continue
		}
		gp.ThoughtSignature, pending = pending, ""
		out = append(out, gp)
	}
	if pending != "" {
		sp := geminiTextPart("")
		sp.ThoughtSignature = pending
		out = append(out, sp)
	}
	if to == geminiUpstream {
		skipSignatureValidator(out)
	}
	return out
}

// geminiSigChain joins the wrapped signatures of consecutive thinking parts
// in one thoughtSignature. Wrapped values hold only base64url and dots.
const geminiSigChain = "~"

// queueGeminiSig adds sig, a thinking part's state, to pending, the state
// waiting for the next part written. Claude answers a thinking block then a
// redacted_thinking block; Gemini clients keep no thought part (Gemini CLI
// drops them from its history), so both must ride on the one part after
// them: wrapped values are chained (splitGeminiSigs undoes it). A value
// that is not wrapped (Gemini's own) cannot be chained: pending is then
// returned as flush, for a signature-only part of its own.
func queueGeminiSig(pending, sig string) (next, flush string) {
	switch {
	case pending == "":
		return sig, ""
	case strings.HasPrefix(pending, sigPrefix) && strings.HasPrefix(sig, sigPrefix):
		return pending + geminiSigChain + sig, ""
	}
	return sig, pending
}

// splitGeminiSigs is the signatures of a thoughtSignature value: the
// wrapped ones queueGeminiSig chained, else the value itself.
func splitGeminiSigs(v string) []string {
	if !strings.HasPrefix(v, sigPrefix) || !strings.Contains(v, geminiSigChain) {
		return []string{v}
	}
	sigs := strings.Split(v, geminiSigChain)
	for _, s := range sigs {
		if !strings.HasPrefix(s, sigPrefix) {
			return []string{v}
		}
	}
	return sigs
}

// geminiPartSig is the thoughtSignature a thinking part gives its audience.
func geminiPartSig(p Part, to geminiAudience) string {
	switch {
	case p.Sig.Origin == OriginGemini:
		return p.Sig.Value
	case to == geminiUpstream || p.Sig.Origin == "":
		return ""
	case p.Redacted && p.Sig.Origin == OriginAnthropic:
		sig := p.Sig
		sig.ID = redactedSigID
		return WrapSignature(sig, p.Text)
	}
	return WrapSignature(p.Sig, p.Text)
}

// skipSignatureValidator gives the first call of a turn whose calls carry
// no signature the documented placeholder.
func skipSignatureValidator(parts []geminiPart) {
	first := -1
	for i := range parts {
		if parts[i].FunctionCall == nil {
			continue
		}
		if parts[i].ThoughtSignature != "" {
			return
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		parts[first].ThoughtSignature = geminiSkipSignature
	}
}

// geminiArgs is a call's args object: the JSON object, a custom call's
// raw input as {"input": ...}.
func geminiArgs(p Part) json.RawMessage {
	a := strings.TrimSpace(p.Args)
	switch {
	case !p.Custom && a == "":
		return json.RawMessage("{}")
	case !p.Custom && gjson.Valid(a) && gjson.Parse(a).IsObject():
		return json.RawMessage(a)
	}
	return append(appendString([]byte(`{"input":`), p.Args), '}')
}

// geminiMedia is an image or document part: inline data, or an image URL
// (a data: URL inlined, http(s) as fileData).
func geminiMedia(p Part) geminiPart {
	if p.URL == "" {
		return geminiPart{InlineData: &geminiBlob{MimeType: p.MediaType, Data: p.Data}}
	}
	if rest, ok := strings.CutPrefix(p.URL, "data:"); ok {
		meta, data, _ := strings.Cut(rest, ",")
		mt, _ := strings.CutSuffix(meta, ";base64")
		return geminiPart{InlineData: &geminiBlob{MimeType: mt, Data: data}}
	}
	return geminiPart{FileData: &geminiFileData{MimeType: imageTypeOf(p.URL), FileURI: p.URL}}
}

// imageTypeOf guesses an image URL's media type from its extension.
func imageTypeOf(url string) string {
	u, _, _ := strings.Cut(url, "?")
	switch ext := strings.ToLower(u[strings.LastIndexByte(u, '.')+1:]); ext {
	case "png", "webp", "gif", "heic", "heif":
		return "image/" + ext
	}
	return "image/jpeg"
}

// encodeGeminiUserParts writes a user turn: text, media, tool results.
func encodeGeminiUserParts(parts []Part, names map[string]string) []geminiPart {
	var out []geminiPart
	for _, p := range parts {
		switch p.Kind {
		case PartText:
			if p.Text != "" {
				out = append(out, geminiTextPart(p.Text))
			}
		case PartImage, PartFile:
			out = append(out, geminiMedia(p))
		case PartToolResult:
			out = append(out, geminiResultParts(p, names)...)
		}
	}
	return out
}

// geminiResultParts is a tool result as a functionResponse and its images.
func geminiResultParts(p Part, names map[string]string) []geminiPart {
	var texts []string
	var media []geminiPart
	for _, r := range p.Result {
		if r.Kind == PartImage {
			media = append(media, geminiMedia(r))
		} else {
			texts = append(texts, r.Text)
		}
	}
	text := strings.Join(texts, "\n")
	name := names[p.CallID]
	if name == "" {
		name = p.Name
	}
	if name == "" {
		return append([]geminiPart{geminiTextPart("Result of tool call " + p.CallID + ":\n" + text)}, media...)
	}
	key := "output"
	if p.IsError {
		key = "error"
	}
	fr := &geminiFunctionResp{ID: p.CallID, Name: geminiNames.upstreamName(name), Response: map[string]any{key: text}}
	return append([]geminiPart{{FunctionResponse: fr}}, media...)
}

// encodeGeminiTools writes the function declarations and toolConfig.
func encodeGeminiTools(out *geminiRequest, r *Request) {
	if len(r.Tools) == 0 {
		return
	}
	decls := make([]geminiFunctionDecl, 0, len(r.Tools))
	for _, t := range r.Tools {
		d := geminiFunctionDecl{Name: geminiNames.upstreamName(t.Name), Description: t.Description}
		schema := t.Schema
		if t.Custom {
			schema = []byte(geminiCustomSchema)
			if len(t.Format) > 0 {
				d.Description = strings.TrimSpace(d.Description + "\n\nThe input must follow this format: " + string(t.Format))
			}
		}
		if len(schema) > 0 {
			if s := CleanGeminiSchema(schema); s != nil {
				d.Parameters = s
			}
		}
		decls = append(decls, d)
	}
	out.Tools = []geminiTool{{FunctionDeclarations: decls}}
	var cfg geminiCallingConfig
	switch r.ToolChoice.Mode {
	case "auto":
		cfg.Mode = "AUTO"
	case "none":
		cfg.Mode = "NONE"
	case "required":
		cfg.Mode = "ANY"
	case "tool":
		cfg.Mode, cfg.AllowedFunctionNames = "ANY", []string{geminiNames.upstreamName(r.ToolChoice.Name)}
	default:
		return
	}
	out.ToolConfig = &geminiToolConfig{FunctionCallingConfig: cfg}
}

// encodeGeminiGeneration writes generationConfig (nil when empty).
func encodeGeminiGeneration(r *Request) *geminiGenConfig {
	g := geminiGenConfig{MaxOutputTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP, TopK: r.TopK}
	g.StopSequences = r.Stop
	if len(g.StopSequences) > geminiMaxStops {
		g.StopSequences = g.StopSequences[:geminiMaxStops]
	}
	gen := geminiGeneration(r.Model)
	if f := r.Format; f != nil && f.JSON && (len(r.Tools) == 0 || gen >= 3) {
		g.ResponseMimeType = "application/json"
		if len(f.Schema) > 0 {
			g.ResponseSchema = CleanGeminiSchema(f.Schema)
		}
	}
	if t := r.Thinking; t.Enabled {
		g.ThinkingConfig = geminiThinkingConfig(t, r.Model, gen)
	}
	if g.MaxOutputTokens == 0 && g.Temperature == nil && g.TopP == nil && g.TopK == nil && len(g.StopSequences) == 0 &&
		g.ResponseMimeType == "" && g.ThinkingConfig == nil {
		return nil
	}
	return &g
}

// geminiThinkingConfig maps the client's thinking onto the model's knob.
func geminiThinkingConfig(t Thinking, model string, gen int) *geminiThinking {
	tc := &geminiThinking{IncludeThoughts: true}
	if gen >= 3 {
		effort := t.Effort
		if effort == "" && !t.Adaptive {
			effort = BudgetEffort(t.Budget)
		}
		tc.ThinkingLevel = "high"
		if effort == "minimal" || effort == "low" {
			tc.ThinkingLevel = "low"
		}
		return tc
	}
	budget := t.Budget
	if budget == 0 {
		budget = EffortBudget(t.Effort)
	}
	if t.Adaptive || budget == 0 {
		budget = -1
	} else {
		maxBudget := int64(32768)
		if strings.Contains(model, "flash") {
			maxBudget = 24576
		}
		budget = min(max(budget, 128), maxBudget)
	}
	tc.ThinkingBudget = &budget
	return tc
}

// geminiGeneration is the major version of a Gemini model name
// ("gemini-2.5-pro" 2, "models/gemini-3-pro-preview" 3), 0 when unknown.
func geminiGeneration(model string) int {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(model, "models/"), "gemini-")
	if !ok {
		return 0
	}
	n := 0
	for i := 0; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && n < 1000; i++ {
		n = n*10 + int(rest[i]-'0')
	}
	return n
}
