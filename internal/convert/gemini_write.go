package convert

import (
	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file writes the neutral Response as a client's
// GenerateContentResponse, the way the public API answers generateContent
// (Gemini CLI, the GenAI SDKs read it): one candidate, role model, its
// parts, finishReason, usageMetadata (promptTokenCount = Input + CacheRead
// + CacheCreation, cachedContentTokenCount = CacheRead, thoughtsTokenCount
// = ReasoningTokens, candidatesTokenCount the rest of the output),
// modelVersion the model the client asked for, responseId.
//
// Thinking is a thought part (thought:true) with its text; its state goes,
// as Gemini's own does, in the thoughtSignature of the part after it (an
// empty text part when nothing follows): Gemini's value as is, another
// provider's WrapSignature(sig, text), which DecodeGemini restores on the
// next turn. Gemini CLI keeps a call's thoughtSignature in its history
// (it drops thought parts), so a Claude or OpenAI thinking chain survives a
// tool turn. A call's id is its CallID. Stop reasons: StopMax MAX_TOKENS,
// StopRefusal SAFETY, any other STOP.

type (
	geminiResponse struct {
		Candidates    []geminiCandidate `json:"candidates"`
		UsageMetadata *geminiUsage      `json:"usageMetadata,omitempty"`
		ModelVersion  string            `json:"modelVersion"`
		ResponseID    string            `json:"responseId"`
	}
	geminiCandidate struct {
		Content      geminiContent `json:"content"`
		FinishReason string        `json:"finishReason,omitempty"`
		Index        int           `json:"index"`
	}
	geminiUsage struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		TotalTokenCount         int64 `json:"totalTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount,omitempty"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount,omitempty"`
	}
)

// WriteGemini writes resp as a client's GenerateContentResponse,
// reporting model.
func WriteGemini(resp *Response, model string) []byte {
	parts := encodeGeminiModelParts(resp.Parts, geminiClient)
	if len(parts) == 0 {
		parts = []geminiPart{geminiTextPart("")}
	}
	id := resp.ID
	if id == "" {
		id = randomID("")
	}
	out := geminiResponse{
		Candidates: []geminiCandidate{{Content: geminiContent{Role: "model", Parts: parts},
			FinishReason: geminiFinishReason(resp.Stop)}},
		UsageMetadata: geminiUsageOut(resp.Usage, resp.ReasoningTokens),
		ModelVersion:  model,
		ResponseID:    id,
	}
	// Args are valid JSON objects (geminiArgs): marshal cannot fail.
	b, _ := marshal(out)
	return b
}

// geminiFinishReason maps a stop reason onto Gemini's finishReason.
func geminiFinishReason(stop StopReason) string {
	switch stop {
	case StopMax:
		return "MAX_TOKENS"
	case StopRefusal:
		return "SAFETY"
	}
	return "STOP"
}

func geminiUsageOut(u provider.Usage, reasoning int64) *geminiUsage {
	prompt := u.InputTokens + u.CacheReadTokens + u.CacheCreationTokens
	reasoning = min(max(reasoning, 0), u.OutputTokens)
	return &geminiUsage{
		PromptTokenCount:        prompt,
		CandidatesTokenCount:    u.OutputTokens - reasoning,
		TotalTokenCount:         prompt + u.OutputTokens,
		CachedContentTokenCount: u.CacheReadTokens,
		ThoughtsTokenCount:      reasoning,
	}
}
