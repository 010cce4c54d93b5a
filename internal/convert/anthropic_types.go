package convert

import (
	"encoding/json"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// Anthropic Messages wire types and constants shared by the Messages codec
// (anthropic_*.go) and the other encoders that follow Anthropic's rules.

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

// defaultToolSchema is the input schema of a function declared without
// parameters; Anthropic (and OpenAI's strict tools) require an object
// schema.
const defaultToolSchema = `{"type":"object","properties":{}}`

// The system instructions that carry a JSON output format to an upstream
// with no JSON mode of its own: Claude follows them reliably, though nothing
// enforces them.
const (
	jsonObjectInstruction = "Respond only with a single valid JSON object. Do not wrap it in Markdown code fences and do not write anything before or after it."
	jsonSchemaInstruction = "Respond only with a single valid JSON value that conforms to the JSON Schema below. Do not wrap it in Markdown code fences and do not write anything before or after it."
)

// readUsage reads an Anthropic usage object; absent or negative counters are
// zero.
func readUsage(u gjson.Result) provider.Usage {
	get := func(path string) int64 {
		n := u.Get(path).Int()
		if n < 0 {
			return 0
		}
		return n
	}
	return provider.Usage{
		InputTokens:           get("input_tokens"),
		OutputTokens:          get("output_tokens"),
		CacheCreationTokens:   get("cache_creation_input_tokens"),
		CacheCreation1hTokens: get("cache_creation.ephemeral_1h_input_tokens"),
		CacheReadTokens:       get("cache_read_input_tokens"),
	}
}

// messagesLater holds the top-level members DecodeMessages reads after its
// pass over all of them.
type messagesLater struct {
	messages, thinking, outputConfig, toolChoice, tools, outputFormat gjson.Result
}

// keep records v under key if it is one of the members read later and the
// first of its name.
func (l *messagesLater) keep(key string, v gjson.Result) {
	var dst *gjson.Result
	switch key {
	case "messages":
		dst = &l.messages
	case "thinking":
		dst = &l.thinking
	case "output_config":
		dst = &l.outputConfig
	case "tool_choice":
		dst = &l.toolChoice
	case "tools":
		dst = &l.tools
	case "output_format":
		dst = &l.outputFormat
	default:
		return
	}
	if !dst.Exists() {
		*dst = v
	}
}
