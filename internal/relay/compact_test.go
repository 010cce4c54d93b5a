package relay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// compactBody is what Codex sends to /responses/compact (codex-api
// CompactionInput: model, input, instructions; newer builds add tools,
// parallel_tool_calls, reasoning and text).
const compactBody = `{"model":"gpt-fake-1","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"fix the bug"}]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"done"}]}],"instructions":"You are Codex.","tools":[],"parallel_tool_calls":true,"reasoning":{"effort":"low"}}`

// POST /v1/responses/compact (and /openai/v1/...) reaches {base}/responses/compact
// of an openai-responses account with the client's body byte for byte; the
// answer (the compaction item included) reaches the client unchanged, and
// its usage is recorded.
func TestCompactPassesThrough(t *testing.T) {
	for _, path := range []string{"/v1/responses/compact", "/openai/v1/responses/compact"} {
		t.Run(path, func(t *testing.T) {
			fake := &fakeupstream.OpenAI{Keys: []string{"sk-acct"}}
			up := httptest.NewServer(fake)
			t.Cleanup(up.Close)
			srv, rec := newTestRelay(t, nil, testAccount{id: "oa", typ: config.TypeOpenAIResponses, url: up.URL + "/v1", key: "sk-acct"})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(compactBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Session-Id", "thread-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 || reqs[0].Path != "/v1/responses/compact" || string(reqs[0].Body) != compactBody {
				t.Fatalf("upstream saw %d requests: %+v", len(reqs), reqs)
			}
			if want := fakeupstream.CompactJSON([]byte(compactBody)); string(got) != want {
				t.Fatalf("client got\n%s\nwant\n%s", got, want)
			}
			if gjson.GetBytes(got, "output.#(type==\"compaction\").encrypted_content").Str == "" {
				t.Fatalf("no compaction item: %s", got)
			}
			recs := rec.all()
			if len(recs) != 1 {
				t.Fatalf("%d usage records", len(recs))
			}
			r := recs[0]
			if r.AccountID != "oa" || r.Model != "gpt-fake-1" || r.Stream || r.InputTokens != 20 || r.CacheReadTokens != 100 || r.OutputTokens != 30 || r.Status != 200 {
				t.Fatalf("usage record %+v", r)
			}
		})
	}
}

// An upstream refusal of a compaction is the client's, in OpenAI's shape;
// a request with no account to serve it gets the relay's error.
func TestCompactUpstreamError(t *testing.T) {
	fake := &fakeupstream.OpenAI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 400, Body: fakeupstream.OpenAIError("input is too long", "invalid_request_error", "input", "")}
	}}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	srv, _ := newTestRelay(t, nil, testAccount{id: "oa", typ: config.TypeOpenAIResponses, url: up.URL + "/v1", key: "sk"})
	resp, err := http.Post(srv.URL+"/v1/responses/compact", "application/json", strings.NewReader(compactBody))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || gjson.GetBytes(got, "error.message").Str != "input is too long" {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
}

// A compaction for a Claude model is served by a Claude account (the
// strict fake, which refuses what Anthropic refuses): the history goes up
// as a Messages request with the summarising instruction last and no tool
// allowed, and the client gets the compaction shape: its user messages,
// then the summary in a user message; usage in OpenAI's terms, recorded.
func TestCompactOnClaude(t *testing.T) {
	const summary = "The user asked to fix the bug; it is fixed in main.go."
	fake := &fakeupstream.Anthropic{Strict: true, Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Body: fakeupstream.MessageJSON("claude-sonnet-4-5", summary)}
	}}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	srv, rec := newTestRelay(t, nil, testAccount{id: "cl", typ: config.TypeClaudeAPI, url: up.URL, key: "sk-ant-api"})
	body := strings.Replace(compactBody, `"gpt-fake-1"`, `"claude-sonnet-4-5"`, 1)
	body = strings.Replace(body, `"tools":[]`, `"tools":[{"type":"function","name":"exec_command","parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}}]`, 1)
	resp, err := http.Post(srv.URL+"/v1/responses/compact", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/messages" {
		t.Fatalf("upstream saw %+v", reqs)
	}
	up0 := gjson.ParseBytes(reqs[0].Body)
	msgs := up0.Get("messages").Array()
	last := msgs[len(msgs)-1]
	if up0.Get("stream").Bool() || up0.Get("tool_choice.type").Str != "none" || last.Get("role").Str != "user" ||
		!strings.Contains(last.Raw, "about to be compacted") || !strings.Contains(up0.Get("messages").Raw, "fix the bug") {
		t.Fatalf("upstream request %s", reqs[0].Body)
	}
	g := gjson.ParseBytes(got)
	out := g.Get("output").Array()
	if g.Get("object").Str != "response.compaction" || len(out) != 2 ||
		out[0].Get("role").Str != "user" || out[0].Get("content.0.text").Str != "fix the bug" ||
		out[1].Get("type").Str != "message" || out[1].Get("role").Str != "user" || !strings.HasSuffix(out[1].Get("content.0.text").Str, summary) {
		t.Fatalf("client got %s", got)
	}
	if g.Get("usage.input_tokens").Int() != 20 || g.Get("usage.input_tokens_details.cached_tokens").Int() != 5 || g.Get("usage.output_tokens").Int() != 7 {
		t.Fatalf("usage %s", g.Get("usage").Raw)
	}
	recs := rec.all()
	if len(recs) != 1 || recs[0].AccountID != "cl" || recs[0].Model != "claude-sonnet-4-5" || recs[0].OutputTokens != 7 || recs[0].CacheReadTokens != 5 {
		t.Fatalf("usage records %+v", recs)
	}
}

// Compaction keeps the most recent user messages within its bound, in
// order, each as a typed output item.
func TestKeptUserMessages(t *testing.T) {
	big := strings.Repeat("x", keptUserBytes/2)
	body := `{"input":[{"role":"user","content":"` + big + `1"},{"type":"message","role":"assistant","content":"a"},{"role":"user","content":"` + big + `2"},{"type":"message","role":"user","content":[{"type":"input_text","text":"last"}]},{"type":"function_call_output","call_id":"c","output":"o"}]}`
	kept := keptUserMessages([]byte(body))
	if len(kept) != 2 || !strings.HasSuffix(gjson.Get(kept[0], "content.0.text").Str, "2") || gjson.Get(kept[1], "content.0.text").Str != "last" ||
		gjson.Get(kept[0], "type").Str != "message" || gjson.Get(kept[0], "content.0.type").Str != "input_text" {
		t.Fatalf("kept %d: %.80q", len(kept), kept)
	}
}

// Codex 0.169.0's compaction (a turn ending in compaction_trigger) for a
// Claude model: the Claude account writes the summary (instruction last,
// no trigger sent), the client gets one compaction item, streamed or
// whole, and the next turn that carries that item gives Claude the summary
// as text.
func TestCompactionTriggerOnClaude(t *testing.T) {
	const history = `[{"type":"message","role":"user","content":[{"type":"input_text","text":"fix the bug"}]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"done"}]},{"type":"compaction_trigger"}]`
	fake := &fakeupstream.Anthropic{Strict: true, Text: "The bug is fixed in main.go."}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	srv, _ := newTestRelay(t, nil, testAccount{id: "cl", typ: config.TypeClaudeAPI, url: up.URL, key: "sk-ant-api"})
	post := func(body string) []byte {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/responses", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
		return got
	}
	var items []gjson.Result
	for _, stream := range []bool{true, false} {
		got := post(`{"model":"claude-sonnet-4-5","stream":` + strconv.FormatBool(stream) + `,"input":` + history + `}`)
		var item gjson.Result
		if stream {
			var types []string
			for _, line := range strings.Split(string(got), "\n") {
				if data, ok := strings.CutPrefix(line, "data: "); ok {
					ev := gjson.Parse(data)
					types = append(types, ev.Get("type").Str)
					if ev.Get("type").Str == "response.completed" {
						item = ev.Get("response.output.0")
						if ev.Get("response.output.#").Int() != 1 || ev.Get("response.usage.output_tokens").Int() == 0 {
							t.Fatalf("response.completed %s", data)
						}
					}
				}
			}
			if strings.Join(types, ",") != "response.created,response.output_item.added,response.output_item.done,response.completed" {
				t.Fatalf("stream events %v:\n%s", types, got)
			}
		} else {
			if gjson.GetBytes(got, "output.#").Int() != 1 || gjson.GetBytes(got, "status").Str != "completed" {
				t.Fatalf("whole answer %s", got)
			}
			item = gjson.GetBytes(got, "output.0")
		}
		_, text, ok := convert.UnwrapSignature(item.Get("encrypted_content").Str)
		if item.Get("type").Str != "compaction" || !ok || !strings.HasSuffix(text, "The bug is fixed in main.go.") {
			t.Fatalf("stream %v: item %s", stream, item.Raw)
		}
		items = append(items, item)
	}
	for i, rec := range fake.Requests() {
		b := string(rec.Body)
		if !strings.Contains(b, "about to be compacted") || strings.Contains(b, "compaction_trigger") || !strings.Contains(b, `"tool_choice":{"type":"none"}`) && strings.Contains(b, `"tools"`) {
			t.Fatalf("upstream request %d: %s", i, b)
		}
	}
	before := len(fake.Requests())
	post(`{"model":"claude-sonnet-4-5","input":[` + items[0].Raw + `,{"type":"message","role":"user","content":[{"type":"input_text","text":"go on"}]}]}`)
	next := string(fake.Requests()[before].Body)
	if !strings.Contains(next, "The bug is fixed in main.go.") || strings.Contains(next, "ccr1.") {
		t.Fatalf("the turn after compaction sent %s", next)
	}
}
