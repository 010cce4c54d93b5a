package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// RequestError is a client error (HTTP 400) with a message fit for an
// OpenAI-shaped error body; Param names the offending field when known.
type RequestError struct {
	// Message is a lowercase, human-readable explanation.
	Message string
	// Param is the JSON path of the offending field ("messages[2].content",
	// "n"), or empty when the whole body is at fault.
	Param string
}

// Error returns the message.
func (e *RequestError) Error() string { return e.Message }

func badRequest(param, format string, args ...any) *RequestError {
	return &RequestError{Message: fmt.Sprintf(format, args...), Param: param}
}

// ChatRequest is what the relay needs to know about a converted request.
type ChatRequest struct {
	// Body is the Anthropic Messages JSON body to send upstream.
	Body []byte
	// Model is the model sent upstream, after alias mapping.
	Model string
	// RequestedModel is the model the client asked for.
	RequestedModel string
	// Stream reports whether the client asked for SSE.
	Stream bool
	// IncludeUsage is stream_options.include_usage: the client wants a final
	// usage chunk before [DONE].
	IncludeUsage bool
}

// defaultMaxTokens is sent when the client names no limit; Anthropic
// requires one and 4096 fits every Claude model.
const defaultMaxTokens = 4096

// maxTokenLimit bounds client-supplied token counts so arithmetic on them
// (adding a thinking budget) cannot overflow.
const maxTokenLimit = math.MaxInt32

// thinkingBudget maps reasoning_effort to an extended-thinking budget in
// tokens; 1024 is Anthropic's minimum. "none" (and no effort) means no
// thinking.
func thinkingBudget(effort string) (budget int64, ok bool) {
	switch effort {
	case "", "none":
		return 0, true
	case "minimal", "low":
		return 1024, true
	case "medium":
		return 4096, true
	case "high":
		return 16384, true
	case "xhigh":
		return 32768, true
	}
	return 0, false
}

// defaultToolSchema is the input_schema of a function declared without
// parameters; Anthropic requires an object schema.
const defaultToolSchema = `{"type":"object","properties":{}}`

const (
	jsonObjectInstruction = "Respond only with a single valid JSON object. Do not wrap it in Markdown code fences and do not write anything before or after it."
	jsonSchemaInstruction = "Respond only with a single valid JSON value that conforms to the JSON Schema below. Do not wrap it in Markdown code fences and do not write anything before or after it."
)

// The Anthropic request, in the field order the API documents.
type messagesRequest struct {
	Model         string      `json:"model"`
	MaxTokens     int64       `json:"max_tokens"`
	System        []block     `json:"system,omitempty"`
	Messages      []message   `json:"messages"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Temperature   *float64    `json:"temperature,omitempty"`
	TopP          *float64    `json:"top_p,omitempty"`
	TopK          *int64      `json:"top_k,omitempty"`
	Metadata      *metadata   `json:"metadata,omitempty"`
	Tools         []tool      `json:"tools,omitempty"`
	ToolChoice    *toolChoice `json:"tool_choice,omitempty"`
	Thinking      *thinking   `json:"thinking,omitempty"`
	Stream        bool        `json:"stream,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is any Anthropic content block; unused fields are omitted.
type block struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	Source       *source         `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      json.RawMessage `json:"content,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type thinking struct {
	Type         string `json:"type"`
	BudgetTokens int64  `json:"budget_tokens"`
}

// ChatToMessages converts an OpenAI Chat Completions request body. aliases
// maps OpenAI model names to Claude names (nil = pass through). Returns
// *RequestError for bad input.
func ChatToMessages(body []byte, aliases map[string]string) (*ChatRequest, error) {
	// encoding/json's validator is the strict one; gjson only reads.
	if !json.Valid(body) {
		return nil, badRequest("", "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, badRequest("", "request body must be a JSON object")
	}
	var c chatConverter
	if err := c.readParams(root); err != nil {
		return nil, err
	}
	if c.model == "" {
		return nil, badRequest("model", "model is required")
	}
	if err := c.convertMessages(); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}

	upstream := c.model
	if m, ok := aliases[c.model]; ok && m != "" {
		upstream = m
	}
	c.out.Model = upstream
	out, err := marshal(&c.out)
	if err != nil {
		return nil, fmt.Errorf("encode messages request: %w", err)
	}
	return &ChatRequest{
		Body:           out,
		Model:          upstream,
		RequestedModel: c.model,
		Stream:         c.out.Stream,
		IncludeUsage:   c.out.Stream && c.includeUsage,
	}, nil
}

// chatConverter holds the state of one request conversion.
type chatConverter struct {
	out messagesRequest

	model        string
	messages     gjson.Result
	maxTokens    int64 // 0: not given
	includeUsage bool
	toolChoice   gjson.Result
	noParallel   bool
	effort       string
	format       gjson.Result
}

// readParams walks the top-level keys once, mapping, ignoring or rejecting
// each.
func (c *chatConverter) readParams(root gjson.Result) error {
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		err = c.readParam(k.String(), v)
		return err == nil
	})
	return err
}

func isEmptyObject(v gjson.Result) bool {
	if !v.IsObject() {
		return false
	}
	empty := true
	v.ForEach(func(_, _ gjson.Result) bool {
		empty = false
		return false
	})
	return empty
}

// positiveInt accepts an integral JSON number in [1, maxTokenLimit].
func positiveInt(v gjson.Result) (int64, bool) {
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) || v.Num < 1 || v.Num > maxTokenLimit {
		return 0, false
	}
	return int64(v.Num), true
}

func (c *chatConverter) readStop(v gjson.Result) error {
	switch {
	case v.Type == gjson.Null:
	case v.Type == gjson.String:
		if strings.TrimSpace(v.Str) != "" {
			c.out.StopSequences = append(c.out.StopSequences, v.Str)
		}
	case v.IsArray():
		var err error
		v.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = badRequest("stop", "stop must be a string or an array of strings")
				return false
			}
			// Anthropic rejects blank stop sequences; they would never
			// match anything useful anyway.
			if strings.TrimSpace(s.Str) != "" {
				c.out.StopSequences = append(c.out.StopSequences, s.Str)
			}
			return true
		})
		return err
	default:
		return badRequest("stop", "stop must be a string or an array of strings")
	}
	return nil
}

func (c *chatConverter) readTools(v gjson.Result) error {
	if v.Type == gjson.Null {
		return nil
	}
	if !v.IsArray() {
		return badRequest("tools", "tools must be an array")
	}
	var err error
	i := 0
	v.ForEach(func(_, t gjson.Result) bool {
		err = c.readTool(i, t)
		i++
		return err == nil
	})
	return err
}

func (c *chatConverter) readTool(i int, t gjson.Result) error {
	param := "tools[" + strconv.Itoa(i) + "]"
	if !t.IsObject() {
		return badRequest(param, "%s must be an object", param)
	}
	if typ := t.Get("type"); typ.Exists() && typ.String() != "function" {
		return badRequest(param+".type", "tool type %q is not supported; only function tools are", typ.String())
	}
	fn := t.Get("function")
	if !fn.IsObject() {
		return badRequest(param+".function", "%s.function must be an object", param)
	}
	name := fn.Get("name")
	if name.Type != gjson.String || name.Str == "" {
		return badRequest(param+".function.name", "%s.function.name must be a non-empty string", param)
	}
	desc := fn.Get("description")
	if desc.Exists() && desc.Type != gjson.Null && desc.Type != gjson.String {
		return badRequest(param+".function.description", "%s.function.description must be a string", param)
	}
	schema := json.RawMessage(defaultToolSchema)
	switch p := fn.Get("parameters"); {
	case !p.Exists() || p.Type == gjson.Null:
	case p.IsObject():
		raw := p.Raw
		// Anthropic insists on an object schema; an empty or typeless
		// schema is what OpenAI clients send for "no arguments".
		if !p.Get("type").Exists() {
			var err error
			if raw, err = sjson.Set(raw, "type", "object"); err != nil {
				return badRequest(param+".function.parameters", "%s.function.parameters is not a valid schema", param)
			}
		}
		schema = json.RawMessage(raw)
	default:
		return badRequest(param+".function.parameters", "%s.function.parameters must be a JSON Schema object", param)
	}
	c.out.Tools = append(c.out.Tools, tool{Name: name.Str, Description: desc.String(), InputSchema: schema})
	return nil
}

// finish applies the parameters that depend on each other: tool_choice and
// parallel_tool_calls, response_format, reasoning_effort and max_tokens.
func (c *chatConverter) finish() error {
	if err := c.readToolChoice(); err != nil {
		return err
	}
	if err := c.readResponseFormat(); err != nil {
		return err
	}

	c.out.MaxTokens = c.maxTokens
	if c.out.MaxTokens == 0 {
		c.out.MaxTokens = defaultMaxTokens
	}
	budget, _ := thinkingBudget(c.effort)
	if budget == 0 {
		return nil
	}
	// Extended thinking has hard constraints; refusing is better than
	// silently answering with different sampling.
	if t := c.out.Temperature; t != nil && *t != 1 {
		return badRequest("temperature", "temperature must be 1 or omitted when reasoning_effort is set")
	}
	if p := c.out.TopP; p != nil && *p < 0.95 {
		return badRequest("top_p", "top_p must be at least 0.95 or omitted when reasoning_effort is set")
	}
	if c.out.TopK != nil {
		return badRequest("top_k", "top_k cannot be combined with reasoning_effort")
	}
	if tc := c.out.ToolChoice; tc != nil && (tc.Type == "any" || tc.Type == "tool") {
		return badRequest("tool_choice", "forcing a tool call cannot be combined with reasoning_effort; use tool_choice auto")
	}
	if c.needsReplayedThinking() {
		return nil
	}
	c.out.Thinking = &thinking{Type: "enabled", BudgetTokens: budget}
	// The budget is part of max_tokens; when it would not fit, add it on
	// top so the visible answer keeps the room the client asked for.
	if c.out.MaxTokens <= budget {
		c.out.MaxTokens += budget
	}
	return nil
}

// needsReplayedThinking reports whether Anthropic would demand that the
// final assistant turn start with a signed thinking block: when that turn is
// a prefill, or when it made the tool calls whose results end the
// conversation. OpenAI clients cannot send those blocks back, so thinking is
// left off for such a turn rather than having Claude reject the request.
func (c *chatConverter) needsReplayedThinking() bool {
	msgs := c.out.Messages
	last := msgs[len(msgs)-1]
	if last.Role == "assistant" {
		return true
	}
	for _, b := range last.Content {
		if b.Type == "tool_result" {
			return true
		}
	}
	return false
}

func (c *chatConverter) readToolChoice() error {
	v := c.toolChoice
	hasTools := len(c.out.Tools) > 0
	var tc *toolChoice
	switch {
	case !v.Exists() || v.Type == gjson.Null:
	case v.Type == gjson.String:
		switch v.Str {
		case "auto":
			tc = &toolChoice{Type: "auto"}
		case "none":
			tc = &toolChoice{Type: "none"}
		case "required":
			tc = &toolChoice{Type: "any"}
		default:
			return badRequest("tool_choice", "tool_choice %q is not supported; use auto, none, required or a function", v.Str)
		}
	case v.IsObject():
		if v.Get("type").String() != "function" {
			return badRequest("tool_choice.type", "tool_choice type %q is not supported; only function is", v.Get("type").String())
		}
		name := v.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return badRequest("tool_choice.function.name", "tool_choice.function.name must be a non-empty string")
		}
		tc = &toolChoice{Type: "tool", Name: name.Str}
	default:
		return badRequest("tool_choice", "tool_choice must be a string or an object")
	}
	if !hasTools {
		if tc != nil && (tc.Type == "any" || tc.Type == "tool") {
			return badRequest("tool_choice", "tool_choice requires tools")
		}
		// auto or none without tools is what the absence of tools means.
		return nil
	}
	if c.noParallel {
		if tc == nil {
			tc = &toolChoice{Type: "auto"}
		}
		if tc.Type != "none" {
			tc.DisableParallelToolUse = true
		}
	}
	c.out.ToolChoice = tc
	return nil
}

// readResponseFormat honours JSON modes with a system instruction: Claude
// has no JSON mode without a beta header, but follows such an instruction
// reliably.
func (c *chatConverter) readResponseFormat() error {
	v := c.format
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	if !v.IsObject() {
		return badRequest("response_format", "response_format must be an object")
	}
	switch typ := v.Get("type").String(); typ {
	case "text":
	case "json_object":
		c.out.System = append(c.out.System, block{Type: "text", Text: jsonObjectInstruction})
	case "json_schema":
		js := v.Get("json_schema")
		if !js.IsObject() {
			return badRequest("response_format.json_schema", "response_format.json_schema must be an object")
		}
		var b strings.Builder
		b.WriteString(jsonSchemaInstruction)
		if name := js.Get("name").String(); name != "" {
			b.WriteString("\n\nSchema name: ")
			b.WriteString(name)
		}
		if d := js.Get("description").String(); d != "" {
			b.WriteString("\nSchema description: ")
			b.WriteString(d)
		}
		if s := js.Get("schema"); s.Exists() && s.Type != gjson.Null {
			b.WriteString("\n\n")
			b.WriteString(s.Raw)
		}
		c.out.System = append(c.out.System, block{Type: "text", Text: b.String()})
	default:
		return badRequest("response_format.type", "response_format type %q is not supported; use text, json_object or json_schema", typ)
	}
	return nil
}
