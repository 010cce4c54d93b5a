package convert

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// openaiWrapped is an OpenAI reasoning state as a Messages or Responses
// client of a converted turn holds it.
var openaiWrapped = WrapSignature(Signature{Origin: OriginOpenAI, Value: "gAAAABreasoning", ID: "rs_1"}, "I will call run_shell.")

// A Claude Code conversation whose second turn OpenAI served, on its way
// back to Anthropic (passthrough): the strict Anthropic fake refuses the
// body as the client sent it, and takes it scrubbed. Found by
// TestRouteFallbackConversationAcrossPools (turn 4 came back to Claude and
// got a 400 for OpenAI's wrapped signature).
func TestScrubMessages(t *testing.T) {
	native := fmt.Sprintf(`{"type":"thinking","thinking":"plan","signature":%q}`, fakeupstream.FakeSignature("plan"))
	wrapped := fmt.Sprintf(`{"type":"thinking","thinking":"I will call run_shell.","signature":%q}`, openaiWrapped)
	wrappedRedacted := fmt.Sprintf(`{"type":"redacted_thinking","data":%q}`, openaiWrapped)
	turn1 := `{"role":"user","content":"run it"},{"role":"assistant","content":[` + native + `,{"type":"tool_use","id":"toolu_1","name":"run_shell","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]}`
	body := func(thinking, msgs string) []byte {
		return []byte(`{"model":"claude-sonnet-4-5","max_tokens":8192` + thinking + `,"messages":[` + msgs + `]}`)
	}
	const on = `,"thinking":{"type":"enabled","budget_tokens":2048}`
	cases := []struct {
		name, in  string
		thinking  bool // thinking still on after the scrub
		wantMsgs  int
		wantBlock string // the first block of messages.3 after the scrub
	}{
		{"final tool turn from OpenAI: its thinking goes, and thinking with it",
			string(body(on, turn1+`,{"role":"assistant","content":[`+wrapped+`,{"type":"tool_use","id":"call_2","name":"run_shell","input":{}}]},`+
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_2","content":"ok"}]}`)), false, 5, "tool_use"},
		{"an earlier OpenAI turn: its thinking goes, thinking stays on",
			string(body(on, turn1+`,{"role":"assistant","content":[`+wrapped+`,`+wrappedRedacted+`,{"type":"text","text":"done"}]},{"role":"user","content":"again"}`)), true, 5, "text"},
		{"a turn of OpenAI thinking only disappears",
			string(body(on, turn1+`,{"role":"assistant","content":[`+wrapped+`]},{"role":"user","content":"go on"}`)), true, 4, ""},
		{"adaptive thinking is turned off too",
			string(body(`,"thinking":{"type":"adaptive"}`, turn1+`,{"role":"assistant","content":[`+wrapped+`,{"type":"tool_use","id":"call_2","name":"run_shell","input":{}}]},`+
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_2","content":"ok"}]}`)), false, 5, "tool_use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if fakeupstream.CheckStrictMessages([]byte(tc.in)) == nil {
				t.Fatal("the strict fake takes the unscrubbed body: the case tests nothing")
			}
			out, err := ScrubMessages([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if err := fakeupstream.CheckStrictMessages(out); err != nil {
				t.Fatalf("refused: %v\n%s", err, out)
			}
			b := gjson.ParseBytes(out)
			if b.Get("thinking").Exists() != tc.thinking || len(b.Get("messages").Array()) != tc.wantMsgs || strings.Contains(string(out), sigPrefix) ||
				b.Get("messages.1.content.0.signature").Str != fakeupstream.FakeSignature("plan") || b.Get("messages.3.content.0.type").Str != tc.wantBlock {
				t.Fatalf("scrubbed %s", out)
			}
		})
	}
	// A conversation that never left Anthropic is not touched.
	plain := body(on, turn1)
	if out, err := ScrubMessages(plain); err != nil || &out[0] != &plain[0] || !bytes.Equal(out, plain) {
		t.Fatalf("untouched body changed: %s %v", out, err)
	}
}

// A Codex conversation that Claude served for a while, on its way back to
// OpenAI (passthrough): the wrapped reasoning items go, a compaction the
// relay wrote becomes the summary as a user message, OpenAI's own items stay.
func TestScrubResponses(t *testing.T) {
	claude := WrapSignature(Signature{Origin: OriginAnthropic, Value: "sig"}, "thinking")
	summary := WrapSignature(Signature{Origin: OriginAnthropic, Value: "x"}, "We added hello.txt.")
	in := fmt.Sprintf(`{"model":"gpt-5","store":false,"input":[{"type":"compaction","encrypted_content":%q},`+
		`{"type":"message","role":"user","content":"go"},{"type":"reasoning","summary":[],"encrypted_content":%q},`+
		`{"type":"custom_tool_call","call_id":"toolu_1","name":"apply_patch","input":"p"},{"type":"custom_tool_call_output","call_id":"toolu_1","output":"ok"},`+
		`{"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gAAAABown"}]}`, summary, claude)
	out, err := ScrubResponses([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	gjson.GetBytes(out, "input").ForEach(func(_, it gjson.Result) bool {
		types = append(types, it.Get("type").Str)
		return true
	})
	if strings.Join(types, " ") != "message message custom_tool_call custom_tool_call_output reasoning" ||
		gjson.GetBytes(out, "input.0.role").Str != "user" || gjson.GetBytes(out, "input.0.content.0.text").Str != "We added hello.txt." ||
		gjson.GetBytes(out, "input.4.encrypted_content").Str != "gAAAABown" || strings.Contains(string(out), sigPrefix) {
		t.Fatalf("scrubbed %s", out)
	}
	plain := []byte(`{"model":"gpt-5","input":[{"type":"reasoning","encrypted_content":"gAAAABown"}]}`)
	if out, err := ScrubResponses(plain); err != nil || &out[0] != &plain[0] {
		t.Fatalf("untouched body changed: %s %v", out, err)
	}
}
