package convert

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The upstream Messages request EncodeMessages writes, in the field order
// the API documents.
type amRequest struct {
	Model         string        `json:"model"`
	MaxTokens     int64         `json:"max_tokens"`
	System        []amBlock     `json:"system,omitempty"`
	Messages      []amMessage   `json:"messages"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Temperature   *float64      `json:"temperature,omitempty"`
	TopP          *float64      `json:"top_p,omitempty"`
	TopK          *int64        `json:"top_k,omitempty"`
	Metadata      *metadata     `json:"metadata,omitempty"`
	Tools         []tool        `json:"tools,omitempty"`
	ToolChoice    *toolChoice   `json:"tool_choice,omitempty"`
	Thinking      *amThinking   `json:"thinking,omitempty"`
	OutputConfig  *amOutputConf `json:"output_config,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
}

type amMessage struct {
	Role    string    `json:"role"`
	Content []amBlock `json:"content"`
}

// amBlock is any content block; the pointer fields are the ones a block
// type requires even when empty.
type amBlock struct {
	Type         string          `json:"type"`
	Text         *string         `json:"text,omitempty"`
	Thinking     *string         `json:"thinking,omitempty"`
	Signature    *string         `json:"signature,omitempty"`
	Data         string          `json:"data,omitempty"`
	Source       *source         `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      json.RawMessage `json:"content,omitempty"`
	IsError      bool            `json:"is_error,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type amThinking struct {
	Type         string `json:"type"`
	BudgetTokens int64  `json:"budget_tokens,omitempty"`
}

type amOutputConf struct {
	Effort string `json:"effort,omitempty"`
}

// ephemeral is the cache_control of a Part.Cache breakpoint.
var ephemeral = json.RawMessage(`{"type":"ephemeral"}`)

// customToolSchema is the input_schema a custom (freeform) tool is sent
// with: Anthropic has no freeform tools, so the raw input travels as one
// string property "input".
const customToolSchema = `{"type":"object","properties":{"input":{"type":"string"}},"required":["input"]}`

// minThinkingBudget is Anthropic's smallest budget_tokens.
const minThinkingBudget = 1024

// EncodeMessages writes r as an upstream Anthropic Messages request body,
// or returns a *RequestError for what no Anthropic account can honour.
//
//   - Thinking parts are sent only when Sig.Origin is OriginAnthropic (as
//     thinking, or redacted_thinking when Redacted); foreign thinking is
//     dropped. Extended thinking refuses temperature other than 1, top_p
//     below 0.95, top_k and a forced tool choice (*RequestError naming the
//     parameter). When the final assistant turn (a prefill, or the turn with
//     tool_use) does not start with an Anthropic-signed thinking block, the
//     request goes without thinking (and without any thinking block), never
//     into a 400 for a missing signature. An effort-only request gets the
//     budget EffortBudget gives; budget_tokens is at least 1024 and
//     max_tokens is raised by the budget when it would not exceed it.
//     Adaptive thinking is sent as adaptive, with output_config.effort when
//     an effort was given.
//   - Custom (freeform) tools become a tool whose input_schema is one string
//     property "input" (the description says so and carries the input's
//     grammar, when the client gave one); a custom call's raw input is sent
//     as {"input": ...}.
//     Answers cannot tell which tools were custom: the relay maps them back
//     with UncustomCalls / UncustomStream.
//   - PreviousResponseID is a *RequestError: the relay keeps no
//     conversation. Format becomes a trailing system instruction.
//     CacheKey, Store and WantReasoningState have no Anthropic counterpart
//     and are dropped.
func EncodeMessages(r *Request) ([]byte, error) {
	if r.PreviousResponseID != "" {
		return nil, badRequest("previous_response_id", "previous_response_id needs an OpenAI account: this relay keeps no conversation; send the whole input")
	}
	out := amRequest{Model: r.Model, MaxTokens: r.MaxTokens, Stream: r.Stream}
	if out.MaxTokens <= 0 {
		out.MaxTokens = DefaultMaxTokens
	}
	out.System = encodeMessagesSystem(r)
	for _, s := range r.Stop {
		// Anthropic rejects blank stop sequences.
		if strings.TrimSpace(s) != "" {
			out.StopSequences = append(out.StopSequences, s)
		}
	}
	if err := encodeMessagesSampling(&out, r); err != nil {
		return nil, err
	}
	if r.User != "" {
		out.Metadata = &metadata{UserID: r.User}
	}
	var err error
	if out.Messages, err = encodeMessagesTurns(r.Messages, keepThinking); err != nil {
		return nil, err
	}
	if out.Tools, err = encodeMessagesTools(r.Tools); err != nil {
		return nil, err
	}
	if out.ToolChoice, err = encodeMessagesToolChoice(r.ToolChoice, len(out.Tools) > 0); err != nil {
		return nil, err
	}
	if err := encodeMessagesThinking(&out, r.Thinking); err != nil {
		return nil, err
	}
	if out.Thinking == nil {
		// Without thinking, thinking blocks are left out altogether (the
		// API refuses them in a final assistant turn); turns are rebuilt so
		// a turn that held only thinking disappears and its neighbours merge.
		if out.Messages, err = encodeMessagesTurns(r.Messages, dropThinking); err != nil {
			return nil, err
		}
	}
	body, err := marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode messages request: %w", err)
	}
	return body, nil
}

func encodeMessagesSystem(r *Request) []amBlock {
	var sys []amBlock
	for _, s := range r.System {
		if s != "" {
			sys = append(sys, textBlock(s))
		}
	}
	if r.SystemCache && len(sys) > 0 {
		sys[len(sys)-1].CacheControl = ephemeral
	}
	if f := r.Format; f != nil && (f.JSON || f.Schema != nil) {
		sys = append(sys, textBlock(formatInstruction(f)))
	}
	return sys
}

// formatInstruction is the system instruction that stands for a structured
// output request, for an API with no JSON mode of its own.
func formatInstruction(f *Format) string {
	if f.Schema == nil {
		return jsonObjectInstruction
	}
	var b strings.Builder
	b.WriteString(jsonSchemaInstruction)
	if f.Name != "" {
		b.WriteString("\n\nSchema name: ")
		b.WriteString(f.Name)
	}
	b.WriteString("\n\n")
	b.Write(f.Schema)
	return b.String()
}

func textBlock(s string) amBlock { return amBlock{Type: "text", Text: &s} }

func encodeMessagesSampling(out *amRequest, r *Request) error {
	for _, p := range []struct {
		name string
		v    *float64
	}{{"temperature", r.Temperature}, {"top_p", r.TopP}} {
		if p.v != nil && (*p.v < 0 || *p.v > 1) {
			return badRequest(p.name, "%s must be between 0 and 1 for Claude", p.name)
		}
	}
	if r.TopK != nil && *r.TopK < 1 {
		return badRequest("top_k", "top_k must be a positive integer")
	}
	out.Temperature, out.TopP, out.TopK = r.Temperature, r.TopP, r.TopK
	return nil
}

// thinkingBlocks says whether encodeMessagesTurns writes Anthropic thinking
// blocks.
type thinkingBlocks bool

const (
	keepThinking thinkingBlocks = true
	dropThinking thinkingBlocks = false
)

// encodeMessagesTurns writes the conversation: parts with no Anthropic form
// dropped, empty turns skipped, consecutive turns of one role merged (the
// API wants alternation) and tool results first in each user turn.
func encodeMessagesTurns(msgs []Message, thinking thinkingBlocks) ([]amMessage, error) {
	var out []amMessage
	for i, m := range msgs {
		role := string(m.Role)
		if m.Role != RoleUser && m.Role != RoleAssistant {
			return nil, fmt.Errorf("encode messages request: message %d has role %q", i, m.Role)
		}
		var blocks []amBlock
		for j := range m.Parts {
			b, keep, err := encodeMessagesPart(&m.Parts[j], m.Role)
			if err != nil {
				return nil, err
			}
			if keep && (thinking == keepThinking || !isThinkingBlock(b.Type)) {
				blocks = append(blocks, b)
			}
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			continue
		}
		out = append(out, amMessage{Role: role, Content: blocks})
	}
	if len(out) == 0 {
		return nil, badRequest("messages", "messages must contain at least one message with content")
	}
	for i := range out {
		if out[i].Role == "user" {
			toolResultsFirstAM(out[i].Content)
		}
	}
	return out, nil
}

// toolResultsFirstAM moves tool_result blocks to the front, keeping the
// order within each group.
func toolResultsFirstAM(blocks []amBlock) {
	var results, other []amBlock
	for _, b := range blocks {
		if b.Type == "tool_result" {
			results = append(results, b)
		} else {
			other = append(other, b)
		}
	}
	if len(results) == 0 {
		return
	}
	copy(blocks, results)
	copy(blocks[len(results):], other)
}

// encodeMessagesPart writes one part; keep is false for a part Anthropic
// has no use for (empty text, foreign thinking, thinking in a user turn).
func encodeMessagesPart(p *Part, role Role) (b amBlock, keep bool, err error) {
	switch p.Kind {
	case PartText:
		if p.Text == "" {
			return amBlock{}, false, nil
		}
		b = textBlock(p.Text)
	case PartImage:
		src, err := encodeMessagesImage(p)
		if err != nil {
			return amBlock{}, false, err
		}
		b = amBlock{Type: "image", Source: src}
	case PartToolCall:
		input, err := toolInput(p)
		if err != nil {
			return amBlock{}, false, err
		}
		b = amBlock{Type: "tool_use", ID: SanitizeCallID(p.CallID), Name: anthropicNames.upstreamName(p.Name), Input: input}
	case PartToolResult:
		if b, err = encodeMessagesToolResult(p); err != nil {
			return amBlock{}, false, err
		}
	case PartThinking:
		if role != RoleAssistant || p.Sig.Origin != OriginAnthropic || p.Sig.Value == "" {
			return amBlock{}, false, nil
		}
		if p.Redacted {
			return amBlock{Type: "redacted_thinking", Data: p.Sig.Value}, true, nil
		}
		text, sig := p.Text, p.Sig.Value
		// Thinking blocks cannot carry cache_control.
		return amBlock{Type: "thinking", Thinking: &text, Signature: &sig}, true, nil
	default:
		return amBlock{}, false, nil
	}
	if p.Cache {
		b.CacheControl = ephemeral
	}
	return b, true, nil
}

func encodeMessagesImage(p *Part) (*source, error) {
	switch {
	case p.Data != "":
		return &source{Type: "base64", MediaType: p.MediaType, Data: p.Data}, nil
	case hasPrefixFold(p.URL, "data:"):
		mt, data, isBase64 := parseDataURL(p.URL)
		if mt == "" || !isBase64 || data == "" {
			return nil, badRequest("messages", "image data URLs must look like data:<media type>;base64,<data>")
		}
		return &source{Type: "base64", MediaType: mt, Data: data}, nil
	case hasPrefixFold(p.URL, "https://") || hasPrefixFold(p.URL, "http://"):
		return &source{Type: "url", URL: p.URL}, nil
	}
	return nil, badRequest("messages", "images must be http(s) URLs or base64 data")
}

// toolInput is a tool call's input object: the JSON object Args, or
// {"input": Args} for a custom tool's raw input.
func toolInput(p *Part) (json.RawMessage, error) {
	if p.Custom {
		return marshal(map[string]string{"input": p.Args})
	}
	s := strings.TrimSpace(p.Args)
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid([]byte(s)) || !gjson.Parse(s).IsObject() {
		return nil, badRequest("messages", "the arguments of tool call %q are not a JSON object; Claude accepts only object inputs", p.CallID)
	}
	return json.RawMessage(s), nil
}

func encodeMessagesToolResult(p *Part) (amBlock, error) {
	b := amBlock{Type: "tool_result", ToolUseID: SanitizeCallID(p.CallID), IsError: p.IsError}
	var content any
	switch {
	case len(p.Result) == 1 && p.Result[0].Kind == PartText:
		if p.Result[0].Text != "" {
			content = p.Result[0].Text
		}
	case len(p.Result) > 0:
		var blocks []amBlock
		for i := range p.Result {
			rb, keep, err := encodeMessagesPart(&p.Result[i], RoleUser)
			if err != nil {
				return amBlock{}, err
			}
			if keep && (rb.Type == "text" || rb.Type == "image") {
				blocks = append(blocks, rb)
			}
		}
		if len(blocks) > 0 {
			content = blocks
		}
	}
	if content != nil {
		raw, err := marshal(content)
		if err != nil {
			return amBlock{}, fmt.Errorf("encode tool result: %w", err)
		}
		b.Content = raw
	}
	return b, nil
}

func encodeMessagesTools(tools []Tool) ([]tool, error) {
	var out []tool
	for i, t := range tools {
		schema := json.RawMessage(defaultToolSchema)
		switch {
		case t.Custom:
			schema = json.RawMessage(customToolSchema)
		case len(t.Schema) > 0 && string(t.Schema) != "null":
			v := gjson.ParseBytes(t.Schema)
			if !v.IsObject() {
				return nil, badRequest(fmt.Sprintf("tools[%d]", i), "the parameters of tool %q must be a JSON Schema object", t.Name)
			}
			raw := v.Raw
			// Anthropic insists on an object schema; a typeless one is
			// what clients send for "no arguments".
			if !v.Get("type").Exists() {
				var err error
				if raw, err = sjson.Set(raw, "type", "object"); err != nil {
					return nil, badRequest(fmt.Sprintf("tools[%d]", i), "the parameters of tool %q are not a valid schema", t.Name)
				}
			}
			schema = json.RawMessage(raw)
		}
		desc := t.Description
		if t.Custom {
			desc = customToolDescription(t)
		}
		out = append(out, tool{Name: anthropicNames.upstreamName(t.Name), Description: desc, InputSchema: schema})
	}
	return out, nil
}

// customToolDescription is a custom tool's description for Claude: the
// client's, then where its raw input goes now, then the input's grammar
// when the client gave one (Codex's apply_patch sends a Lark grammar),
// since the grammar itself has no Anthropic form.
func customToolDescription(t Tool) string {
	var b strings.Builder
	b.WriteString(t.Description)
	if b.Len() > 0 {
		b.WriteString("\n\n")
	}
	b.WriteString("Send the tool's raw input, verbatim, as the string property \"input\".")
	f := gjson.ParseBytes(t.Format)
	if def := f.Get("definition").Str; def != "" {
		b.WriteString(" It must follow this grammar")
		if syntax := f.Get("syntax").Str; syntax != "" {
			b.WriteString(" (" + syntax + ")")
		}
		b.WriteString(":\n")
		b.WriteString(def)
	}
	return b.String()
}

func encodeMessagesToolChoice(tc ToolChoice, hasTools bool) (*toolChoice, error) {
	var out *toolChoice
	switch tc.Mode {
	case "":
	case "auto", "none":
		out = &toolChoice{Type: tc.Mode}
	case "required":
		out = &toolChoice{Type: "any"}
	case "tool":
		out = &toolChoice{Type: "tool", Name: anthropicNames.upstreamName(tc.Name)}
	default:
		return nil, badRequest("tool_choice", "tool_choice %q is not supported", tc.Mode)
	}
	if !hasTools {
		if out != nil && (out.Type == "any" || out.Type == "tool") {
			return nil, badRequest("tool_choice", "tool_choice requires tools")
		}
		return nil, nil // auto or none without tools is what no tools means
	}
	if tc.NoParallel {
		if out == nil {
			out = &toolChoice{Type: "auto"}
		}
		if out.Type != "none" {
			out.DisableParallelToolUse = true
		}
	}
	return out, nil
}

// encodeMessagesThinking sets thinking (and output_config) from th, after
// the messages, tools and sampling are in out.
func encodeMessagesThinking(out *amRequest, th Thinking) error {
	if !th.Enabled {
		return nil
	}
	// Extended thinking has hard constraints; refusing is better than
	// silently answering with different sampling.
	if t := out.Temperature; t != nil && *t != 1 {
		return badRequest("temperature", "temperature must be 1 or omitted when thinking is enabled")
	}
	if p := out.TopP; p != nil && *p < 0.95 {
		return badRequest("top_p", "top_p must be at least 0.95 or omitted when thinking is enabled")
	}
	if tc := out.ToolChoice; tc != nil && (tc.Type == "any" || tc.Type == "tool") {
		return badRequest("tool_choice", "forcing a tool call cannot be combined with thinking; use tool_choice auto")
	}
	if lacksReplayedThinking(out.Messages) {
		return nil
	}
	// Claude refuses top_k with thinking. Gemini clients send topK on every
	// request (Gemini CLI: 64, the Gemini models' default) together with
	// thinkingConfig, so top_k, a narrowing hint, gives way to the thinking
	// the client asked for instead of failing every request.
	out.TopK = nil
	if th.Adaptive {
		out.Thinking = &amThinking{Type: "adaptive"}
		if e := anthropicEffort(th.Effort); e != "" {
			out.OutputConfig = &amOutputConf{Effort: e}
		}
		return nil
	}
	budget := th.Budget
	if budget == 0 {
		budget = EffortBudget(th.Effort)
	}
	if budget == 0 {
		budget = EffortBudget("medium")
	}
	budget = max(budget, minThinkingBudget)
	out.Thinking = &amThinking{Type: "enabled", BudgetTokens: budget}
	// The budget is part of max_tokens; when it would not fit, add it on
	// top so the visible answer keeps the room the client asked for.
	if out.MaxTokens <= budget {
		out.MaxTokens += budget
	}
	return nil
}

// anthropicEffort maps a neutral effort onto output_config.effort.
func anthropicEffort(e string) string {
	switch e {
	case "minimal":
		return "low"
	case "low", "medium", "high", "xhigh":
		return e
	}
	return ""
}

// lacksReplayedThinking reports whether Anthropic would refuse thinking for
// this conversation: with thinking on, the final assistant turn must start
// with a signed thinking block when it is a prefill or made tool calls.
// Clients of other dialects (and foreign thinking, dropped above) cannot
// provide one, so such a request goes without thinking instead.
func lacksReplayedThinking(msgs []amMessage) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Role != "assistant" {
			continue
		}
		needs := i == len(msgs)-1
		for _, b := range m.Content {
			needs = needs || b.Type == "tool_use"
		}
		if !needs {
			return false
		}
		return !isThinkingBlock(m.Content[0].Type)
	}
	return false
}

func isThinkingBlock(typ string) bool { return typ == "thinking" || typ == "redacted_thinking" }
