package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// relayKey is the relay key of the generated config; the load generator
// sends it to every target (direct and baseline ignore it).
const relayKey = "rb-relay-key-0123456789abcdef"

// requestHeaders are the headers Claude Code 2.1 sends with a Messages call
// (reference/clients.md), so header copying costs what it does in real use.
func requestHeaders() http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"Accept":                                    "application/json",
		"Content-Type":                              "application/json",
		"User-Agent":                                "claude-cli/2.1.197 (external, sdk-cli)",
		"X-Stainless-Arch":                          "x64",
		"X-Stainless-Lang":                          "js",
		"X-Stainless-Os":                            "Linux",
		"X-Stainless-Package-Version":               "0.94.0",
		"X-Stainless-Retry-Count":                   "0",
		"X-Stainless-Runtime":                       "node",
		"X-Stainless-Runtime-Version":               "v26.3.0",
		"X-Stainless-Timeout":                       "600",
		"Anthropic-Beta":                            "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,thinking-token-count-2026-05-13,context-management-2025-06-27,prompt-caching-scope-2026-01-05,mid-conversation-system-2026-04-07,effort-2025-11-24",
		"Anthropic-Dangerous-Direct-Browser-Access": "true",
		"Anthropic-Version":                         "2023-06-01",
		"X-Api-Key":                                 relayKey,
		"X-App":                                     "cli",
	} {
		h.Set(k, v)
	}
	return h
}

// codexHeaders are the headers Codex CLI sends with a Responses call
// (reference/clients.md), with the relay key as its bearer token.
func codexHeaders() http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"Accept":                "text/event-stream",
		"Content-Type":          "application/json",
		"Authorization":         "Bearer " + relayKey,
		"Originator":            "codex_exec",
		"User-Agent":            "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.169.0)",
		"X-Codex-Beta-Features": "remote_compaction_v2",
	} {
		h.Set(k, v)
	}
	return h
}

// sessionID is a stable fake UUID for session i.
func sessionID(i int) string {
	return fmt.Sprintf("5e55%04x-0000-4000-8000-%012x", i&0xffff, i)
}

func userID(i int) string {
	return fmt.Sprintf(`{"device_id":"%064x","account_uuid":"","session_id":"%s"}`, i+1, sessionID(i))
}

// smallBodies returns n ~4 KB Messages requests, one per session.
func smallBodies(n int, stream bool) [][]byte {
	return messagesBodies(n, stream, "claude-sonnet-5", "")
}

// messagesBodies returns n ~4 KB Messages requests for model, one per
// session, whose first text begins with lead.
func messagesBodies(n int, stream bool, model, lead string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = padTo(ordered{
			{"model", model},
			{"messages", []any{
				map[string]any{"role": "user", "content": []any{
					map[string]any{"type": "text", "text": lead + "Please review this function and tell me what it does:\n\n"},
					map[string]any{"type": "text", "text": "PAD", "cache_control": map[string]any{"type": "ephemeral"}},
				}},
			}},
			{"system", []any{map[string]any{"type": "text", "text": "You are a careful assistant. Answer briefly."}}},
			{"metadata", map[string]any{"user_id": userID(i)}},
			{"max_tokens", 1024},
			{"stream", stream},
		}, 4<<10)
	}
	return out
}

// responsesBodies returns n ~4 KB streaming Responses requests for model,
// shaped like Codex CLI's (reference/clients.md: the base prompt as a
// developer message, store false, prompt_cache_key the session), one per
// session, whose user text begins with lead.
func responsesBodies(n int, model, lead string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = padTo(ordered{
			{"model", model},
			{"stream", true},
			{"input", []any{
				map[string]any{"type": "message", "role": "developer", "content": []any{
					map[string]any{"type": "input_text", "text": "You are a careful assistant. Answer briefly."},
				}},
				map[string]any{"type": "message", "role": "user", "content": []any{
					map[string]any{"type": "input_text", "text": lead + "Please review this function and tell me what it does:\n\n"},
					map[string]any{"type": "input_text", "text": "PAD"},
				}},
			}},
			{"tool_choice", "auto"},
			{"parallel_tool_calls", true},
			{"store", false},
			{"prompt_cache_key", sessionID(i)},
		}, 4<<10)
	}
	return out
}

// claudeCodeBodies returns n ~100 KB requests shaped like Claude Code's: three
// system blocks with cache_control, 24 tools with JSON schemas, a
// conversation with tool round trips, a role:"system" message, thinking,
// context_management and output_config (reference/clients.md).
func claudeCodeBodies(n int, stream bool) [][]byte {
	out := make([][]byte, n)
	prompt := strings.Repeat("You are an interactive CLI tool that helps users with software engineering tasks. Use the instructions below and the tools available to you to assist the user. ", 40)
	var tools []any
	for t := range 24 {
		props := map[string]any{}
		for p := range 6 {
			props[fmt.Sprintf("param_%d", p)] = map[string]any{"type": "string", "description": strings.Repeat("The value of this parameter, as described in the tool's documentation. ", 3)}
		}
		tools = append(tools, map[string]any{
			"name":         fmt.Sprintf("Tool%02d", t),
			"description":  strings.Repeat("Runs an operation in the user's workspace and returns its output. Use it when the task needs it; prefer specialised tools. ", 8),
			"input_schema": map[string]any{"type": "object", "properties": props, "required": []string{"param_0"}, "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"},
		})
	}
	for i := range out {
		msgs := []any{
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "<system-reminder>As you answer the user's questions, you can use the following context: the working directory is a Go module.</system-reminder>"},
				map[string]any{"type": "text", "text": "Find why the tests fail and fix them."},
			}},
			map[string]any{"role": "system", "content": "Available agent types for the Task tool: general-purpose, statusline-setup, output-style-setup."},
		}
		for turn := range 6 {
			id := fmt.Sprintf("toolu_01Bench%04d%02d", i, turn)
			msgs = append(msgs,
				map[string]any{"role": "assistant", "content": []any{
					map[string]any{"type": "text", "text": "Let me look at the failing test output."},
					map[string]any{"type": "tool_use", "id": id, "name": "Tool00", "input": map[string]any{"param_0": "go test ./..."}},
				}},
				map[string]any{"role": "user", "content": []any{
					map[string]any{"type": "tool_result", "tool_use_id": id, "content": "PADTURN", "is_error": false},
				}},
			)
		}
		last := msgs[len(msgs)-1].(map[string]any)["content"].([]any)[0].(map[string]any)
		last["cache_control"] = map[string]any{"type": "ephemeral"}
		// Claude Code's key order: what a relay looks for (metadata, stream) comes after the bulk.
		body := ordered{
			{"model", "claude-opus-4-8"},
			{"messages", msgs},
			{"system", []any{
				map[string]any{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.123; cc_entrypoint=sdk-cli;"},
				map[string]any{"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.", "cache_control": map[string]any{"type": "ephemeral"}},
				map[string]any{"type": "text", "text": prompt, "cache_control": map[string]any{"type": "ephemeral"}},
			}},
			{"tools", tools},
			{"metadata", map[string]any{"user_id": userID(i)}},
			{"max_tokens", 64000},
			{"thinking", map[string]any{"type": "adaptive"}},
			{"context_management", map[string]any{"edits": []any{map[string]any{"type": "clear_thinking_20251015", "keep": "all"}}}},
			{"output_config", map[string]any{"effort": "high"}},
			{"stream", stream},
		}
		b := mustJSON(body)
		// Spread the remaining bytes over the six tool results (the pad needs no JSON escapes).
		per := (100<<10-len(b))/6 + len(`"PADTURN"`)
		pad := strings.Repeat("ok   github.com/example/project/internal/pkg   0.012s | ", per/50+1)[:max(per-2, 1)]
		b = bytes.ReplaceAll(b, []byte(`"PADTURN"`), []byte(`"`+pad+`"`))
		out[i] = b
	}
	return out
}

// ordered is a JSON object that keeps its key order.
type ordered []struct {
	k string
	v any
}

// MarshalJSON writes the keys in order.
func (o ordered) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, kv := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, mustJSON(kv.k)...)
		b = append(b, ':')
		b = append(b, mustJSON(kv.v)...)
	}
	return append(b, '}'), nil
}

// mustJSON marshals v as a JavaScript client would (no HTML escaping).
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// padTo marshals body and grows its "PAD" text so the JSON is about size bytes.
func padTo(body ordered, size int) []byte {
	b := mustJSON(body)
	n := max(size-len(b)+len(`"PAD"`)-2, 1)
	pad := strings.Repeat("func add(a, b int) int { return a + b } // adds two numbers. ", n/60+1)[:n]
	return bytes.Replace(b, []byte(`"PAD"`), []byte(`"`+pad+`"`), 1)
}
