package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The upstream side of the Chat Completions codec, for accounts that speak
// Chat Completions (openai-compatible: DeepSeek, GLM, Kimi, OpenRouter,
// Ollama, vLLM...). What a Chat upstream cannot take is dropped
// (docs/matrix.md):
//
//   - thinking of any origin but OriginChat. Reasoning a Chat upstream gave
//     goes back as the assistant message's reasoning_content, which
//     DeepSeek and Kimi require on a thinking model's tool-call turns (a
//     400 without it); a tool-call turn without such reasoning in a request
//     that asks for thinking gets an empty reasoning_content, which they
//     accept;
//   - cache breakpoints, top_k (OpenAI refuses it), the client's cache key,
//     store, and IsError on tool results (Chat's tool message has no such
//     flag; the result's text usually says so);
//   - the system prompt is one system message, its blocks joined by a blank
//     line, as many servers' chat templates take one system message only;
//   - a message's texts are joined by a blank line into one string when it
//     has nothing else (the form every server accepts), images and
//     documents make it an array of parts; images in a tool result, which
//     a Chat tool message cannot carry, follow in a user message;
//   - a custom (freeform) tool is declared as a function taking
//     {"input": string}, and its calls are replayed in that shape.

// chatSeparator joins texts Chat has to carry as one string.
const chatSeparator = "\n\n"

// chatCustomSchema is the parameters schema of a custom tool declared as a
// function.
const chatCustomSchema = `{"type":"object","properties":{"input":{"type":"string","description":"The raw input of the tool."}},"required":["input"]}`

// The Chat Completions request, as EncodeChat writes it.
type chatBody struct {
	Model             string          `json:"model"`
	Messages          []chatMessage   `json:"messages"`
	Tools             []chatToolDecl  `json:"tools,omitempty"`
	ToolChoice        any             `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`
	MaxTokens         int64           `json:"max_tokens,omitempty"`
	Temperature       *float64        `json:"temperature,omitempty"`
	TopP              *float64        `json:"top_p,omitempty"`
	Stop              []string        `json:"stop,omitempty"`
	ReasoningEffort   string          `json:"reasoning_effort,omitempty"`
	ResponseFormat    *chatRespFormat `json:"response_format,omitempty"`
	User              string          `json:"user,omitempty"`
	Stream            bool            `json:"stream,omitempty"`
	StreamOptions     *chatStreamOpts `json:"stream_options,omitempty"`
}

type chatMessage struct {
	Role string `json:"role"`
	// Content is a string, a []chatPart, or nil (null: an assistant turn
	// that only calls tools).
	Content any `json:"content"`
	// ReasoningContent is DeepSeek's and Kimi's field for the turn's
	// reasoning (nil: left out).
	ReasoningContent *string        `json:"reasoning_content,omitempty"`
	ToolCalls        []chatCallBody `json:"tool_calls,omitempty"`
	ToolCallID       string         `json:"tool_call_id,omitempty"`
}

type chatPart struct {
	Type     string        `json:"type"`
	Text     string        `json:"text,omitempty"`
	ImageURL *chatImageURL `json:"image_url,omitempty"`
	File     *chatFileData `json:"file,omitempty"`
}

type chatImageURL struct {
	URL string `json:"url"`
}

type chatFileData struct {
	FileData string `json:"file_data"`
}

type chatCallBody struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type chatToolDecl struct {
	Type     string       `json:"type"`
	Function chatFuncDecl `json:"function"`
}

type chatFuncDecl struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

type chatRespFormat struct {
	Type       string          `json:"type"`
	JSONSchema *chatJSONSchema `json:"json_schema,omitempty"`
}

type chatJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict,omitempty"`
}

type chatStreamOpts struct {
	IncludeUsage bool `json:"include_usage"`
}

// EncodeChat writes r as a Chat Completions request body for a Chat
// upstream. A streaming request asks for the usage chunk
// (stream_options.include_usage), which the relay needs to count tokens.
// What no Chat upstream can resolve (a previous_response_id) is a
// *RequestError.
func EncodeChat(r *Request) ([]byte, error) {
	if r.PreviousResponseID != "" {
		return nil, badRequest("previous_response_id", "previous_response_id is not supported for this model: send the whole conversation")
	}
	if r.Model == "" {
		return nil, errors.New("encode chat request: no model")
	}
	b := chatBody{Model: r.Model, MaxTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP,
		Stop: r.Stop, User: r.User, Stream: r.Stream}
	if r.Stream {
		b.StreamOptions = &chatStreamOpts{IncludeUsage: true}
	}
	if len(r.System) > 0 {
		b.Messages = append(b.Messages, chatMessage{Role: "system", Content: strings.Join(r.System, chatSeparator)})
	}
	for i := range r.Messages {
		b.Messages = chatAppendMessage(b.Messages, &r.Messages[i], r.Thinking.Enabled)
	}
	b.Tools, b.ToolChoice, b.ParallelToolCalls = chatEncodeTools(r)
	b.ReasoningEffort = chatEffort(r.Thinking)
	if f := r.Format; f != nil && f.JSON {
		b.ResponseFormat = &chatRespFormat{Type: "json_object"}
		if f.Schema != nil {
			name := f.Name
			if name == "" {
				name = "response" // OpenAI requires a name
			}
			b.ResponseFormat = &chatRespFormat{Type: "json_schema", JSONSchema: &chatJSONSchema{Name: name, Schema: f.Schema, Strict: f.Strict}}
		}
	}
	out, err := marshal(&b)
	if err != nil {
		return nil, fmt.Errorf("encode chat request: %w", err)
	}
	return out, nil
}

// chatEffort is the reasoning_effort of a thinking request: the effort the
// client gave, else the one its budget stands for; adaptive thinking
// leaves it to the model.
func chatEffort(t Thinking) string {
	switch {
	case !t.Enabled:
		return ""
	case t.Effort != "":
		return t.Effort
	}
	return BudgetEffort(t.Budget)
}

func chatEncodeTools(r *Request) (tools []chatToolDecl, choice any, parallel *bool) {
	for _, t := range r.Tools {
		params := t.Schema
		if t.Custom {
			params = json.RawMessage(chatCustomSchema)
		} else if len(params) == 0 {
			params = json.RawMessage(defaultToolSchema)
		}
		tools = append(tools, chatToolDecl{Type: "function", Function: chatFuncDecl{Name: openaiNames.upstreamName(t.Name), Description: t.Description, Parameters: params}})
	}
	if len(tools) == 0 {
		return nil, nil, nil
	}
	switch tc := r.ToolChoice; tc.Mode {
	case "auto", "none", "required":
		choice = tc.Mode
	case "tool":
		choice = map[string]any{"type": "function", "function": map[string]string{"name": openaiNames.upstreamName(tc.Name)}}
	}
	if r.ToolChoice.NoParallel {
		no := false
		parallel = &no
	}
	return tools, choice, parallel
}

// chatAppendMessage appends the Chat messages of one turn: a user turn's
// tool results become tool messages, first, as Chat wants them right after
// the assistant turn that called. thinking: the request asks for thinking.
func chatAppendMessage(dst []chatMessage, m *Message, thinking bool) []chatMessage {
	var (
		parts     []chatPart
		calls     []chatCallBody
		texts     []string
		mixed     bool // parts holds an image or a document
		reasoning *string
	)
	addText := func(s string) {
		texts = append(texts, s)
		parts = append(parts, chatPart{Type: "text", Text: s})
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		switch p.Kind {
		case PartText:
			addText(p.Text)
		case PartImage, PartFile:
			parts = append(parts, chatMediaPart(p))
			mixed = true
		case PartToolCall:
			id := p.CallID
			if id == "" {
				id = randomID("call_")
			}
			calls = append(calls, chatCallBody{ID: id, Type: "function", Function: chatFunction{Name: openaiNames.upstreamName(p.Name), Arguments: chatCallArgs(p)}})
		case PartToolResult:
			var content []string
			for j := range p.Result {
				if r := &p.Result[j]; r.Kind == PartText {
					content = append(content, r.Text)
				} else if r.Kind == PartImage {
					parts = append(parts, chatMediaPart(r))
					mixed = true
				}
			}
			dst = append(dst, chatMessage{Role: "tool", ToolCallID: p.CallID, Content: strings.Join(content, chatSeparator)})
		case PartThinking:
			if p.Sig.Origin == OriginChat { // any other origin is foreign here
				s := p.Text
				if reasoning != nil {
					s = *reasoning + p.Text
				}
				reasoning = &s
			}
		}
	}
	var content any
	switch {
	case mixed && m.Role == RoleUser: // an assistant message takes text only
		content = parts
	case len(texts) > 0:
		content = strings.Join(texts, chatSeparator)
	}
	if m.Role == RoleAssistant {
		if content == nil && len(calls) == 0 {
			return dst
		}
		if reasoning == nil && len(calls) > 0 && thinking {
			reasoning = new(string)
		}
		return append(dst, chatMessage{Role: "assistant", Content: content, ReasoningContent: reasoning, ToolCalls: calls})
	}
	if content == nil {
		return dst
	}
	return append(dst, chatMessage{Role: "user", Content: content})
}

// chatMediaPart is an image or a document as a content part.
func chatMediaPart(p *Part) chatPart {
	url := p.URL
	if url == "" {
		url = "data:" + p.MediaType + ";base64," + p.Data
	}
	if p.Kind == PartFile {
		return chatPart{Type: "file", File: &chatFileData{FileData: url}}
	}
	return chatPart{Type: "image_url", ImageURL: &chatImageURL{URL: url}}
}
