package openai

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// Chat Completions answers (api.openai.com's and the OpenAI-compatible
// vendors': DeepSeek, Kimi, GLM, OpenRouter, Ollama, vLLM...). Errors are
// OpenAI's shape: Classify and ClassifyStreamError read them.

// ChatUsage reads a Chat Completions usage object in the relay's terms:
// input without its cached part. The cached part is
// prompt_tokens_details.cached_tokens (OpenAI, vLLM), prompt_cache_hit_tokens
// (DeepSeek) or cached_tokens (Kimi). ok is false when u is no object (the
// upstream reported none).
func ChatUsage(u gjson.Result) (usage provider.Usage, ok bool) {
	if !u.IsObject() {
		return provider.Usage{}, false
	}
	get := func(path string) int64 {
		if n := u.Get(path).Int(); n > 0 {
			return n
		}
		return 0
	}
	prompt := get("prompt_tokens")
	cached := get("prompt_tokens_details.cached_tokens")
	if cached == 0 {
		cached = get("prompt_cache_hit_tokens")
	}
	if cached == 0 {
		cached = get("cached_tokens")
	}
	cached = min(cached, prompt)
	return provider.Usage{InputTokens: prompt - cached, CacheReadTokens: cached, OutputTokens: get("completion_tokens")}, true
}

// ParseChatUsage reads a chat.completion body's usage; ok is false when it
// has none.
func ParseChatUsage(body []byte) (provider.Usage, bool) {
	return ChatUsage(gjson.GetBytes(body, "usage"))
}

var chatDone = []byte("[DONE]")

// ClassifyChatEvent reads one chat.completion.chunk SSE event (data only,
// no event name): "[DONE]" ends a complete stream; an {"error":...} chunk
// is an error event; a chunk whose choices carry nothing yet (the role
// chunk) is preamble; any other is content. A chunk's usage (the last
// one's, with stream_options.include_usage) is merged into u; *seen is set
// when a chunk carried usage at all.
func ClassifyChatEvent(data []byte, u *provider.Usage, seen *bool) provider.EventClass {
	if bytes.Equal(bytes.TrimSpace(data), chatDone) {
		return provider.Terminal
	}
	r := gjson.ParseBytes(data)
	if e := r.Get("error"); e.Exists() && e.Type != gjson.Null {
		return provider.ErrorEvent
	}
	if cu, ok := ChatUsage(r.Get("usage")); ok {
		u.Merge(cu)
		*seen = true
	}
	class := provider.Preamble
	r.Get("choices").ForEach(func(_, ch gjson.Result) bool {
		d := ch.Get("delta")
		if ch.Get("finish_reason").Str != "" || d.Get("content").Str != "" || d.Get("reasoning_content").Str != "" ||
			d.Get("reasoning").Str != "" || d.Get("tool_calls").IsArray() || d.Get("refusal").Str != "" {
			class = provider.Content
			return false
		}
		return true
	})
	return class
}
