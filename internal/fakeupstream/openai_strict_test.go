package fakeupstream

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/sse"
)

func post(t *testing.T, url, body string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
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

// strictOpenAI serves a strict fake whose first answer is the reasoning +
// tool call script.
func strictOpenAI(t *testing.T) (*OpenAI, string) {
	t.Helper()
	o := &OpenAI{Strict: true}
	o.Script = func(n int, r *Recorded) *Reply {
		if n == 0 {
			return o.ReasoningToolCall(r, "call_fake1", "shell", `{"command":["ls"]}`)
		}
		return nil
	}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return o, srv.URL + "/v1/responses"
}

// secondTurn is a next request built from the first answer's output items,
// with the tool's output appended.
func secondTurn(t *testing.T, items []string) string {
	t.Helper()
	return `{"model":"gpt-5","store":false,"include":["reasoning.encrypted_content"],"input":[{"role":"user","content":"list files"},` +
		strings.Join(items, ",") + `,{"type":"function_call_output","call_id":"call_fake1","output":"a.go"}]}`
}

func TestStrictOpenAIReasoningChain(t *testing.T) {
	o, url := strictOpenAI(t)
	status, body := post(t, url, `{"model":"gpt-5","input":"list files","store":false}`, nil)
	if status != 200 {
		t.Fatalf("first turn: %d %s", status, body)
	}
	out := gjson.GetBytes(body, "output").Array()
	if len(out) != 2 || out[0].Get("type").Str != "reasoning" || out[1].Get("type").Str != "function_call" {
		t.Fatalf("first answer: %s", body)
	}
	rs, fc := out[0].Raw, out[1].Raw
	enc := out[0].Get("encrypted_content").Str
	if !strings.HasPrefix(enc, "gAAAA") || out[1].Get("call_id").Str != "call_fake1" {
		t.Fatalf("first answer: %s", body)
	}
	noID := `{"type":"reasoning","summary":[],"encrypted_content":"` + enc + `"}`

	tests := []struct {
		name   string
		body   string
		status int
		want   string // in the error message
	}{
		{"the chain carried back", secondTurn(t, []string{rs, fc}), 200, ""},
		{"the reasoning item without its id, as Codex sends it", secondTurn(t, []string{noID, fc}), 200, ""},
		{"the call without its reasoning item", secondTurn(t, []string{fc}), 400, "without its required 'reasoning' item"},
		{"reasoning after the call", secondTurn(t, []string{fc, rs}), 400, "without its required 'reasoning' item"},
		{"encrypted content the fake never issued", secondTurn(t, []string{strings.Replace(rs, enc, "gAAAABforged", 1), fc}), 400, "could not be verified"},
		{"a foreign signature as encrypted content", secondTurn(t, []string{`{"type":"reasoning","summary":[],"encrypted_content":"EqQBCgIYAhIM"}`, fc}), 400, "could not be verified"},
		{"a reasoning id with store false", secondTurn(t, []string{`{"type":"reasoning","id":"rs_fake01","summary":[]}`, fc}), 404, "not found"},
		{"an output for no call", `{"model":"gpt-5","input":[{"type":"function_call_output","call_id":"call_nope","output":"x"}]}`, 400, "No tool call found"},
		{"a custom output for no call", `{"model":"gpt-5","input":[{"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"x"},{"type":"custom_tool_call_output","call_id":"c2","output":"x"}]}`, 400, "No tool call found"},
		{"an unknown top-level field", `{"model":"gpt-5","input":"x","stop":["\n"]}`, 400, "Unknown parameter: 'stop'"},
		{"Codex's own fields", `{"model":"gpt-5","input":"x","client_metadata":{"a":"b"},"prompt_cache_key":"k","text":{"verbosity":"low"},"include":[]}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, url, tt.body, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if tt.want != "" {
				if msg := gjson.GetBytes(body, "error.message").Str; !strings.Contains(msg, tt.want) {
					t.Fatalf("error %s lacks %q", body, tt.want)
				}
				if gjson.GetBytes(body, "error.type").Str != "invalid_request_error" {
					t.Fatalf("error shape: %s", body)
				}
			}
		})
	}
	if got := len(o.Refused()); got != 8 {
		t.Fatalf("Refused() has %d messages, want 8", got)
	}
	if gjson.GetBytes([]byte(OpenAIError("m", "t", "stop", "unknown_parameter")), "error.param").Str != "stop" {
		t.Fatal("OpenAIError lost param")
	}
}

func TestOpenAIStrictOff(t *testing.T) {
	srv := httptest.NewServer(&OpenAI{})
	defer srv.Close()
	status, body := post(t, srv.URL+"/v1/responses", `{"model":"gpt-5","input":[{"type":"function_call_output","call_id":"x","output":"y"}],"stop":["\n"]}`, nil)
	if status != 200 {
		t.Fatalf("a lenient fake refused: %d %s", status, body)
	}
}

// TestStrictOpenAIReasoningStream reads the scripted stream the way the
// relay does (internal/sse, then the Responses stream reader): a thinking
// part carrying the issued state, then the call; and the state it carries
// passes the strict check on the next turn.
func TestStrictOpenAIReasoningStream(t *testing.T) {
	_, url := strictOpenAI(t)
	status, body := post(t, url, `{"model":"gpt-5","input":"list files","stream":true}`, nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var p sse.Parser
	r := convert.NewResponsesStreamReader()
	var evs []convert.Event
	seq := int64(0)
	p.Feed(body, func(ev *sse.Event) bool {
		if !json.Valid(ev.Data) || gjson.GetBytes(ev.Data, "type").Str != string(ev.Name) {
			t.Fatalf("event %s: %s", ev.Name, ev.Data)
		}
		if n := gjson.GetBytes(ev.Data, "sequence_number").Int(); n != seq {
			t.Fatalf("sequence_number %d, want %d", n, seq)
		}
		seq++
		evs = r.Read(evs, ev.Name, ev.Data)
		return true
	})
	var sig convert.Signature
	var thinking, args bytes.Buffer
	var call convert.Part
	for _, e := range evs {
		switch {
		case e.Kind == convert.EventSignature:
			sig = e.Sig
		case e.Kind == convert.EventDelta && e.Index == 0:
			thinking.WriteString(e.Delta)
		case e.Kind == convert.EventDelta && e.Index == 1:
			args.WriteString(e.Delta)
		case e.Kind == convert.EventPartStart && e.Index == 1:
			call = e.Part
		}
	}
	last := evs[len(evs)-1]
	if sig.Origin != convert.OriginOpenAI || !strings.HasPrefix(sig.Value, "gAAAA") || sig.ID != "rs_fake01" ||
		!strings.Contains(thinking.String(), "I will call shell.") || call.CallID != "call_fake1" || args.String() != `{"command":["ls"]}` ||
		last.Kind != convert.EventFinish || last.Stop != convert.StopTool {
		t.Fatalf("events: %+v", evs)
	}
	next, err := convert.EncodeResponses(&convert.Request{Model: "gpt-5", Messages: []convert.Message{
		{Role: convert.RoleUser, Parts: []convert.Part{{Kind: convert.PartText, Text: "list files"}}},
		{Role: convert.RoleAssistant, Parts: []convert.Part{{Kind: convert.PartThinking, Text: thinking.String(), Sig: sig}, {Kind: convert.PartToolCall, CallID: call.CallID, Name: call.Name, Args: args.String()}}},
		{Role: convert.RoleUser, Parts: []convert.Part{{Kind: convert.PartToolResult, CallID: call.CallID, Result: []convert.Part{{Kind: convert.PartText, Text: "a.go"}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, url, string(next), nil); status != 200 {
		t.Fatalf("next turn refused: %d %s\n%s", status, body, next)
	}
}

func TestStrictChatGPTDetailShape(t *testing.T) {
	tokens := &OAuth{}
	tsrv := httptest.NewServer(tokens)
	defer tsrv.Close()
	res, err := http.PostForm(tsrv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.Issue()}})
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	access := gjson.GetBytes(tb, "access_token").Str
	c := &ChatGPT{Tokens: tokens, AccountID: "acct_1", OpenAI: OpenAI{Strict: true}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	h := map[string]string{"Authorization": "Bearer " + access, "Chatgpt-Account-Id": "acct_1"}
	status, body := post(t, srv.URL+"/backend-api/codex/responses", `{"model":"gpt-5","input":[{"type":"reasoning","summary":[],"encrypted_content":"gAAAABnope"}],"store":false,"stream":true}`, h)
	if status != 400 || !strings.Contains(gjson.GetBytes(body, "detail").Str, "could not be verified") {
		t.Fatalf("%d %s", status, body)
	}
	status, body = post(t, srv.URL+"/backend-api/codex/responses", `{"model":"gpt-5","input":"hi","store":false,"stream":true,"instructions":""}`, h)
	if status != 200 {
		t.Fatalf("a valid request was refused: %d %s", status, body)
	}
}

func TestCheckOpenAIToolNames(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name, body, param, code string // param "" = accepted
	}{
		{name: "responses names that fit", body: `{"model":"m","tools":[{"type":"function","name":"` + long[:64] + `"},{"type":"custom","name":"apply_patch"},{"type":"web_search"}],"input":[{"type":"function_call","call_id":"c","name":"mcp__x__y","arguments":"{}"}]}`},
		{name: "responses tool with a dot", body: `{"model":"m","tools":[{"type":"function","name":"a.b"}]}`, param: "tools[0].name", code: "invalid_value"},
		{name: "responses tool too long", body: `{"model":"m","tools":[{"type":"function","name":"f"},{"type":"custom","name":"` + long + `"}]}`, param: "tools[1].name", code: "string_above_max_length"},
		{name: "responses call in the history", body: `{"model":"m","input":[{"type":"message","role":"user","content":"q"},{"type":"function_call","call_id":"c","name":"a b","arguments":"{}"}]}`, param: "input[1].name", code: "invalid_value"},
		{name: "chat names that fit", body: `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}],"tools":[{"type":"function","function":{"name":"f"}}]}`},
		{name: "chat tool too long", body: `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"` + long + `"}}]}`, param: "tools[0].function.name", code: "string_above_max_length"},
		{name: "chat call in the history", body: `{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"srv.tool","arguments":"{}"}}]}]}`, param: "messages[1].tool_calls[0].function.name", code: "invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOpenAIToolNames([]byte(tt.body))
			if tt.param == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			se, ok := err.(*OpenAIStrictError)
			if !ok || se.Param != tt.param || se.Code != tt.code || !strings.HasPrefix(se.Message, "Invalid '"+tt.param+"': ") {
				t.Fatalf("got %#v, want param %s code %s", err, tt.param, tt.code)
			}
		})
	}
}

// The strict Responses fake answers a refused name with OpenAI's 400.
func TestStrictOpenAIRefusesToolName(t *testing.T) {
	_, u := strictOpenAI(t)
	status, body := post(t, u, `{"model":"gpt-5","input":"q","tools":[{"type":"function","name":"mcp__github__search.code","parameters":{"type":"object"}}]}`, nil)
	if status != 400 || gjson.GetBytes(body, "error.param").Str != "tools[0].name" || gjson.GetBytes(body, "error.code").Str != "invalid_value" ||
		!strings.Contains(gjson.GetBytes(body, "error.message").Str, "does not match pattern") {
		t.Fatalf("%d %s", status, body)
	}
}
