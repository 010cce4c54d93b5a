package convert

import (
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file writes the neutral Response as a client's Response object, the
// way the Responses API sends it, so openai-go and Codex CLI read it: ids
// "resp_…", items "msg_…", "fc_…", "ctc_…", "rs_…", usage with input_tokens
// = Input+CacheRead+CacheCreation and cached_tokens = CacheRead.
//
// Thinking becomes a reasoning item whose summary is its text and whose
// encrypted_content is the state to send back: OpenAI's own value, or, for
// another origin, WrapSignature(sig, text). It is written whether or not
// the client listed reasoning.encrypted_content in include (Codex always
// does; a client that did not ignores the field), because without it a
// Claude-served tool turn loses its thinking. StopMax is status incomplete
// with incomplete_details.reason max_output_tokens.

// responsesObject is a Response object.
type responsesObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *responsesError    `json:"error"`
	IncompleteDetails  *responsesIncomp   `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int64             `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []any              `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          responsesReasonOut `json:"reasoning"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               responsesTextOut   `json:"text"`
	ToolChoice         string             `json:"tool_choice"`
	Tools              []any              `json:"tools"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *responsesUsage    `json:"usage"`
	Metadata           struct{}           `json:"metadata"`
}

type responsesError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type responsesIncomp struct {
	Reason string `json:"reason"`
}

type responsesReasonOut struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

type responsesTextOut struct {
	Format struct {
		Type string `json:"type"`
	} `json:"format"`
}

type responsesUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// Output items as the API sends them.
type (
	responsesOutputText struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
	}
	responsesMessageOut struct {
		Type    string                `json:"type"`
		ID      string                `json:"id"`
		Status  string                `json:"status"`
		Role    string                `json:"role"`
		Content []responsesOutputText `json:"content"`
	}
	responsesFunctionOut struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		Status    string `json:"status"`
		Arguments string `json:"arguments"`
		CallID    string `json:"call_id"`
		Namespace string `json:"namespace,omitempty"`
		Name      string `json:"name"`
	}
	responsesCustomOut struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		Status    string `json:"status"`
		CallID    string `json:"call_id"`
		Namespace string `json:"namespace,omitempty"`
		Name      string `json:"name"`
		Input     string `json:"input"`
	}
	responsesReasoningOut struct {
		Type             string             `json:"type"`
		ID               string             `json:"id"`
		Summary          []responsesSummary `json:"summary"`
		EncryptedContent *string            `json:"encrypted_content,omitempty"`
	}
)

// WriteResponses writes resp as a client's Response object, reporting model.
func WriteResponses(resp *Response, model string) []byte {
	base := responsesBase(resp.ID)
	obj := newResponsesObject("resp_"+base, model, time.Now().Unix())
	n := 0
	for i := 0; i < len(resp.Parts); i++ {
		p := resp.Parts[i]
		if p.Kind == PartText {
			// Consecutive text parts are one message item.
			var b strings.Builder
			for ; i < len(resp.Parts) && resp.Parts[i].Kind == PartText; i++ {
				b.WriteString(resp.Parts[i].Text)
			}
			i--
			obj.Output = append(obj.Output, messageItem(itemID("msg_", base, n), b.String(), "completed"))
		} else if it := partItem(p, base, n); it != nil {
			obj.Output = append(obj.Output, it)
		}
		n++
	}
	obj.finish(resp.Stop, resp.Usage, resp.ReasoningTokens)
	// Every field is a plain value (no RawMessage): marshal cannot fail.
	b, _ := marshal(obj)
	return b
}

// newResponsesObject is an in-progress Response object with the defaults
// the API reports for fields the relay does not track.
func newResponsesObject(id, model string, created int64) *responsesObject {
	return &responsesObject{
		ID: id, Object: "response", CreatedAt: created, Status: "in_progress", Model: model,
		Output: []any{}, ParallelToolCalls: true, Temperature: 1, TopP: 1, ToolChoice: "auto",
		Tools: []any{}, Truncation: "disabled",
		Text: responsesTextOut{Format: struct {
			Type string `json:"type"`
		}{Type: "text"}},
	}
}

// finish sets the terminal status and usage.
func (o *responsesObject) finish(stop StopReason, u provider.Usage, reasoning int64) {
	o.Status = "completed"
	if stop == StopMax {
		o.Status = "incomplete"
		o.IncompleteDetails = &responsesIncomp{Reason: "max_output_tokens"}
	}
	o.Usage = usageOut(u, reasoning)
}

func usageOut(u provider.Usage, reasoning int64) *responsesUsage {
	var out responsesUsage
	out.InputTokens = u.InputTokens + u.CacheReadTokens + u.CacheCreationTokens
	out.InputTokensDetails.CachedTokens = u.CacheReadTokens
	out.OutputTokens = u.OutputTokens
	out.OutputTokensDetails.ReasoningTokens = reasoning
	out.TotalTokens = out.InputTokens + out.OutputTokens
	return &out
}

// partItem is a non-text part's output item (nil for kinds with none).
func partItem(p Part, base string, n int) any {
	switch p.Kind {
	case PartToolCall:
		return callItem(p.Custom, itemID("fc_", base, n), itemID("ctc_", base, n), "completed", p.CallID, p.Name, p.Args)
	case PartThinking:
		return reasoningItem(reasoningItemID(p.Sig, base, n), p.Text, p.Sig, p.Redacted)
	}
	return nil
}

// callItem is a function_call (or, custom, a custom_tool_call) item: id is
// the function call's, customID the custom call's; a namespaced name is
// split back into namespace and name (joinNamespace).
func callItem(custom bool, id, customID, status, callID, name, args string) any {
	ns, base := splitNamespace(name)
	if custom {
		return responsesCustomOut{Type: "custom_tool_call", ID: customID, Status: status, CallID: callID, Namespace: ns, Name: base, Input: args}
	}
	if status == "completed" {
		args = argsOrEmpty(args)
	}
	return responsesFunctionOut{Type: "function_call", ID: id, Status: status, Arguments: args, CallID: callID, Namespace: ns, Name: base}
}

func messageItem(id, text, status string) responsesMessageOut {
	content := []responsesOutputText{}
	if status == "completed" {
		content = append(content, outputText(text))
	}
	return responsesMessageOut{Type: "message", ID: id, Status: status, Role: "assistant", Content: content}
}

func outputText(text string) responsesOutputText {
	return responsesOutputText{Type: "output_text", Text: text, Annotations: []any{}, Logprobs: []any{}}
}

// reasoningItem is a reasoning output item carrying text as its summary and
// the state the client must send back.
func reasoningItem(id, text string, sig Signature, redacted bool) responsesReasoningOut {
	it := responsesReasoningOut{Type: "reasoning", ID: id, Summary: []responsesSummary{}}
	if text != "" {
		it.Summary = append(it.Summary, responsesSummary{Type: "summary_text", Text: text})
	}
	if enc := clientReasoningState(sig, text, redacted); enc != "" {
		it.EncryptedContent = &enc
	}
	return it
}

// clientReasoningState is the encrypted_content a Responses client gets for
// thinking state sig: OpenAI's own value, else the wrapped foreign one.
func clientReasoningState(sig Signature, text string, redacted bool) string {
	switch {
	case sig.Origin == OriginOpenAI:
		return sig.Value
	case sig.Origin != "" && redacted:
		sig.ID = redactedSigID
	}
	return WrapSignature(sig, text)
}

// reasoningItemID keeps OpenAI's own reasoning item id.
func reasoningItemID(sig Signature, base string, n int) string {
	if sig.Origin == OriginOpenAI && strings.HasPrefix(sig.ID, "rs_") {
		return sig.ID
	}
	return itemID("rs_", base, n)
}

// responsesBase is the id stem the writers derive their ids from: the
// upstream id without its dialect prefix, or a random one.
func responsesBase(id string) string {
	for _, prefix := range []string{"resp_", "msg_", "chatcmpl-"} {
		if rest, ok := strings.CutPrefix(id, prefix); ok && rest != "" {
			return sanitizeToolID(rest)
		}
	}
	if id == "" {
		return randomID("")
	}
	return sanitizeToolID(id)
}

func itemID(prefix, base string, n int) string {
	return prefix + base + "_" + itoa(n)
}
