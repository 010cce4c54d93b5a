package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
)

// Reading a Chat upstream's answer. Servers differ (docs/matrix.md):
//
//   - reasoning comes as message.reasoning_content (DeepSeek, Kimi, vLLM),
//     message.reasoning (OpenRouter, Ollama), or as <think>...</think> at
//     the start of the content (reasoning models served raw); all become a
//     thinking part of origin OriginChat: its text is the state DeepSeek and
//     Kimi want back on a tool-call turn (EncodeChat sends it back);
//   - tool calls without an id get a generated "call_..." one, and an
//     answer with tool calls is a tool_use stop whatever finish_reason says
//     (some servers say "stop");
//   - cached input is prompt_tokens_details.cached_tokens (OpenAI),
//     prompt_cache_hit_tokens (DeepSeek) or usage.cached_tokens (Kimi), and
//     is split out of prompt_tokens; an answer without usage has
//     UsageUnknown set.

// The tags a reasoning model's raw output opens and closes its thinking
// with.
const (
	chatThinkOpen  = "<think>"
	chatThinkClose = "</think>"
	chatSpace      = " \t\r\n"
)

// ParseChat reads an upstream's chat.completion body (its first choice).
// An error body or a body without a choice is an error.
func ParseChat(body []byte) (*Response, error) {
	if !json.Valid(body) {
		return nil, errors.New("parse chat completion: body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errors.New("parse chat completion: body is not a JSON object")
	}
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		return nil, fmt.Errorf("parse chat completion: upstream error %s: %s", chatErrorType(e), e.Get("message").String())
	}
	ch := chatFirstChoice(root.Get("choices"))
	if !ch.Exists() {
		return nil, errors.New("parse chat completion: no choice in the answer")
	}
	msg := ch.Get("message")
	r := &Response{ID: root.Get("id").String(), Model: root.Get("model").String()}
	thinking := chatReasoning(msg)
	text := chatText(msg.Get("content"))
	if think, rest, ok := chatSplitThink(text); ok {
		thinking, text = thinking+think, rest
	}
	if thinking != "" {
		r.Parts = append(r.Parts, Part{Kind: PartThinking, Text: thinking, Sig: Signature{Origin: OriginChat}})
	}
	refusal := msg.Get("refusal").String()
	if text == "" {
		text = refusal
	}
	if text != "" {
		r.Parts = append(r.Parts, Part{Kind: PartText, Text: text})
	}
	msg.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		r.Parts = append(r.Parts, chatParsedCall(tc.Get("id").String(), tc.Get("function")))
		return true
	})
	if fc := msg.Get("function_call"); fc.IsObject() { // the legacy form
		r.Parts = append(r.Parts, chatParsedCall("", fc))
	}
	hasCalls := len(r.Parts) > 0 && r.Parts[len(r.Parts)-1].Kind == PartToolCall
	r.Stop = chatStopReason(ch.Get("finish_reason").String(), hasCalls)
	if refusal != "" && r.Stop == StopEnd {
		r.Stop = StopRefusal
	}
	var ok bool
	r.Usage, r.ReasoningTokens, ok = chatReadUsage(root.Get("usage"))
	r.UsageUnknown = !ok
	return r, nil
}

// chatFirstChoice is the choice with index 0 (or none said): the relay
// asks for one; a chunk of another choice carries nothing for it.
func chatFirstChoice(choices gjson.Result) gjson.Result {
	var first gjson.Result
	choices.ForEach(func(_, c gjson.Result) bool {
		if c.IsObject() && c.Get("index").Int() == 0 {
			first = c
			return false
		}
		return true
	})
	return first
}

// chatReasoning is a message's or a delta's reasoning text.
func chatReasoning(m gjson.Result) string {
	if s := m.Get("reasoning_content"); s.Type == gjson.String {
		return s.Str
	}
	if s := m.Get("reasoning"); s.Type == gjson.String {
		return s.Str
	}
	return ""
}

// chatText is a content value's text: a string, or the text parts of an
// array some servers send.
func chatText(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	var b strings.Builder
	v.ForEach(func(_, p gjson.Result) bool {
		if t := p.Get("text"); t.Type == gjson.String {
			b.WriteString(t.Str)
		}
		return true
	})
	return b.String()
}

// chatSplitThink takes the <think>...</think> a reasoning model's raw
// output starts with: its text, and what follows without leading blanks.
// An unclosed tag (the answer was cut) is all thinking.
func chatSplitThink(s string) (think, rest string, ok bool) {
	t := strings.TrimLeft(s, chatSpace)
	if !strings.HasPrefix(t, chatThinkOpen) {
		return "", s, false
	}
	think, rest, closed := strings.Cut(t[len(chatThinkOpen):], chatThinkClose)
	if !closed {
		return think, "", true
	}
	return think, strings.TrimLeft(rest, chatSpace), true
}

// chatParsedCall is a tool call; arguments may be JSON text or (some
// servers) the object itself.
func chatParsedCall(id string, fn gjson.Result) Part {
	if id == "" {
		id = randomID("call_")
	}
	args := fn.Get("arguments")
	a := strings.TrimSpace(args.String())
	if args.IsObject() {
		a = args.Raw
	}
	if a == "" {
		a = "{}"
	}
	return Part{Kind: PartToolCall, CallID: id, Name: fn.Get("name").String(), Args: a}
}

// chatStopReason maps a finish_reason; an answer that calls tools stops
// for them whatever the server said.
func chatStopReason(finish string, hasCalls bool) StopReason {
	switch finish {
	case "length":
		return StopMax
	case "content_filter":
		return StopRefusal
	case "tool_calls", "function_call":
		return StopTool
	}
	if hasCalls {
		return StopTool
	}
	return StopEnd
}

// chatReadUsage splits a Chat usage object into the relay's terms (input
// without the cached part, as provider/openai's ChatUsage reads it for the
// relay's own accounting) and adds the reasoning tokens. ok is false when
// there is none.
func chatReadUsage(u gjson.Result) (usage provider.Usage, reasoning int64, ok bool) {
	usage, ok = openai.ChatUsage(u)
	if !ok {
		return provider.Usage{}, 0, false
	}
	return usage, max(u.Get("completion_tokens_details.reasoning_tokens").Int(), 0), true
}

// chatErrorType is an error object's type, else its code.
func chatErrorType(e gjson.Result) string {
	if t := e.Get("type").String(); t != "" {
		return t
	}
	return e.Get("code").String()
}
