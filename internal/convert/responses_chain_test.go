package convert

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// TestClaudeCodeOnOpenAIKeepsTheReasoningChain runs a two-turn Claude Code
// tool conversation through the Messages and Responses codecs against the
// strict OpenAI fake, which refuses a tool turn that comes back without the
// reasoning item it issued: turn one's reasoning reaches Claude Code as a
// thinking block (its state wrapped in the signature), Claude Code sends the
// block back, and turn two carries the reasoning item upstream.
func TestClaudeCodeOnOpenAIKeepsTheReasoningChain(t *testing.T) {
	fake := &fakeupstream.OpenAI{Strict: true}
	fake.Script = func(n int, r *fakeupstream.Recorded) *fakeupstream.Reply {
		if n == 0 {
			return fake.ReasoningToolCall(r, "call_chain1", "Bash", `{"command":"ls"}`)
		}
		return nil
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	const turn1 = `{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":false,
	"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
	"messages":[{"role":"user","content":[{"type":"text","text":"list files"}]}],
	"tools":[{"name":"Bash","description":"Runs a command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}}],
	"thinking":{"type":"enabled","budget_tokens":8000},
	"metadata":{"user_id":"user_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef_account__session_8d3f"}}`
	answer := claudeCodeTurn(t, srv.URL, turn1)
	content := gjson.GetBytes(answer, "content")
	if content.Get("0.type").Str != "thinking" || content.Get("1.type").Str != "tool_use" || gjson.GetBytes(answer, "stop_reason").Str != "tool_use" {
		t.Fatalf("turn one answer: %s", answer)
	}

	turn2 := func(assistant string) string {
		return strings.Replace(turn1, `"messages":[{"role":"user","content":[{"type":"text","text":"list files"}]}]`,
			`"messages":[{"role":"user","content":[{"type":"text","text":"list files"}]},`+
				`{"role":"assistant","content":`+assistant+`},`+
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"`+content.Get("1.id").Str+`","content":"a.go\nb.go"}]}]`, 1)
	}
	answer = claudeCodeTurn(t, srv.URL, turn2(content.Raw))
	if gjson.GetBytes(answer, "content.0.text").Str != "Hello from fake upstream" {
		t.Fatalf("turn two answer: %s", answer)
	}
	if refused := fake.Refused(); len(refused) != 0 {
		t.Fatalf("the strict fake refused: %v", refused)
	}

	// Without the thinking block the chain is broken, and the fake says so:
	// the test above would fail if the codecs lost the reasoning item.
	body, err := DecodeMessages([]byte(turn2("[" + content.Get("1").Raw + "]")))
	if err != nil {
		t.Fatal(err)
	}
	body.Model = "gpt-5"
	up, err := EncodeResponses(body)
	if err != nil {
		t.Fatal(err)
	}
	if status, b := postJSON(t, srv.URL+"/v1/responses", up); status != 400 || !strings.Contains(string(b), "required 'reasoning' item") {
		t.Fatalf("a broken chain was served: %d %s", status, b)
	}
}

// claudeCodeTurn converts a Messages request for an OpenAI account, sends
// it, and converts the answer back.
func claudeCodeTurn(t *testing.T, base, body string) []byte {
	t.Helper()
	req, err := DecodeMessages([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Model = "gpt-5"
	up, err := EncodeResponses(req)
	if err != nil {
		t.Fatal(err)
	}
	status, b := postJSON(t, base+"/v1/responses", up)
	if status != 200 {
		t.Fatalf("upstream %d: %s\nrequest: %s", status, b, up)
	}
	resp, err := ParseResponses(b)
	if err != nil {
		t.Fatal(err)
	}
	return WriteMessages(resp, "claude-sonnet-4-5")
}

func postJSON(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// TestCodexOnClaudeKeepsThinkingAcrossTurns runs a Codex tool turn through
// the Responses and Messages codecs: Claude's signed thinking and redacted
// thinking reach Codex as reasoning items, Codex sends the items back as it
// does (without ids), and the next Anthropic request carries the thinking
// blocks exactly, before the apply_patch call, with the call's raw input.
func TestCodexOnClaudeKeepsThinkingAcrossTurns(t *testing.T) {
	codex := string(responsesFixture(t, "codex_request.json"))
	req, err := DecodeResponses([]byte(codex))
	if err != nil {
		t.Fatal(err)
	}
	req.Model = "claude-sonnet-4-5"
	if _, err := EncodeMessages(req); err != nil {
		t.Fatalf("turn one for Claude: %v", err)
	}
	claudeAnswer := `{"id":"msg_01Chain","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
		`{"type":"thinking","thinking":"The test fails on x.go:12.","signature":"EqQBCkgIBxABGAIiQLsig"},` +
		`{"type":"redacted_thinking","data":"EmwKAhgBEgy3redacted"},` +
		`{"type":"tool_use","id":"toolu_01Patch","name":"apply_patch","input":{"input":"*** Begin Patch\n*** Update File: x.go\n*** End Patch\n"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":50,"cache_creation_input_tokens":0,"cache_read_input_tokens":4000,"output_tokens":120}}`
	resp, err := ParseMessages([]byte(claudeAnswer))
	if err != nil {
		t.Fatal(err)
	}
	UncustomCalls(resp, req.Tools)
	written := WriteResponses(resp, "gpt-5-codex")
	out := gjson.GetBytes(written, "output").Array()
	if len(out) != 3 || out[0].Get("type").Str != "reasoning" || out[1].Get("type").Str != "reasoning" || out[2].Get("type").Str != "custom_tool_call" {
		t.Fatalf("Codex's answer: %s", written)
	}

	// Codex's next turn: its history plus the items as Codex stores them
	// (no id: ResponseItem skips it) and the tool's output.
	var items []string
	for _, it := range gjson.Get(codex, "input").Array() {
		items = append(items, it.Raw)
	}
	for _, it := range out {
		items = append(items, strings.Replace(it.Raw, `"id":"`+it.Get("id").Str+`",`, "", 1))
	}
	next, err := sjson.SetRaw(codex, "input", "["+strings.Join(items, ",")+
		`,{"type":"custom_tool_call_output","call_id":"toolu_01Patch","output":"Success."}]`)
	if err != nil {
		t.Fatal(err)
	}
	req2, err := DecodeResponses([]byte(next))
	if err != nil {
		t.Fatal(err)
	}
	req2.Model = "claude-sonnet-4-5"
	body, err := EncodeMessages(req2)
	if err != nil {
		t.Fatal(err)
	}
	msgs := gjson.GetBytes(body, "messages").Array()
	last := msgs[len(msgs)-2].Get("content")
	if msgs[len(msgs)-2].Get("role").Str != "assistant" ||
		last.Get("0.type").Str != "thinking" || last.Get("0.thinking").Str != "The test fails on x.go:12." || last.Get("0.signature").Str != "EqQBCkgIBxABGAIiQLsig" ||
		last.Get("1.type").Str != "redacted_thinking" || last.Get("1.data").Str != "EmwKAhgBEgy3redacted" ||
		last.Get("2.type").Str != "tool_use" || last.Get("2.id").Str != "toolu_01Patch" || last.Get("2.input.input").Str != "*** Begin Patch\n*** Update File: x.go\n*** End Patch\n" {
		t.Fatalf("the replayed assistant turn: %s", msgs[len(msgs)-2].Raw)
	}
	if res := msgs[len(msgs)-1].Get("content.0"); res.Get("type").Str != "tool_result" || res.Get("tool_use_id").Str != "toolu_01Patch" {
		t.Fatalf("the tool result: %s", msgs[len(msgs)-1].Raw)
	}
	if !gjson.GetBytes(body, "thinking").Exists() {
		t.Fatalf("thinking was turned off although the tool turn replays signed thinking: %s", body)
	}
}
