package convert

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

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
