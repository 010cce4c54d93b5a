package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// MessagesToChat converts a non-streaming Anthropic Messages response body
// into a chat.completion body. model is the name to report (use the
// response's model when empty).
func MessagesToChat(body []byte, model string) ([]byte, error) {
	return messagesToChat(body, model, time.Now().Unix())
}

func messagesToChat(body []byte, model string, created int64) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("convert messages response: body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errors.New("convert messages response: body is not a JSON object")
	}
	if root.Get("type").String() == "error" {
		return nil, fmt.Errorf("convert messages response: upstream error %s: %s",
			root.Get("error.type").String(), root.Get("error.message").String())
	}
	if model == "" {
		model = root.Get("model").String()
	}

	var text, reasoning []byte
	hasText := false
	tools := make([]byte, 0, 64)
	nTools := 0
	var compact bytes.Buffer
	root.Get("content").ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").String() {
		case "text":
			text = append(text, b.Get("text").String()...)
			hasText = true
		case "thinking":
			reasoning = append(reasoning, b.Get("thinking").String()...)
		case "tool_use":
			if nTools > 0 {
				tools = append(tools, ',')
			}
			args := "{}"
			if in := b.Get("input"); in.Exists() && in.Type != gjson.Null {
				compact.Reset()
				if json.Compact(&compact, []byte(in.Raw)) == nil {
					args = compact.String()
				}
			}
			tools = appendToolCall(tools, nTools, b.Get("id").String(), b.Get("name").String(), args)
			nTools++
		}
		// redacted_thinking, server tool blocks and future types have no
		// Chat Completions counterpart.
		return true
	})

	out := make([]byte, 0, 256+len(text)+len(reasoning)+len(tools))
	out = append(out, `{"id":`...)
	out = appendString(out, chatID(root.Get("id").String()))
	out = append(out, `,"object":"chat.completion","created":`...)
	out = appendInt(out, created)
	out = append(out, `,"model":`...)
	out = appendString(out, model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if !hasText && nTools > 0 {
		out = append(out, "null"...) // what OpenAI sends for a pure tool call
	} else {
		out = appendString(out, string(text))
	}
	if len(reasoning) > 0 {
		out = append(out, `,"reasoning_content":`...)
		out = appendString(out, string(reasoning))
	}
	if nTools > 0 {
		out = append(out, `,"tool_calls":[`...)
		out = append(out, tools...)
		out = append(out, ']')
	}
	out = append(out, `},"logprobs":null,"finish_reason":`...)
	out = appendString(out, finishReason(root.Get("stop_reason").String()))
	out = append(out, `}],"usage":`...)
	out = appendUsage(out, readUsage(root.Get("usage")))
	return append(out, '}'), nil
}

// chatID derives the completion id from the upstream message id, so logs on
// both sides can be matched.
func chatID(msgID string) string {
	if msgID == "" {
		return randomID("chatcmpl-")
	}
	if strings.HasPrefix(msgID, "chatcmpl-") {
		return msgID
	}
	return "chatcmpl-" + msgID
}

// finishReason maps an Anthropic stop_reason to an OpenAI finish_reason.
// model_context_window_exceeded is a length stop in OpenAI's terms.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	// end_turn, stop_sequence, pause_turn and anything new.
	return "stop"
}

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

// appendUsage writes the OpenAI usage object. Anthropic's input_tokens
// excludes cached tokens while OpenAI's prompt_tokens includes them.
func appendUsage(dst []byte, u provider.Usage) []byte {
	prompt := u.InputTokens + u.CacheCreationTokens + u.CacheReadTokens
	dst = append(dst, `{"prompt_tokens":`...)
	dst = appendInt(dst, prompt)
	dst = append(dst, `,"completion_tokens":`...)
	dst = appendInt(dst, u.OutputTokens)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, prompt+u.OutputTokens)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = appendInt(dst, u.CacheReadTokens)
	return append(dst, `}}`...)
}

// appendToolCall writes one complete tool_calls entry.
func appendToolCall(dst []byte, index int, id, name, args string) []byte {
	dst = append(dst, `{"index":`...)
	dst = appendInt(dst, int64(index))
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"type":"function","function":{"name":`...)
	dst = appendString(dst, name)
	dst = append(dst, `,"arguments":`...)
	dst = appendString(dst, args)
	return append(dst, `}}`...)
}
