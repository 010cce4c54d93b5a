package convert

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// SanitizeCallID maps a tool call id onto the charset every dialect accepts
// ([A-Za-z0-9_-], Anthropic's): the same id always maps alike, so a call and
// its result, sent in different turns, still match.
func SanitizeCallID(id string) string { return sanitizeToolID(id) }

// sanitizeToolID maps a tool call id onto Anthropic's charset
// [A-Za-z0-9_-]. The same mapping is applied to tool_use ids and to
// tool_use_id, so pairs still match.
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

// EffortBudget is the thinking budget an effort stands for, for upstreams
// that take a budget (Anthropic budget_tokens, Gemini thinkingBudget):
// minimal and low 1024 (Anthropic's minimum), medium 4096, high 16384, xhigh
// 32768; 0 for "" and unknown efforts.
func EffortBudget(effort string) int64 {
	b, _ := thinkingBudget(effort)
	return b
}

// thinkingBudget maps an effort to a thinking budget in tokens; 1024 is
// Anthropic's minimum. "none" (and no effort) means no thinking; ok is false
// for an effort no dialect defines.
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

// BudgetEffort is the effort a thinking budget stands for, for upstreams
// that take an effort (OpenAI reasoning.effort): up to 2048 low, up to 8192
// medium, above high; "" for 0.
func BudgetEffort(budget int64) string {
	switch {
	case budget <= 0:
		return ""
	case budget <= 2048:
		return "low"
	case budget <= 8192:
		return "medium"
	}
	return "high"
}

// sigPrefix starts a signature the relay wrapped: thinking state of one
// provider handed to a client of another dialect, in that dialect's
// signature field (Anthropic signature, Responses encrypted_content, Gemini
// thoughtSignature). No provider's own state starts with it (Anthropic's and
// Gemini's are base64 without dots, OpenAI's Fernet tokens start "gAAAA").
const sigPrefix = "ccr1."

// WrapSignature packs sig (and the thinking text it signs, which Anthropic
// needs back verbatim with its signature) into one opaque string for a
// client whose dialect is not sig's origin. The client stores it and sends
// it back on the next turn, where UnwrapSignature restores both.
func WrapSignature(sig Signature, text string) string {
	if sig.Origin == "" {
		return ""
	}
	enc := base64.RawURLEncoding
	return sigPrefix + sig.Origin + "." + enc.EncodeToString([]byte(sig.ID)) + "." +
		enc.EncodeToString([]byte(sig.Value)) + "." + enc.EncodeToString([]byte(text))
}

// UnwrapSignature reads a string from a client's signature field: a wrapped
// one gives back its signature and text (ok); anything else is the native
// state of the dialect's own provider, which the caller keeps with its own
// origin (ok false).
func UnwrapSignature(s string) (sig Signature, text string, ok bool) {
	rest, found := strings.CutPrefix(s, sigPrefix)
	if !found {
		return Signature{}, "", false
	}
	f := strings.Split(rest, ".")
	if len(f) != 4 || f[0] == "" {
		return Signature{}, "", false
	}
	enc := base64.RawURLEncoding
	id, err1 := enc.DecodeString(f[1])
	val, err2 := enc.DecodeString(f[2])
	txt, err3 := enc.DecodeString(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return Signature{}, "", false
	}
	return Signature{Origin: f[0], ID: string(id), Value: string(val)}, string(txt), true
}

// HasWrappedSignature reports whether body may hold a signature the relay
// wrapped (WrapSignature): a scan for the prefix, cheap enough for every
// passthrough request. False means ScrubMessages and ScrubResponses have
// nothing to do.
func HasWrappedSignature(body []byte) bool {
	return bytes.Contains(body, []byte(sigPrefix))
}
