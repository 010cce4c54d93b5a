package convert

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// The client side's output: a neutral Response or Event stream as Chat
// Completions. Thinking text goes out as message.reasoning_content /
// delta.reasoning_content (the DeepSeek field many Chat clients show);
// its signature has no Chat field and is dropped, as is redacted thinking,
// so a Chat client's next turn carries no thinking state (docs/matrix.md).

// WriteChat renders resp as a chat.completion body. model is the model the
// client asked for (resp.Model when empty).
func WriteChat(resp *Response, model string) []byte {
	return writeChat(resp, model, time.Now().Unix())
}

func writeChat(resp *Response, model string, created int64) []byte {
	if model == "" {
		model = resp.Model
	}
	var text, reasoning strings.Builder
	hasText := false
	tools := make([]byte, 0, 64)
	nTools := 0
	for i := range resp.Parts {
		p := &resp.Parts[i]
		switch p.Kind {
		case PartText:
			text.WriteString(p.Text)
			hasText = true
		case PartThinking:
			reasoning.WriteString(p.Text)
		case PartToolCall:
			if nTools > 0 {
				tools = append(tools, ',')
			}
			tools = chatAppendCall(tools, nTools, p)
			nTools++
		}
	}

	out := make([]byte, 0, 256+text.Len()+reasoning.Len()+len(tools))
	out = append(out, `{"id":`...)
	out = appendString(out, chatCompletionID(resp.ID))
	out = append(out, `,"object":"chat.completion","created":`...)
	out = appendInt(out, created)
	out = append(out, `,"model":`...)
	out = appendString(out, model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if !hasText && nTools > 0 {
		out = append(out, "null"...) // what OpenAI sends for a pure tool call
	} else {
		out = appendString(out, text.String())
	}
	if reasoning.Len() > 0 {
		out = append(out, `,"reasoning_content":`...)
		out = appendString(out, reasoning.String())
	}
	if nTools > 0 {
		out = append(out, `,"tool_calls":[`...)
		out = append(out, tools...)
		out = append(out, ']')
	}
	out = append(out, `},"logprobs":null,"finish_reason":`...)
	out = appendString(out, chatFinishReason(resp.Stop))
	out = append(out, '}', ']')
	if !resp.UsageUnknown {
		out = append(out, `,"usage":`...)
		out = chatAppendUsage(out, resp.Usage, resp.ReasoningTokens)
	}
	return append(out, '}')
}

// chatCompletionID derives the completion id from the upstream's, so logs
// on both sides can be matched.
func chatCompletionID(id string) string {
	if id == "" {
		return randomID("chatcmpl-")
	}
	if strings.HasPrefix(id, "chatcmpl-") {
		return id
	}
	return "chatcmpl-" + id
}

// chatFinishReason maps a stop reason to a finish_reason: stop sequences,
// pauses and anything new are "stop".
func chatFinishReason(stop StopReason) string {
	switch stop {
	case StopMax, "model_context_window_exceeded":
		return "length"
	case StopTool:
		return "tool_calls"
	case StopRefusal:
		return "content_filter"
	}
	return "stop"
}

// chatAppendUsage writes OpenAI's usage object: prompt_tokens counts cache
// reads and writes (the relay's InputTokens does not).
func chatAppendUsage(dst []byte, u provider.Usage, reasoning int64) []byte {
	prompt := u.InputTokens + u.CacheCreationTokens + u.CacheReadTokens
	dst = append(dst, `{"prompt_tokens":`...)
	dst = appendInt(dst, prompt)
	dst = append(dst, `,"completion_tokens":`...)
	dst = appendInt(dst, u.OutputTokens)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, prompt+u.OutputTokens)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = appendInt(dst, u.CacheReadTokens)
	dst = append(dst, '}')
	if reasoning > 0 {
		dst = append(dst, `,"completion_tokens_details":{"reasoning_tokens":`...)
		dst = appendInt(dst, reasoning)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// chatCallArgs is a tool call's arguments as Chat carries them: compact
// JSON object text. A custom (freeform) call's raw input, which Chat has no
// field for, goes as {"input": <raw>}, the shape EncodeChat declares such
// tools with.
func chatCallArgs(p *Part) string {
	if p.Custom {
		return string(appendString(append([]byte(nil), `{"input":`...), p.Args)) + "}"
	}
	if strings.TrimSpace(p.Args) == "" {
		return "{}"
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(p.Args)) != nil {
		return p.Args // not JSON: passed on as the upstream gave it
	}
	return b.String()
}

// chatAppendCall writes one complete tool_calls entry. A call without an id
// gets one: clients answer by it.
func chatAppendCall(dst []byte, index int, p *Part) []byte {
	id := p.CallID
	if id == "" {
		id = randomID("call_")
	}
	dst = append(dst, `{"index":`...)
	dst = appendInt(dst, int64(index))
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"type":"function","function":{"name":`...)
	dst = appendString(dst, p.Name)
	dst = append(dst, `,"arguments":`...)
	dst = appendString(dst, chatCallArgs(p))
	return append(dst, `}}`...)
}
