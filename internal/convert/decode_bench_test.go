package convert

// Benchmarks of the request decoders on bodies shaped like the clients'
// real ones (reference/clients.md):
//
//	go test ./internal/convert -run '^$' -bench 'Decode(Messages|Responses)' -benchmem -count 5

import (
	"fmt"
	"strings"
	"testing"
)

// claudeCodeBenchBody is a ~30 KB Messages request shaped like Claude
// Code's: the billing header and two cached system blocks, 12 tools with
// JSON schemas, a role:"system" message, thinking blocks with signatures
// and 5 tool round trips, adaptive thinking with an effort, metadata and
// the fields the decoder ignores (context_management).
func claudeCodeBenchBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-5","max_tokens":32000,"messages":[`)
	b.WriteString(`{"role":"user","content":[{"type":"text","text":"<system-reminder>\nAs you answer the user's questions, you can use the following context:\n# claudeMd\nThe working directory is a Go module.\n</system-reminder>"},{"type":"text","text":"Find why the tests fail and fix them."}]},`)
	b.WriteString(`{"role":"system","content":"Available agent types for the Task tool: general-purpose, statusline-setup, output-style-setup."}`)
	out := strings.Repeat("ok   github.com/example/project/internal/pkg   0.012s\\n", 20)
	for turn := range 5 {
		fmt.Fprintf(&b, `,{"role":"assistant","content":[{"type":"thinking","thinking":"I should run the tests of package %d first and read the failures.","signature":"EqQBCkYIBxgCKkB%sAAA"},{"type":"text","text":"Running the tests."},{"type":"tool_use","id":"toolu_01%022d","name":"Bash","input":{"command":"go test ./internal/pkg%d/...","description":"Run the tests"}}]}`,
			turn, strings.Repeat("x9Zq", 60), turn, turn)
		fmt.Fprintf(&b, `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01%022d","content":"%s","is_error":false}]}`, turn, out)
	}
	b.WriteString(`,{"role":"user","content":[{"type":"text","text":"Go on.","cache_control":{"type":"ephemeral"}}]}],`)
	b.WriteString(`"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli;"},{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"`)
	b.WriteString(strings.Repeat("You are an interactive CLI tool that helps users with software engineering tasks. ", 40))
	b.WriteString(`","cache_control":{"type":"ephemeral"}}],"tools":[`)
	for t := range 12 {
		if t > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"Tool%02d","description":"%s","input_schema":{"type":"object","properties":{`, t,
			strings.Repeat("Runs an operation in the user's workspace and returns its output. ", 8))
		for p := range 5 {
			if p > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"param_%d":{"type":"string","description":"The value of this parameter, as described in the tool's documentation."}`, p)
		}
		b.WriteString(`},"required":["param_0"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}}`)
	}
	b.WriteString(`],"metadata":{"user_id":"{\"device_id\":\"00000000000000000000000000000000000000000000000000000000000000a1\",\"account_uuid\":\"\",\"session_id\":\"5e550001-0000-4000-8000-000000000001\"}"},`)
	b.WriteString(`"thinking":{"type":"adaptive"},"output_config":{"effort":"high"},"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},"stream":true}`)
	return []byte(b.String())
}

// codexBenchBody is a ~30 KB Responses request shaped like Codex CLI's:
// instructions, the developer and environment messages, function, custom
// and namespace tools, and a history of reasoning items, function calls and
// their outputs.
func codexBenchBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"claude-sonnet-4-5","instructions":"`)
	b.WriteString(strings.Repeat("You are Codex, a coding agent based on GPT-5. You and the user share the same workspace. ", 40))
	b.WriteString(`","input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"<permissions instructions>sandbox: workspace-write</permissions instructions>"}]},`)
	b.WriteString(`{"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>\n  <cwd>/repo</cwd>\n  <shell>bash</shell>\n</environment_context>"}]},`)
	b.WriteString(`{"type":"message","role":"user","content":[{"type":"input_text","text":"Fix the failing test."}]}`)
	out := strings.Repeat("ok   github.com/example/project/internal/pkg   0.012s\\n", 20)
	for turn := range 5 {
		fmt.Fprintf(&b, `,{"type":"reasoning","id":"rs_%d","summary":[{"type":"summary_text","text":"**Running the tests of package %d**"}],"encrypted_content":"gAAAAB%s"}`, turn, turn, strings.Repeat("q8Rz", 100))
		fmt.Fprintf(&b, `,{"type":"function_call","id":"fc_%d","status":"completed","name":"shell","arguments":"{\"command\":[\"go\",\"test\",\"./internal/pkg%d/...\"],\"workdir\":\"/repo\"}","call_id":"call_%d"}`, turn, turn, turn)
		fmt.Fprintf(&b, `,{"type":"function_call_output","call_id":"call_%d","output":"Chunk ID: %d\nProcess exited with code 0\nOutput:\n%s"}`, turn, turn, out)
		fmt.Fprintf(&b, `,{"type":"message","role":"assistant","id":"msg_%d","content":[{"type":"output_text","text":"Package %d passes."}]}`, turn, turn)
	}
	b.WriteString(`],"tools":[`)
	for t := range 8 {
		fmt.Fprintf(&b, `{"type":"function","name":"tool_%d","description":"%s","strict":false,"parameters":{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"},"description":"The command to execute"},"workdir":{"type":"string","description":"The working directory"}},"required":["command"],"additionalProperties":false}},`,
			t, strings.Repeat("Runs a shell command and returns its output. ", 6))
	}
	b.WriteString(`{"type":"custom","name":"apply_patch","description":"Use the apply_patch tool to edit files.","format":{"type":"grammar","syntax":"lark","definition":"start: begin_patch hunk+ end_patch"}},`)
	b.WriteString(`{"type":"namespace","name":"mcp__fs","tools":[{"type":"function","name":"read","description":"Read a file","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}]},`)
	b.WriteString(`{"type":"web_search"}],"tool_choice":"auto","parallel_tool_calls":true,"reasoning":{"effort":"medium","summary":"auto"},"store":false,"stream":true,`)
	b.WriteString(`"include":["reasoning.encrypted_content"],"prompt_cache_key":"5e550001-0000-4000-8000-000000000001","text":{"verbosity":"low"}}`)
	return []byte(b.String())
}

func BenchmarkDecodeMessages(b *testing.B) {
	benchDecode(b, claudeCodeBenchBody(), DecodeMessages)
}

func BenchmarkDecodeResponses(b *testing.B) {
	benchDecode(b, codexBenchBody(), DecodeResponses)
}

// benchDecode measures decode on body, which must decode.
func benchDecode(b *testing.B, body []byte, decode func([]byte) (*Request, error)) {
	if _, err := decode(body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
