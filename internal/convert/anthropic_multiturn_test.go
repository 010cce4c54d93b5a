package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// responseOf collects a stream's Events into the answer they make.
func responseOf(t *testing.T, evs []Event) *Response {
	t.Helper()
	resp := &Response{}
	for _, ev := range evs {
		switch ev.Kind {
		case EventStart:
			resp.ID, resp.Model = ev.ID, ev.Model
		case EventPartStart:
			if ev.Index != len(resp.Parts) {
				t.Fatalf("part %d starts at %d", ev.Index, len(resp.Parts))
			}
			resp.Parts = append(resp.Parts, ev.Part)
		case EventDelta:
			p := &resp.Parts[ev.Index]
			if p.Kind == PartToolCall {
				p.Args += ev.Delta
			} else {
				p.Text += ev.Delta
			}
		case EventSignature:
			resp.Parts[ev.Index].Sig = ev.Sig
		case EventFinish:
			resp.Stop, resp.StopSequence, resp.Usage = ev.Stop, ev.StopSequence, ev.Usage
		}
	}
	return resp
}

// TestMessagesForeignThinkingMultiTurn follows Claude Code through a
// conversation that moves between pools: turn 1 served by Claude (its
// thinking signed by Anthropic), turn 2 by OpenAI (reasoning state handed
// to Claude Code wrapped in the signature field), turn 3 back on Claude.
// Turn 3's request carries no foreign thinking and, as its last tool turn
// has no Anthropic thinking, no thinking at all: the strict fake, which
// refuses like the real API, accepts it. The same conversation with the
// tool turn from Claude keeps its thinking and thinking stays on.
func TestMessagesForeignThinkingMultiTurn(t *testing.T) {
	const model = "claude-sonnet-4-5"
	// Turn 1: Claude thinks and calls a tool (JSON answer), as Claude Code
	// sees it (WriteMessages of ParseMessages is what the relay sends when
	// it converts; same dialect passes through, which equals it here).
	up1, err := ParseMessages([]byte(fakeupstream.ThinkingToolUseJSON(model, "Need the file list.", "Listing.", "toolu_01", "Bash", `{"command":"ls"}`)))
	if err != nil {
		t.Fatal(err)
	}
	turn1 := WriteMessages(up1, model)

	// Turn 2: an OpenAI account answers with reasoning and a call.
	openaiSig := Signature{Origin: OriginOpenAI, ID: "rs_68a", Value: "gAAAAABoOpenAIState=="}
	turn2 := WriteMessages(&Response{ID: "resp_68a", Parts: []Part{
		{Kind: PartThinking, Text: "**Reading** the file", Sig: openaiSig},
		{Kind: PartToolCall, CallID: "call_Xy.9", Name: "Read", Args: `{"file_path":"a.go"}`},
	}, Stop: StopTool}, model)

	// Turn 3: Claude Code sends everything back, with thinking on.
	body := `{"model":"` + model + `","max_tokens":32000,"stream":true,
	  "thinking":{"type":"enabled","budget_tokens":8000},
	  "tools":[{"name":"Bash","input_schema":{"type":"object","properties":{"command":{"type":"string"}}}},
	           {"name":"Read","input_schema":{"type":"object","properties":{"file_path":{"type":"string"}}}}],
	  "messages":[
	    {"role":"user","content":"List and read."},
	    {"role":"assistant","content":` + gjson.GetBytes(turn1, "content").Raw + `},
	    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"a.go"}]},
	    {"role":"assistant","content":` + gjson.GetBytes(turn2, "content").Raw + `},
	    {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_Xy.9","content":"package a"}]}]}`
	req, err := DecodeMessages([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if p := req.Messages[3].Parts[0]; p.Sig != openaiSig || p.Text != "**Reading** the file" {
		t.Fatalf("turn 2's thinking did not come back as OpenAI state: %+v", p)
	}
	out, err := EncodeMessages(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := fakeupstream.CheckStrictMessages(out); err != nil {
		t.Fatalf("the Anthropic API would refuse turn 3: %v\n%s", err, out)
	}
	if gjson.GetBytes(out, "thinking").Exists() || strings.Contains(string(out), `"thinking"`) || strings.Contains(string(out), "redacted_thinking") || strings.Contains(string(out), "gAAAA") {
		t.Errorf("turn 3 carries thinking: %s", out)
	}
	if id := gjson.GetBytes(out, "messages.3.content.0.id").Str; id != "call_Xy_9" || gjson.GetBytes(out, "messages.4.content.0.tool_use_id").Str != id {
		t.Errorf("call ids not mapped alike: %s", out)
	}

	// Without turn 2 the last tool turn is Claude's own: its thinking is
	// replayed and thinking stays on.
	var msgs []json.RawMessage
	if err := json.Unmarshal([]byte(gjson.Get(body, "messages").Raw), &msgs); err != nil {
		t.Fatal(err)
	}
	own := strings.Replace(body, gjson.Get(body, "messages").Raw, "["+string(msgs[0])+","+string(msgs[1])+","+string(msgs[2])+"]", 1)
	req, err = DecodeMessages([]byte(own))
	if err != nil {
		t.Fatal(err)
	}
	out, err = EncodeMessages(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := fakeupstream.CheckStrictMessages(out); err != nil {
		t.Fatalf("the Anthropic API would refuse: %v\n%s", err, out)
	}
	if gjson.GetBytes(out, "thinking.budget_tokens").Int() != 8000 || gjson.GetBytes(out, "messages.1.content.0.type").Str != "thinking" || gjson.GetBytes(out, "messages.1.content.1.type").Str != "redacted_thinking" {
		t.Errorf("Claude's own thinking not replayed: %s", out)
	}
}

// TestMessagesUpstreamThinkingReplay is the other direction: a client of
// another dialect on a Claude account. The streamed answer's thinking
// (read by NewMessagesStreamReader) is handed back on the next turn in the
// neutral form, and EncodeMessages replays it so the strict fake accepts
// the turn with thinking on; with the thinking lost it sends the turn
// without thinking instead of drawing a 400.
func TestMessagesUpstreamThinkingReplay(t *testing.T) {
	events := fakeupstream.ThinkingToolUseStream("claude-x", "Think about the weather.", "Checking.", "toolu_7", "get_weather", `{"city":"Paris"}`, 4, 0)
	r := NewMessagesStreamReader()
	var evs []Event
	for _, e := range events {
		evs = r.Read(evs, []byte(e.Name), []byte(e.Data))
	}
	resp := responseOf(t, evs)
	if len(resp.Parts) != 4 || resp.Parts[0].Sig.Origin != OriginAnthropic || !resp.Parts[1].Redacted || resp.Parts[3].Args != `{"city":"Paris"}` {
		t.Fatalf("streamed answer: %+v", resp)
	}
	next := &Request{Model: "claude-x", MaxTokens: 2000, Thinking: Thinking{Enabled: true, Effort: "medium"},
		Tools: []Tool{{Name: "get_weather", Schema: json.RawMessage(`{"type":"object"}`)}},
		Messages: []Message{user(text("Weather?")), {Role: RoleAssistant, Parts: resp.Parts},
			user(Part{Kind: PartToolResult, CallID: "toolu_7", Result: []Part{text("18C")}})}}
	out, err := EncodeMessages(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := fakeupstream.CheckStrictMessages(out); err != nil {
		t.Fatalf("refused: %v\n%s", err, out)
	}
	if gjson.GetBytes(out, "thinking.budget_tokens").Int() != 4096 || gjson.GetBytes(out, "max_tokens").Int() != 6096 {
		t.Errorf("thinking not on with the effort's budget on top of max_tokens: %s", out)
	}

	// A client that lost the thinking (or sent another provider's).
	next.Messages[1].Parts = resp.Parts[2:]
	out, err = EncodeMessages(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := fakeupstream.CheckStrictMessages(out); err != nil || gjson.GetBytes(out, "thinking").Exists() {
		t.Fatalf("without its thinking the turn must go without thinking (err %v): %s", err, out)
	}
}
