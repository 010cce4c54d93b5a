package fakeupstream

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The fakes' token-count methods, as strict as the real ones about what
// they take: Anthropic's count_tokens refuses generation parameters
// ("max_tokens: Extra inputs are not permitted"), OpenAI's
// /responses/input_tokens refuses parameters it does not know, and
// Gemini's countTokens takes contents or a whole generateContentRequest
// that names its model.

// OpenAIInputTokens is the fake OpenAI's /responses/input_tokens count.
const OpenAIInputTokens = 137

// anthropicCountFields are the members count_tokens takes.
var anthropicCountFields = map[string]bool{"model": true, "messages": true, "system": true, "tools": true,
	"tool_choice": true, "thinking": true, "mcp_servers": true, "context_management": true}

// openAICountFields are the members /responses/input_tokens takes.
var openAICountFields = map[string]bool{"conversation": true, "input": true, "instructions": true, "model": true,
	"parallel_tool_calls": true, "previous_response_id": true, "reasoning": true, "text": true,
	"tool_choice": true, "tools": true, "truncation": true}

// isCountTokens reports whether rec is an Anthropic count_tokens call.
func isCountTokens(rec *Recorded) bool {
	return rec.Method == http.MethodPost && strings.HasSuffix(rec.Path, "/count_tokens")
}

// anthropicCountRefusal is the strict Anthropic fake's refusal of a
// count_tokens body, or nil.
func anthropicCountRefusal(rec *Recorded) *Reply {
	var bad string
	gjson.ParseBytes(rec.Body).ForEach(func(k, _ gjson.Result) bool {
		if !anthropicCountFields[k.Str] {
			bad = k.Str
		}
		return bad == ""
	})
	if bad == "" {
		return nil
	}
	return &Reply{Status: 400, Body: AnthropicError("invalid_request_error", bad+": Extra inputs are not permitted")}
}

// isInputTokens reports whether rec is a Responses input_tokens call.
func isInputTokens(rec *Recorded) bool {
	return rec.Method == http.MethodPost && strings.HasSuffix(rec.Path, "/responses/input_tokens")
}

// inputTokensReply answers a Responses input_tokens call: an unknown
// parameter is refused as the real API does, else the count.
func inputTokensReply(rec *Recorded) *Reply {
	root := gjson.ParseBytes(rec.Body)
	if !root.IsObject() {
		return &Reply{Status: 400, Body: OpenAIError("We could not parse the JSON body of your request.", "invalid_request_error", "", "")}
	}
	var bad string
	root.ForEach(func(k, _ gjson.Result) bool {
		if !openAICountFields[k.Str] {
			bad = k.Str
		}
		return bad == ""
	})
	if bad != "" {
		return &Reply{Status: 400, Body: OpenAIError(fmt.Sprintf("Unknown parameter: '%s'.", bad), "invalid_request_error", bad, "unknown_parameter")}
	}
	return &Reply{Body: fmt.Sprintf(`{"object":"response.input_tokens","input_tokens":%d}`, OpenAIInputTokens)}
}

// geminiCountRefusal is the strict Gemini fake's refusal of a countTokens
// body, or nil: only contents or generateContentRequest at the top, and a
// generateContentRequest must name its model and pass the strict checks of
// a generateContent body.
func geminiCountRefusal(rec *Recorded, model string) *Reply {
	root := gjson.ParseBytes(rec.Body)
	var bad string
	root.ForEach(func(k, _ gjson.Result) bool {
		if k.Str != "contents" && k.Str != "generateContentRequest" {
			bad = k.Str
		}
		return bad == ""
	})
	if bad != "" {
		return &Reply{Status: 400, Body: GoogleError(400, "INVALID_ARGUMENT", "", fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", bad), "")}
	}
	gcr := root.Get("generateContentRequest")
	if !gcr.Exists() {
		return nil
	}
	if gcr.Get("model").Str != "models/"+model {
		return &Reply{Status: 400, Body: GoogleError(400, "INVALID_ARGUMENT", "", "GenerateContentRequest.model: unexpected model name format", "")}
	}
	inner, _ := sjson.DeleteBytes([]byte(gcr.Raw), "model")
	if err := CheckStrictGemini(inner, model); err != nil {
		return &Reply{Status: 400, Body: err.(*GeminiStrictError).Body()}
	}
	return nil
}
