package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// This file writes the neutral Request as an upstream /responses body, for
// openai-responses accounts (and codex-oauth ones, whose provider then
// applies the ChatGPT backend's rules, provider/openai CodexBody).
//
// Rules worth knowing (docs/matrix.md):
//   - System becomes instructions (blocks joined by a blank line).
//   - The relay keeps no server-side state: store is false, and when
//     thinking is on (or OpenAI reasoning is replayed) include asks for
//     reasoning.encrypted_content, so the next turn can send the reasoning
//     items back and the model keeps its chain of thought.
//   - Thinking is sent only when OpenAI made it (Sig.Origin openai, with
//     encrypted_content): a reasoning item with its summary. Foreign
//     thinking is dropped.
//   - Thinking becomes reasoning.effort: Effort, else the effort of Budget,
//     adaptive "medium"; summary "auto" unless the client named one. For
//     models without reasoning (gpt-4*, gpt-3*, chatgpt-*) it is dropped.
//   - Function tools are sent with strict:false (the Responses API defaults
//     to strict, which needs schemas shaped for it).
//   - Dropped, with no Responses equivalent: Stop sequences, TopK, cache
//     breakpoints, a tool result's is_error flag, images in assistant turns.
//     Temperature and top_p are sent only to models without reasoning
//     (gpt-4*, gpt-3*, chatgpt-*): reasoning models refuse them.
//   - User goes to safety_identifier, hashed (sha256, hex) when longer than
//     the 64 characters it allows.

// responsesRequest is the upstream body; omitempty leaves out what the
// neutral request did not set.
type responsesRequest struct {
	Model              string             `json:"model"`
	Instructions       string             `json:"instructions"`
	Input              []any              `json:"input"`
	Tools              []any              `json:"tools,omitempty"`
	ToolChoice         any                `json:"tool_choice,omitempty"`
	ParallelToolCalls  *bool              `json:"parallel_tool_calls,omitempty"`
	Reasoning          *responsesReasonIn `json:"reasoning,omitempty"`
	Include            []string           `json:"include,omitempty"`
	Store              bool               `json:"store"`
	Stream             bool               `json:"stream"`
	MaxOutputTokens    int64              `json:"max_output_tokens,omitempty"`
	Temperature        *float64           `json:"temperature,omitempty"`
	TopP               *float64           `json:"top_p,omitempty"`
	Text               *responsesText     `json:"text,omitempty"`
	PromptCacheKey     string             `json:"prompt_cache_key,omitempty"`
	SafetyIdentifier   string             `json:"safety_identifier,omitempty"`
	PreviousResponseID string             `json:"previous_response_id,omitempty"`
}

type responsesReasonIn struct {
	Effort  string `json:"effort,omitempty"`
	Summary string `json:"summary,omitempty"`
}

type responsesText struct {
	Format map[string]any `json:"format"`
}

type responsesContent struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
}

type responsesMessageIn struct {
	Type    string             `json:"type"`
	Role    string             `json:"role"`
	Content []responsesContent `json:"content"`
}

type responsesSummary struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type responsesReasoningIn struct {
	Type             string             `json:"type"`
	ID               string             `json:"id,omitempty"`
	Summary          []responsesSummary `json:"summary"`
	EncryptedContent string             `json:"encrypted_content"`
}

type responsesFunctionCall struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type responsesCustomCall struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Name   string `json:"name"`
	Input  string `json:"input"`
}

type responsesCallOutput struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Output any    `json:"output"`
}

// maxSafetyIdentifier is the longest safety_identifier OpenAI accepts.
const maxSafetyIdentifier = 64

// EncodeResponses writes r as an upstream Responses request body.
func EncodeResponses(r *Request) ([]byte, error) {
	out := responsesRequest{
		Model:              r.Model,
		Instructions:       strings.Join(r.System, "\n\n"),
		Input:              []any{},
		Stream:             r.Stream,
		MaxOutputTokens:    r.MaxTokens,
		PromptCacheKey:     r.CacheKey,
		PreviousResponseID: r.PreviousResponseID,
		SafetyIdentifier:   safetyIdentifier(r.User),
	}
	custom := customCalls(r)
	replayed := false
	for _, m := range r.Messages {
		items, reasoning := encodeResponsesMessage(m, custom)
		out.Input = append(out.Input, items...)
		replayed = replayed || reasoning
	}
	if !reasoningModel(r.Model) {
		out.Temperature, out.TopP = r.Temperature, r.TopP
	}
	if r.Thinking.Enabled && reasoningModel(r.Model) {
		out.Reasoning = &responsesReasonIn{Effort: thinkingEffort(r.Thinking), Summary: r.Thinking.Summary}
		if out.Reasoning.Summary == "" {
			out.Reasoning.Summary = "auto"
		}
	}
	if out.Reasoning != nil || replayed {
		out.Include = []string{"reasoning.encrypted_content"}
	}
	encodeResponsesTools(&out, r)
	if f := r.Format; f != nil && f.JSON {
		if f.Schema != nil {
			name := f.Name
			if name == "" {
				name = "response"
			}
			out.Text = &responsesText{Format: map[string]any{"type": "json_schema", "name": name, "schema": f.Schema, "strict": f.Strict}}
		} else {
			out.Text = &responsesText{Format: map[string]any{"type": "json_object"}}
		}
	}
	b, err := marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode responses request: %w", err)
	}
	return b, nil
}

// reasoningModel reports whether model is a reasoning model. The API
// refuses reasoning.effort and reasoning.encrypted_content for the GPT-4 and
// GPT-3.5 families (and chatgpt-4o), and temperature and top_p for the
// reasoning models (o-series, gpt-5...), so each is sent only where it is
// taken rather than answered with a 400.
func reasoningModel(model string) bool {
	for _, p := range []string{"gpt-4", "gpt-3", "chatgpt-"} {
		if strings.HasPrefix(model, p) {
			return false
		}
	}
	return true
}

// thinkingEffort is the reasoning.effort that t stands for.
func thinkingEffort(t Thinking) string {
	switch {
	case t.Effort != "":
		return t.Effort
	case t.Adaptive:
		return "medium"
	}
	if e := BudgetEffort(t.Budget); e != "" {
		return e
	}
	return "medium"
}

func safetyIdentifier(user string) string {
	if len(user) <= maxSafetyIdentifier {
		return user
	}
	sum := sha256.Sum256([]byte(user))
	return hex.EncodeToString(sum[:])
}

// customCalls is the set of call ids of custom (freeform) tool calls, whose
// results are custom_tool_call_output items.
func customCalls(r *Request) map[string]bool {
	var ids map[string]bool
	for _, m := range r.Messages {
		for _, p := range m.Parts {
			if p.Kind == PartToolCall && p.Custom {
				if ids == nil {
					ids = map[string]bool{}
				}
				ids[p.CallID] = true
			}
		}
	}
	return ids
}

// encodeResponsesMessage turns one turn into input items: its text and
// images as message items, its calls, results and reasoning as items of
// their own, in order. reasoning reports whether a reasoning item was sent.
func encodeResponsesMessage(m Message, custom map[string]bool) (items []any, reasoning bool) {
	role := string(m.Role)
	var msg *responsesMessageIn
	flush := func() {
		if msg != nil {
			items = append(items, *msg)
			msg = nil
		}
	}
	add := func(c responsesContent) {
		if msg == nil {
			msg = &responsesMessageIn{Type: "message", Role: role}
		}
		msg.Content = append(msg.Content, c)
	}
	for _, p := range m.Parts {
		switch p.Kind {
		case PartText:
			typ := "input_text"
			if m.Role == RoleAssistant {
				typ = "output_text"
			}
			add(responsesContent{Type: typ, Text: p.Text})
		case PartImage:
			if m.Role == RoleUser {
				add(responsesContent{Type: "input_image", ImageURL: imageURL(p)})
			}
		case PartToolCall:
			flush()
			if p.Custom {
				items = append(items, responsesCustomCall{Type: "custom_tool_call", CallID: p.CallID, Name: openaiNames.upstreamName(p.Name), Input: p.Args})
			} else {
				items = append(items, responsesFunctionCall{Type: "function_call", CallID: p.CallID, Name: openaiNames.upstreamName(p.Name), Arguments: argsOrEmpty(p.Args)})
			}
		case PartToolResult:
			flush()
			typ := "function_call_output"
			if custom[p.CallID] {
				typ = "custom_tool_call_output"
			}
			items = append(items, responsesCallOutput{Type: typ, CallID: p.CallID, Output: toolOutput(p.Result)})
		case PartThinking:
			if p.Sig.Origin != OriginOpenAI || p.Sig.Value == "" {
				continue // foreign or stateless thinking: never sent upstream
			}
			flush()
			it := responsesReasoningIn{Type: "reasoning", Summary: []responsesSummary{}, EncryptedContent: p.Sig.Value}
			if strings.HasPrefix(p.Sig.ID, "rs_") {
				it.ID = p.Sig.ID
			}
			if p.Text != "" {
				it.Summary = append(it.Summary, responsesSummary{Type: "summary_text", Text: p.Text})
			}
			items = append(items, it)
			reasoning = true
		}
	}
	flush()
	return items, reasoning
}

func argsOrEmpty(args string) string {
	if args == "" {
		return "{}"
	}
	return args
}

// imageURL is an image part as a URL: its reference, or a data: URL.
func imageURL(p Part) string {
	if p.URL != "" {
		return p.URL
	}
	return "data:" + p.MediaType + ";base64," + p.Data
}

// toolOutput is a tool result's output: a string when it is all text, else
// an array of input_text and input_image parts.
func toolOutput(res []Part) any {
	var texts []string
	images := false
	for _, r := range res {
		if r.Kind == PartImage {
			images = true
		} else {
			texts = append(texts, r.Text)
		}
	}
	if !images {
		return strings.Join(texts, "\n")
	}
	out := make([]responsesContent, 0, len(res))
	for _, r := range res {
		if r.Kind == PartImage {
			out = append(out, responsesContent{Type: "input_image", ImageURL: imageURL(r)})
		} else {
			out = append(out, responsesContent{Type: "input_text", Text: r.Text})
		}
	}
	return out
}

// encodeResponsesTools writes tools, tool_choice and parallel_tool_calls.
func encodeResponsesTools(out *responsesRequest, r *Request) {
	custom := map[string]bool{}
	for _, t := range r.Tools {
		if t.Custom {
			custom[t.Name] = true
			tool := map[string]any{"type": "custom", "name": openaiNames.upstreamName(t.Name)}
			if t.Description != "" {
				tool["description"] = t.Description
			}
			if t.Format != nil {
				tool["format"] = json.RawMessage(t.Format)
			}
			out.Tools = append(out.Tools, tool)
			continue
		}
		schema := json.RawMessage(defaultToolSchema)
		if len(t.Schema) > 0 {
			schema = json.RawMessage(t.Schema)
		}
		tool := map[string]any{"type": "function", "name": openaiNames.upstreamName(t.Name), "parameters": schema, "strict": false}
		if t.Description != "" {
			tool["description"] = t.Description
		}
		out.Tools = append(out.Tools, tool)
	}
	switch tc := r.ToolChoice; tc.Mode {
	case "auto", "none", "required":
		out.ToolChoice = tc.Mode
	case "tool":
		typ := "function"
		if custom[tc.Name] {
			typ = "custom"
		}
		out.ToolChoice = map[string]string{"type": typ, "name": openaiNames.upstreamName(tc.Name)}
	}
	if r.ToolChoice.NoParallel && len(r.Tools) > 0 {
		no := false
		out.ParallelToolCalls = &no
	}
}
