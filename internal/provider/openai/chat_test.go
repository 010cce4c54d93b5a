package openai

import (
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

func TestClassifyChatEvent(t *testing.T) {
	tests := []struct {
		name, data string
		want       provider.EventClass
		usage      provider.Usage
		seen       bool
	}{
		{"role chunk", `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`, provider.Preamble, provider.Usage{}, false},
		{"content", `{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`, provider.Content, provider.Usage{}, false},
		{"reasoning", `{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}`, provider.Content, provider.Usage{}, false},
		{"tool call", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`, provider.Content, provider.Usage{}, false},
		{"finish", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, provider.Content, provider.Usage{}, false},
		{"usage chunk", `{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":8}}}`, provider.Preamble,
			provider.Usage{InputTokens: 12, CacheReadTokens: 8, OutputTokens: 9}, true},
		{"deepseek cache hits", `{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9,"prompt_cache_hit_tokens":5}}`, provider.Preamble,
			provider.Usage{InputTokens: 15, CacheReadTokens: 5, OutputTokens: 9}, true},
		{"usage null", `{"choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}`, provider.Content, provider.Usage{}, false},
		{"error", `{"error":{"message":"overloaded","type":"server_error"}}`, provider.ErrorEvent, provider.Usage{}, false},
		{"done", `[DONE]`, provider.Terminal, provider.Usage{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u provider.Usage
			var seen bool
			if got := ClassifyChatEvent([]byte(tt.data), &u, &seen); got != tt.want || u != tt.usage || seen != tt.seen {
				t.Fatalf("class %v usage %+v seen %v; want %v %+v %v", got, u, seen, tt.want, tt.usage, tt.seen)
			}
		})
	}
}
