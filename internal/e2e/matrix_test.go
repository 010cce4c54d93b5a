package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// The protocol matrix (docs/matrix.md): a client of one API served by an
// account of another, with the official SDKs checking the converted wire.

// Claude Code's dialect (the Anthropic SDK) on an OpenAI Responses account,
// the model naming the pool.
func TestMessagesServedByOpenAIAccount(t *testing.T) {
	fake := &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Text: "hello from gpt"}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", up.URL, "sk-openai", 100))
	client := r.anthropicClient()
	p := newParams("gpt-5")
	p.System = []anthropic.TextBlockParam{{Text: "You are terse."}}
	msg, err := client.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "hello from gpt" || msg.StopReason != "end_turn" || msg.Model != "gpt-5" {
		t.Fatalf("message %+v", msg)
	}
	// 20 input of which 8 cached: Anthropic's input_tokens excludes them.
	if msg.Usage.InputTokens != 12 || msg.Usage.CacheReadInputTokens != 8 || msg.Usage.OutputTokens != 9 {
		t.Fatalf("usage %+v", msg.Usage)
	}
	got := fake.Requests()[0]
	if got.Path != "/responses" || gjson.GetBytes(got.Body, "model").Str != "gpt-5" ||
		!strings.Contains(gjson.GetBytes(got.Body, "instructions").Str+gjson.GetBytes(got.Body, "input").Raw, "You are terse.") {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	rows := r.usageRows(1)
	if rows[0].Account != "oa" || rows[0].Model != "gpt-5" || rows[0].In != 12 || rows[0].CacheRead != 8 || rows[0].Out != 9 {
		t.Fatalf("usage row %+v", rows[0])
	}

	// Streamed: the SDK's accumulator takes the converted events.
	acc := streamMessage(t, client, p)
	if len(acc.Content) != 1 || acc.Content[0].Text != "hello from gpt" || acc.StopReason != "end_turn" || acc.Usage.OutputTokens != 9 {
		t.Fatalf("accumulated %+v", acc)
	}
}

// Codex's dialect (the OpenAI SDK's Responses) on a Claude account.
func TestResponsesServedByClaudeAccount(t *testing.T) {
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", up.URL, "sk-ant", 100))
	c := r.openaiClient("/v1")
	resp, err := c.Responses.New(context.Background(), responsesParams("claude-sonnet-4-5"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "Hello from fake upstream" || resp.Status != "completed" {
		t.Fatalf("response %+v", resp)
	}
	// Anthropic's 12 input + 3 cache write + 5 cache read.
	if resp.Usage.InputTokens != 20 || resp.Usage.InputTokensDetails.CachedTokens != 5 || resp.Usage.OutputTokens != 7 {
		t.Fatalf("usage %+v", resp.Usage)
	}
	got := fake.Requests()[0]
	if got.Path != "/v1/messages" || gjson.GetBytes(got.Body, "model").Str != "claude-sonnet-4-5" ||
		!strings.Contains(gjson.GetBytes(got.Body, "system").Raw, "You are terse.") || gjson.GetBytes(got.Body, "max_tokens").Int() == 0 {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	if strings.Contains(strings.Join(flatten(got.Header), "\n"), relayKey) {
		t.Fatal("relay key reached the upstream")
	}

	types, text, final := readResponsesStream(t, c, responsesParams("claude-sonnet-4-5"))
	completed := slices.Contains(types, "response.completed")
	if completed && final.Usage.OutputTokens != 7 {
		t.Fatalf("completed usage %+v", final.Usage)
	}
	if text != "Hello from fake upstream" || !completed {
		t.Fatalf("streamed %q completed %v", text, completed)
	}
	rows := r.usageRows(2)
	if rows[0].Account != "ca" || rows[0].Model != "claude-sonnet-4-5" || rows[0].Out != 7 {
		t.Fatalf("usage row %+v", rows[0])
	}
}

// An upstream error of another API reaches the client in its own shape,
// with the upstream's wording.
func TestConvertedErrorInClientShape(t *testing.T) {
	fake := &fakeupstream.OpenAI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
		return &fakeupstream.Reply{Status: 400, Body: fakeupstream.OpenAIError("Invalid value for 'input': too long.", "invalid_request_error", "input", "")}
	}}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+openaiAccount("oa", up.URL, "k", 100))
	client := r.anthropicClient()
	_, err := client.Messages.New(context.Background(), newParams("gpt-5"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("err %v", err)
	}
	body := apiErr.RawJSON()
	if gjson.Get(body, "type").Str != "error" || gjson.Get(body, "error.type").Str != "invalid_request_error" ||
		gjson.Get(body, "error.message").Str != "Invalid value for 'input': too long." {
		t.Fatalf("error body %s", body)
	}
}

// Responses' previous_response_id needs a server-side conversation that a
// Claude account does not have: a clear 400 in OpenAI's shape, no account
// touched.
func TestPreviousResponseIDOnClaudeAccount(t *testing.T) {
	fake := &fakeupstream.Anthropic{}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", up.URL, "k", 100))
	p := responsesParams("claude-sonnet-4-5")
	p.PreviousResponseID = openai.String("resp_123")
	c := r.openaiClient("/v1")
	_, err := c.Responses.New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "previous_response_id") {
		t.Fatalf("err %v", err)
	}
	if fake.Count() != 0 {
		t.Fatal("the upstream was called")
	}
}
