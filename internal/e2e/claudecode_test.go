package e2e

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	provider "github.com/ccrelay/ccrelay/internal/provider/anthropic"
)

// claudeOAuthRelay is a relay with one claude-oauth account (a Claude
// subscription) in front of a fake Anthropic API that accepts only the
// account's live tokens with the OAuth beta; script answers what passes
// (nil: the fake's default text answer).
func claudeOAuthRelay(t *testing.T, script func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply) (*relayUT, *fakeupstream.Anthropic, *fakeupstream.OAuth) {
	t.Helper()
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	fake, api := oauthUpstream(t, o)
	fake.Text = "Hello from the Claude fake"
	auth := fake.Script
	fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		if rep := auth(n, rec); rep != nil {
			return rep
		}
		if script != nil {
			return script(n, rec)
		}
		return nil
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+oauthAccount("max-1", api, tokens.URL, o.Issue(), 100))
	return r, fake, o
}

// TestClaudeCodeThroughClaudeOAuth runs the real Claude Code through
// ccrelay with a Claude subscription account: one turn is answered, the
// request passes through byte for byte with the account's token and the
// OAuth beta in place of the relay key, and Claude Code reaches no host but
// the relay.
func TestClaudeCodeThroughClaudeOAuth(t *testing.T) {
	claudeCodeCLI(t)
	r, fake, o := claudeOAuthRelay(t, nil)

	t.Run("api key", func(t *testing.T) {
		trap, tap := newEgressTrap(t), &clientTap{}
		before := len(fake.Requests())
		res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", "say hi", ccEgress(trap), ccTap(tap))
		if err != nil {
			t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
		}
		if res.Result != "Hello from the Claude fake" || res.NumTurns != 1 {
			t.Fatalf("result %q after %d turns, want the upstream's text after 1", res.Result, res.NumTurns)
		}
		ups, sent := fake.Requests()[before:], tap.Requests()
		if len(ups) != 1 || len(sent) != 1 {
			t.Fatalf("Claude Code sent %d requests and the upstream saw %d; want one turn, no side calls", len(sent), len(ups))
		}
		wantClaudeCodeRequest(t, sent[0], "claude-sonnet-4-5")
		if sent[0].Header.Get("X-Api-Key") != relayKey {
			t.Fatalf("Claude Code did not send the relay key as x-api-key: %v", sent[0].Header)
		}
		wantOAuthPassthrough(t, o, sent[0], ups[0])
		if got := trap.Attempts(); len(got) > 0 {
			t.Fatalf("Claude Code tried to reach outside hosts: %v", got)
		}
		rows := r.usageRows(1)
		if rows[0].Account != "max-1" || rows[0].Model != "claude-sonnet-4-5" || !rows[0].Stream || rows[0].Status != 200 {
			t.Fatalf("usage row %+v", rows[0])
		}
	})

	t.Run("bearer token", func(t *testing.T) {
		tap := &clientTap{}
		before := len(fake.Requests())
		res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", "say hi", ccTap(tap), ccBearer())
		if err != nil {
			t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
		}
		if res.Result != "Hello from the Claude fake" {
			t.Fatalf("result %q", res.Result)
		}
		sent := tap.Requests()
		if len(sent) != 1 || sent[0].Header.Get("Authorization") != "Bearer "+relayKey || sent[0].Header.Get("X-Api-Key") != "" {
			t.Fatalf("Claude Code with ANTHROPIC_AUTH_TOKEN sent %d requests, auth %v", len(sent), sent)
		}
		wantOAuthPassthrough(t, o, sent[0], fake.Requests()[before])
	})
}

// wantClaudeCodeRequest checks the facts of a Claude Code request the
// relay and the converters rely on: a streamed Messages request on
// ?beta=true with Claude Code's beta, the asked model, a session id in
// metadata.user_id equal to the session header, system blocks and thinking.
func wantClaudeCodeRequest(t *testing.T, rec *fakeupstream.Recorded, model string) {
	t.Helper()
	b := gjson.ParseBytes(rec.Body)
	sid := gjson.Get(b.Get("metadata.user_id").Str, "session_id").Str
	switch {
	case rec.Method != "POST" || rec.Path != "/v1/messages" || rec.RawQuery != "beta=true":
		t.Fatalf("Claude Code called %s %s?%s", rec.Method, rec.Path, rec.RawQuery)
	case !strings.HasPrefix(rec.Header.Get("User-Agent"), "claude-cli/"):
		t.Fatalf("user agent %q", rec.Header.Get("User-Agent"))
	case !strings.Contains(rec.Header.Get("Anthropic-Beta"), "claude-code-20250219"):
		t.Fatalf("anthropic-beta %q lacks Claude Code's beta", rec.Header.Get("Anthropic-Beta"))
	case b.Get("model").Str != model || !b.Get("stream").Bool() || b.Get("max_tokens").Int() <= 0:
		t.Fatalf("model %q stream %v max_tokens %d", b.Get("model").Str, b.Get("stream").Bool(), b.Get("max_tokens").Int())
	case sid == "" || sid != rec.Header.Get("X-Claude-Code-Session-Id"):
		t.Fatalf("metadata.user_id %s, session header %q", b.Get("metadata.user_id").Raw, rec.Header.Get("X-Claude-Code-Session-Id"))
	case !b.Get("system").IsArray() || len(b.Get("system").Array()) < 2 || !b.Get("thinking.type").Exists():
		t.Fatalf("system %.200s thinking %s", b.Get("system").Raw, b.Get("thinking").Raw)
	}
}

// wantOAuthPassthrough checks that the relay passed the client's request to
// the subscription account unchanged but for the credentials: the same
// body bytes, path and query, the account's live token as Bearer instead
// of the relay key, and the OAuth beta added to the client's betas.
func wantOAuthPassthrough(t *testing.T, o *fakeupstream.OAuth, sent, got *fakeupstream.Recorded) {
	t.Helper()
	if !bytes.Equal(sent.Body, got.Body) {
		t.Fatalf("the body changed on its way to a Claude account:\nsent %.300s\ngot  %.300s", sent.Body, got.Body)
	}
	if got.Path != sent.Path || got.RawQuery != sent.RawQuery {
		t.Fatalf("upstream %s?%s, client %s?%s", got.Path, got.RawQuery, sent.Path, sent.RawQuery)
	}
	tok := strings.TrimPrefix(got.Header.Get("Authorization"), "Bearer ")
	if !o.Valid(tok) || got.Header.Get("X-Api-Key") != "" {
		t.Fatalf("upstream credentials: authorization %q x-api-key %q", got.Header.Get("Authorization"), got.Header.Get("X-Api-Key"))
	}
	if want := provider.MergeBeta(sent.Header.Get("Anthropic-Beta"), provider.OAuthBeta); got.Header.Get("Anthropic-Beta") != want {
		t.Fatalf("upstream anthropic-beta %q, want %q", got.Header.Get("Anthropic-Beta"), want)
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, relayKey) {
				t.Fatalf("the relay key reached the upstream in %s", k)
			}
		}
	}
}

// toolResultText is the text of the tool_result for id in a Messages
// request body ("" when there is none): a string content or its text blocks.
func toolResultText(body []byte, id string) (string, bool) {
	for _, m := range gjson.GetBytes(body, "messages").Array() {
		for _, p := range m.Get("content").Array() {
			if p.Get("type").Str != "tool_result" || p.Get("tool_use_id").Str != id {
				continue
			}
			c := p.Get("content")
			if c.Type == gjson.String {
				return c.Str, true
			}
			var b strings.Builder
			for _, part := range c.Array() {
				b.WriteString(part.Get("text").Str)
			}
			return b.String(), true
		}
	}
	return "", false
}

// hasToolResult says whether a Messages request body holds the tool_result for id.
func hasToolResult(body []byte, id string) bool {
	_, ok := toolResultText(body, id)
	return ok
}

// TestClaudeCodeToolRoundTrip: the upstream asks Claude Code to read a file
// of its working directory; Claude Code runs its Read tool and sends the
// next request with the tool_result; the upstream answers with text quoting
// the file, which Claude Code prints as its result.
func TestClaudeCodeToolRoundTrip(t *testing.T) {
	claudeCodeCLI(t)
	dir, notes := notesFile(t, "kumquat-42")
	const callID = "toolu_01ReadNotes"
	r, fake, o := claudeOAuthRelay(t, func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		if out, ok := toolResultText(rec.Body, callID); ok {
			answer := "The tool_result lacked the file's text."
			if strings.Contains(out, "kumquat-42") {
				answer = "The file says the password is kumquat-42."
			}
			return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, answer, 3, 0)}
		}
		input := `{"file_path":` + strconv.Quote(notes) + `}`
		return &fakeupstream.Reply{Events: fakeupstream.ToolUseStream(model, "Reading the notes.", callID, "Read", input, 7, 0)}
	})
	tap := &clientTap{}
	res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", "read notes.txt and tell me the password",
		ccInDir(dir), ccTools("Read"), ccTap(tap))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	if res.Result != "The file says the password is kumquat-42." || res.NumTurns != 2 {
		t.Fatalf("result %q after %d turns", res.Result, res.NumTurns)
	}
	ups, sent := fake.Requests(), tap.Requests()
	if len(ups) != 2 || len(sent) != 2 {
		t.Fatalf("%d requests sent, %d reached the upstream; want 2", len(sent), len(ups))
	}
	for i := range sent {
		wantOAuthPassthrough(t, o, sent[i], ups[i])
	}
	tools := gjson.GetBytes(sent[0].Body, "tools.#.name").Array()
	if len(tools) != 1 || tools[0].Str != "Read" {
		t.Fatalf("tools offered: %v", tools)
	}
	// The second request replays the assistant's tool call as it streamed
	// (input assembled from its deltas) before the tool's result.
	call := gjson.GetBytes(sent[1].Body, `messages.#(role=="assistant").content.#(type=="tool_use")`)
	if call.Get("id").Str != callID || call.Get("name").Str != "Read" || call.Get("input.file_path").Str != notes {
		t.Fatalf("replayed tool call %s", call.Raw)
	}
}

// thinkingToolUseStream is fakeupstream.ToolUseStream with a signed
// thinking block in place of its text block: what a Claude model streams
// when it thinks before a tool call.
func thinkingToolUseStream(model, thinking, signature, id, name, input string) []fakeupstream.Event {
	ev := fakeupstream.ToolUseStream(model, "", id, name, input, 0, 0)
	think := []fakeupstream.Event{
		{Name: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
		{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":` + strconv.Quote(thinking) + `}}`},
		{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":` + strconv.Quote(signature) + `}}`},
		{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":0}`},
	}
	// ev[1:4] is ToolUseStream's text block (start, delta, stop).
	return append(append([]fakeupstream.Event{ev[0]}, think...), ev[4:]...)
}

// sawThinking says whether Claude Code printed (stream-json) an assistant
// message holding a thinking block with this signature.
func sawThinking(msgs []gjson.Result, signature string) bool {
	for _, m := range msgs {
		if m.Get("type").Str != "assistant" {
			continue
		}
		for _, c := range m.Get("message.content").Array() {
			if c.Get("type").Str == "thinking" && c.Get("signature").Str == signature {
				return true
			}
		}
	}
	return false
}

// TestClaudeCodeReplaysThinking: a conversation of two user turns. In the
// first, the model thinks (a signed thinking block) and calls a tool; the
// request with the tool's result and the next turn's request (a resumed
// session) both carry the thinking block with its signature unchanged,
// before the tool call, through the relay.
func TestClaudeCodeReplaysThinking(t *testing.T) {
	claudeCodeCLI(t)
	const (
		callID    = "toolu_01Think"
		thought   = "The user wants the date; the shell can tell."
		signature = "EqQBCkYIBxgCKkBfakeSignatureOfTheFakeUpstream0123456789"
	)
	r, fake, o := claudeOAuthRelay(t, func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		b := gjson.ParseBytes(rec.Body)
		switch {
		case strings.Contains(b.Get("messages.@reverse.0").Raw, "second question"):
			return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, "Second answer.", 2, 0)}
		case hasToolResult(rec.Body, callID):
			return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, "First answer.", 2, 0)}
		}
		return &fakeupstream.Reply{Events: thinkingToolUseStream(model, thought, signature, callID, "Bash", `{"command":"echo thinking-turn","description":"Print a word"}`)}
	})
	conv, tap := newClaudeCodeConversation(t), &clientTap{}
	for i, turn := range []struct{ prompt, want string }{{"first question", "First answer."}, {"second question", "Second answer."}} {
		res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", turn.prompt, ccConversation(conv), ccTools("Bash"), ccTap(tap), ccStreamJSON())
		if err != nil {
			t.Fatalf("turn %d: %v\nstdout:\n%s\nstderr:\n%s", i+1, err, res.Stdout, res.Stderr)
		}
		if i == 0 && !sawThinking(res.Messages, signature) {
			t.Fatalf("Claude Code's messages lack the streamed thinking block:\n%s", res.Stdout)
		}
		if res.Result != turn.want {
			t.Fatalf("turn %d: result %q, want %q", i+1, res.Result, turn.want)
		}
	}
	ups, sent := fake.Requests(), tap.Requests()
	if len(sent) != 3 || len(ups) != 3 {
		t.Fatalf("%d requests sent, %d reached the upstream; want 3 (tool call, tool result, second turn)", len(sent), len(ups))
	}
	for i := range sent {
		wantOAuthPassthrough(t, o, sent[i], ups[i])
	}
	for i, rec := range sent[1:] {
		blocks := gjson.GetBytes(rec.Body, `messages.#(role=="assistant").content`).Array()
		if len(blocks) < 2 || blocks[0].Get("type").Str != "thinking" || blocks[0].Get("signature").Str != signature ||
			blocks[0].Get("thinking").Str != thought || blocks[1].Get("type").Str != "tool_use" || blocks[1].Get("id").Str != callID {
			t.Fatalf("request %d does not replay the signed thinking before the tool call: %s", i+2, gjson.GetBytes(rec.Body, `messages.#(role=="assistant")`).Raw)
		}
	}
	if out, ok := toolResultText(sent[2].Body, callID); !ok || !strings.Contains(out, "thinking-turn") {
		t.Fatalf("the second turn lacks the first turn's tool result: %q", out)
	}
}

// TestClaudeCodeSeesErrors: errors reach Claude Code in Anthropic's shape
// with their wording, so it reports them and stops: an upstream's
// invalid_request_error (passed on once per client request; Claude Code
// itself sends the request again without its newer betas and fields before
// it gives up), and the relay's own 401 for a wrong relay key.
func TestClaudeCodeSeesErrors(t *testing.T) {
	claudeCodeCLI(t)
	const message = "messages.0: the fake upstream refuses this request"
	fake := &fakeupstream.Anthropic{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 400, Body: fakeupstream.AnthropicError("invalid_request_error", message)}
	}}
	api := upstream(t, fake).URL
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("api-1", api, "sk-ant-api-key-e2e-1", 100))

	t.Run("upstream 400", func(t *testing.T) {
		tap := &clientTap{}
		res, err := runClaudeCode(t, r.URL, relayKey, "claude-sonnet-4-5", "say hi", ccTap(tap))
		if err == nil || !res.IsError || res.APIErrorStatus != 400 || !strings.Contains(res.Result, message) {
			t.Fatalf("err %v, result %+v; want an error result quoting the upstream\nstderr:\n%s", err, res, res.Stderr)
		}
		if sent, got := len(tap.Requests()), len(fake.Requests()); sent == 0 || got != sent {
			t.Fatalf("Claude Code sent %d requests, the upstream saw %d; want each passed on once", sent, got)
		}
	})

	t.Run("wrong relay key", func(t *testing.T) {
		before := len(fake.Requests())
		res, err := runClaudeCode(t, r.URL, "not-the-relay-key-0123456789", "claude-sonnet-4-5", "say hi")
		if err == nil || !res.IsError || res.APIErrorStatus != 401 || res.APIErrorType != "authentication_error" {
			t.Fatalf("err %v, result %+v; want Claude Code to report the relay's 401\nstderr:\n%s", err, res, res.Stderr)
		}
		if len(fake.Requests()) != before {
			t.Fatal("a request with a wrong relay key reached the upstream")
		}
	})
}

// TestClaudeCodeResultParse: the harness reads Claude Code's JSON result
// and its stream-json lines, and an output cut before the result is an
// error, not an empty success.
func TestClaudeCodeResultParse(t *testing.T) {
	const result = `{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"done"}`
	const assistant = `{"type":"assistant","message":{"content":[{"type":"text","text":"hi"}]}}`
	for _, tt := range []struct {
		name, out string
		messages  int
		wantErr   string
	}{
		{name: "json", out: result + "\n"},
		{name: "stream-json", out: `{"type":"system","subtype":"init"}` + "\n" + assistant + "\n" + result + "\n", messages: 2},
		{name: "cut before the result", out: `{"type":"system","subtype":"init"}` + "\n" + assistant + "\n", wantErr: "not the result"},
		{name: "no output", out: "", wantErr: "does not end with its JSON result"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := &claudeCodeResult{}
			err := res.parse([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || res.Result != "done" || res.NumTurns != 2 || len(res.Messages) != tt.messages {
				t.Fatalf("err %v, result %+v, %d messages", err, res, len(res.Messages))
			}
		})
	}
}
