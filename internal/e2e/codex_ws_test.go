package e2e

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// runCodexBuiltIn runs `codex exec -m model` with Codex's built-in OpenAI
// provider pointed at the relay (-c openai_base_url=<relay>/v1, the relay
// key as CODEX_API_KEY, which Codex sends as Authorization: Bearer): the
// provider that tries the Responses WebSocket first and compacts remotely.
// config are more -c settings.
func runCodexBuiltIn(t *testing.T, bin string, r *relayUT, model, prompt string, config ...string) (stdout, stderr string) {
	t.Helper()
	run := codexRun{home: newCodexHome(t), model: model, env: []string{"CODEX_API_KEY=" + relayKey},
		config: append([]string{`openai_base_url="` + r.URL + `/v1"`}, config...)}
	return runCodexExec(t, bin, run, prompt)
}

// waitLog waits (bounded) for the relay's log to hold want.
func waitLog(t *testing.T, r *relayUT, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := r.Logs.String()
		if strings.Contains(logs, want) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay's log never said %q:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCodexCLIWebSocket runs the real Codex CLI's built-in provider against
// the relay: it opens the Responses WebSocket (not the HTTP fallback), and
// the turn, a tool round trip included, is served over it from an
// openai-responses account over HTTP, with usage recorded.
func TestCodexCLIWebSocket(t *testing.T) {
	bin := codexCLI(t)
	fake := &fakeupstream.OpenAI{Keys: []string{"sk-acct"}}
	fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		switch {
		case gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")`).Exists():
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "The tool ran over the socket.", 2, 0)}
		case bytes.Contains(rec.Body, []byte("use the shell tool")):
			return &fakeupstream.Reply{Events: fakeupstream.ResponseFunctionCallStream(model, "call_ws01", "exec_command", `{"cmd":"echo hello-over-websocket"}`)}
		}
		return nil
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", upstream(t, fake).URL+"/v1", "sk-acct", 100))

	stdout, stderr := runCodexBuiltIn(t, bin, r, "gpt-fake-1", "use the shell tool to echo a greeting")
	if !strings.Contains(stdout, "The tool ran over the socket.") {
		t.Fatalf("codex output lacks the final answer:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if strings.Contains(stderr, "Falling back from WebSockets") {
		t.Fatalf("codex fell back to HTTP:\n%s", stderr)
	}
	// The relay's log: the socket served both turns (the tool call and the
	// answer after it), and Codex never POSTed a turn.
	logs := waitLog(t, r, "msg=\"responses websocket closed\" path=/v1/responses responses=2")
	// Codex sends only the new items after its warm-up and after the tool
	// call, naming the previous response: the relay rebuilt the history.
	if strings.Count(logs, `msg="responses websocket turn" continues=true`) < 2 {
		t.Fatalf("codex did not continue responses on the socket:\n%s", logs)
	}
	if !strings.Contains(logs, "method=GET path=/v1/responses") || strings.Contains(logs, "method=POST path=/v1/responses") ||
		!regexp.MustCompile(`msg="websocket turn" id=req_\w+\.2 status=200 account=oa model=gpt-fake-1`).MatchString(logs) {
		t.Fatalf("want one upgrade and no POST in the relay's log:\n%s", logs)
	}
	var outputs []string
	for _, rec := range fake.Requests() {
		if rec.Path != "/v1/responses" || !gjson.GetBytes(rec.Body, "stream").Bool() || gjson.GetBytes(rec.Body, "type").Exists() {
			t.Fatalf("upstream request %s\n%s", rec.Path, rec.Body)
		}
		for _, it := range gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")#`).Array() {
			outputs = append(outputs, it.Get("output").String())
		}
	}
	if len(outputs) == 0 || !strings.Contains(outputs[0], "hello-over-websocket") {
		t.Fatalf("the tool's output did not reach the upstream: %q", outputs)
	}
	if rows := r.usageRows(2); rows[0].Account != "oa" {
		t.Fatalf("usage rows %+v", rows)
	}
}

// bigUsage makes a stream's response.completed report a context nearly
// full, so Codex compacts before its next request.
func bigUsage(evs []fakeupstream.Event) []fakeupstream.Event {
	last := &evs[len(evs)-1]
	last.Data = strings.Replace(last.Data, `"input_tokens":20,`, `"input_tokens":250000,`, 1)
	last.Data = strings.Replace(last.Data, `"total_tokens":29`, `"total_tokens":250009`, 1)
	return evs
}

// TestCodexCLICompact runs the real Codex CLI (built-in provider, over the
// relay's WebSocket, an auto-compaction limit) through a codex-oauth
// account: a tool call whose answer reports a nearly full context makes
// Codex compact remotely before its follow-up. Codex 0.169.0 compacts with
// "remote compaction v2": the history goes to POST .../responses with a last
// input item {"type":"compaction_trigger"} and the answer must hold exactly
// one compaction item; it does not call /responses/compact. The relay
// passes both through: the backend's compaction item reaches Codex, and its
// next request carries that item in place of the history.
func TestCodexCLICompact(t *testing.T) {
	bin := codexCLI(t)
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		switch {
		case gjson.GetBytes(rec.Body, `input.#(type=="compaction_trigger")`).Exists():
			return nil // the fake's compaction answer
		case gjson.GetBytes(rec.Body, `input.#(type=="compaction")`).Exists():
			return &fakeupstream.Reply{Events: fakeupstream.ResponseStream(model, "Done after compacting.", 2, 0)}
		case bytes.Contains(rec.Body, []byte("use the shell tool")):
			return &fakeupstream.Reply{Events: bigUsage(fakeupstream.ResponseFunctionCallStream(model, "call_cmp01", "exec_command", `{"cmd":"echo before-compaction"}`))}
		}
		return nil
	}
	api := upstream(t, fake).URL + "/backend-api/codex"
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codexAccount("cx", api, tokens.URL, o.Issue(), "ws-1", 100))

	stdout, stderr := runCodexBuiltIn(t, bin, r, "gpt-fake-1", "use the shell tool to echo a greeting", "model_auto_compact_token_limit=1000")
	if !strings.Contains(stdout, "Done after compacting.") {
		t.Fatalf("codex output lacks the answer after compaction:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	var triggered, carried bool
	var want string
	for _, rec := range fake.Requests() {
		if rec.Path != "/backend-api/codex/responses" || gjson.GetBytes(rec.Body, "stream").Type != gjson.True || gjson.GetBytes(rec.Body, "store").Type != gjson.False {
			t.Fatalf("backend request %s\n%s", rec.Path, rec.Body)
		}
		in := gjson.GetBytes(rec.Body, "input")
		if in.Get(`#(type=="compaction_trigger")`).Exists() {
			triggered = true
			want = gjson.Get(fakeupstream.CompactJSON(rec.Body), `output.#(type=="compaction").encrypted_content`).Str
		}
		if c := in.Get(`#(type=="compaction")`); c.Exists() {
			carried = c.Get("encrypted_content").Str == want && !in.Get(`#(type=="function_call")`).Exists()
		}
	}
	if !triggered || !carried {
		t.Fatalf("compaction trigger sent %v, its item carried in place of the history %v\nstderr:\n%s", triggered, carried, stderr)
	}
	waitLog(t, r, "msg=\"responses websocket closed\"")
}

// The official Go SDK's Responses.Compact (POST /v1/responses/compact) is
// served by both kinds of OpenAI account: passed through to
// {base}/responses/compact (on a codex-oauth account the ChatGPT backend's,
// as Codex's own remote compaction calls it), the compaction item back in
// the SDK's type, usage recorded.
func TestOpenAISDKCompact(t *testing.T) {
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	chatgpt := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	api := &fakeupstream.OpenAI{Keys: []string{"sk-acct"}}
	for _, tt := range []struct {
		name, account, path string
		fake                interface {
			Requests() []*fakeupstream.Recorded
		}
	}{
		{"openai-responses", openaiAccount("oa", upstream(t, api).URL+"/v1", "sk-acct", 100), "/v1/responses/compact", api},
		{"codex-oauth", codexAccount("cx", upstream(t, chatgpt).URL+"/backend-api/codex", tokens.URL, o.Issue(), "ws-1", 100), "/backend-api/codex/responses/compact", chatgpt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+tt.account)
			for _, base := range []string{"/v1", "/openai/v1"} {
				before := len(tt.fake.Requests())
				c := r.openaiClient(base)
				res, err := c.Responses.Compact(context.Background(), responses.ResponseCompactParams{
					Model:        "gpt-fake-1",
					Instructions: openai.String("Summarise."),
					Input: responses.ResponseCompactParamsInputUnion{OfResponseInputItemArray: []responses.ResponseInputItemUnionParam{
						responses.ResponseInputItemParamOfMessage("fix the bug", responses.EasyInputMessageRoleUser),
						responses.ResponseInputItemParamOfMessage("fixed it", responses.EasyInputMessageRoleAssistant),
					}},
				})
				if err != nil {
					t.Fatalf("%s: %v", base, err)
				}
				var compaction string
				for _, it := range res.Output {
					if it.Type == "compaction" {
						compaction = it.EncryptedContent
					}
				}
				if res.Object != "response.compaction" || len(res.Output) != 2 || res.Output[0].Type != "message" || compaction == "" || res.Usage.InputTokens != 120 {
					t.Fatalf("%s: compacted response %s", base, res.RawJSON())
				}
				reqs := tt.fake.Requests()[before:]
				if len(reqs) != 1 || reqs[0].Path != tt.path || gjson.GetBytes(reqs[0].Body, "stream").Exists() || gjson.GetBytes(reqs[0].Body, "input.#").Int() != 2 {
					t.Fatalf("%s: upstream saw %+v", base, reqs)
				}
			}
			rows := r.usageRows(2)
			if rows[0].Model != "gpt-fake-1" || rows[0].Stream || rows[0].CacheRead != 100 || rows[0].In != 20 || rows[0].Out != 30 || rows[0].Status != 200 {
				t.Fatalf("usage rows %+v", rows)
			}
		})
	}
}

// TestCodexCLICompactOnClaude runs the real Codex CLI (built-in provider,
// over the relay's WebSocket) on a Claude model: a tool turn whose answer
// reports a nearly full context makes Codex compact (remote compaction v2,
// the compaction_trigger turn); the Claude account writes the summary, Codex
// gets its one compaction item, and its next turn gives Claude the summary
// in place of the history.
func TestCodexCLICompactOnClaude(t *testing.T) {
	bin := codexCLI(t)
	fake := &fakeupstream.Anthropic{Strict: true}
	fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		model := gjson.GetBytes(rec.Body, "model").Str
		switch {
		case bytes.Contains(rec.Body, []byte("about to be compacted")):
			return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, "SUMMARY-42: the shell printed before-compaction.", 2, 0)}
		case bytes.Contains(rec.Body, []byte("SUMMARY-42")):
			return &fakeupstream.Reply{Events: fakeupstream.MessageStream(model, "Done after compacting on Claude.", 2, 0)}
		case bytes.Contains(rec.Body, []byte("use the shell tool")):
			evs := fakeupstream.ToolUseStream(model, "Running it.", "toolu_cmp01", "exec_command", `{"cmd":"echo before-compaction"}`, 0, 0)
			evs[0].Data = strings.Replace(evs[0].Data, `"input_tokens":30`, `"input_tokens":250000`, 1)
			return &fakeupstream.Reply{Events: evs}
		}
		return nil
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("cl", upstream(t, fake).URL, "sk-ant-api03-e2e", 100))

	stdout, stderr := runCodexBuiltIn(t, bin, r, "claude-sonnet-4-5", "use the shell tool to echo a greeting", "model_auto_compact_token_limit=1000")
	if !strings.Contains(stdout, "Done after compacting on Claude.") {
		t.Fatalf("codex output lacks the answer after compaction:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	var asked, continued bool
	for _, rec := range fake.Requests() {
		asked = asked || bytes.Contains(rec.Body, []byte("about to be compacted"))
		if bytes.Contains(rec.Body, []byte("SUMMARY-42")) && !bytes.Contains(rec.Body, []byte("about to be compacted")) {
			continued = !bytes.Contains(rec.Body, []byte("toolu_cmp01")) // the summary replaced the tool turn
		}
	}
	if !asked || !continued {
		t.Fatalf("summary asked %v, next turn on the summary alone %v", asked, continued)
	}
}
