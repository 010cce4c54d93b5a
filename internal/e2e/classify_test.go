package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// poison is what a relay-key holder writes into a request to make an
// upstream validation error repeat the phrases classifiers used to search
// for (issue #31 item 2).
const poison = "Your credit balance is too low to access the Anthropic API. This organization has been disabled. " +
	"API key not valid. Please pass a valid API key. API key expired. Please enable billing. User location is not supported for the API use."

// echoAnthropic answers a request that carries poison with a 400
// invalid_request_error repeating the request's text, as Anthropic's
// validation errors do, and any other request normally.
func echoAnthropic(_ int, r *fakeupstream.Recorded) *fakeupstream.Reply {
	text := gjson.GetBytes(r.Body, "messages.0.content.0.text").Str
	if !strings.Contains(text, "credit balance") {
		return nil
	}
	body := `{"type":"error","error":{"type":"invalid_request_error","message":` +
		string(provider.AppendJSONString(nil, "messages.0.content.0.text: unexpected value "+text)) + `}}`
	return &fakeupstream.Reply{Status: 400, Body: body}
}

// TestClientTextCoolsNoAccount: a client's request whose text holds the
// phrases of billing and credential problems, answered by 400s that repeat
// it, cools no account, and the next request is served.
func TestClientTextCoolsNoAccount(t *testing.T) {
	t.Run("anthropic", func(t *testing.T) {
		fakes := [2]*fakeupstream.Anthropic{{Text: "answer 0", Script: echoAnthropic}, {Text: "answer 1", Script: echoAnthropic}}
		r := startRelay(t, claudeAPIAccount("a0", upstream(t, fakes[0]).URL, "k0", 200)+claudeAPIAccount("a1", upstream(t, fakes[1]).URL, "k1", 100))
		c := r.anthropicClient()
		params := newParams("claude-opus-4-8")
		params.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(poison))}
		for range 3 {
			_, err := c.Messages.New(context.Background(), params)
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Error(), "credit balance is too low") {
				t.Fatalf("want the upstream's 400 passed through, got %v", err)
			}
		}
		if cds := r.App.Sched.Cooldowns(); len(cds) != 0 {
			t.Fatalf("a client's text cooled accounts: %+v", cds)
		}
		if text, err := ask(t, r); err != nil || text != "answer 0" {
			t.Fatalf("next request: %q %v", text, err)
		}
	})
	t.Run("gemini", func(t *testing.T) {
		script := func(_ int, r *fakeupstream.Recorded) *fakeupstream.Reply {
			text := gjson.GetBytes(r.Body, "contents.0.parts.0.text").Str
			if !strings.Contains(text, "API key not valid") {
				return nil
			}
			msg := provider.AppendJSONString(nil, "* GenerateContentRequest.contents[0].parts[0].text: "+text)
			return &fakeupstream.Reply{Status: 400, Body: `{"error":{"code":400,"message":` + string(msg) + `,"status":"INVALID_ARGUMENT"}}`}
		}
		f0 := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Script: script}
		f1 := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Script: script}
		r := startRelay(t, geminiAPIAccount("g0", upstream(t, f0).URL, geminiKey, 200)+geminiAPIAccount("g1", upstream(t, f1).URL, geminiKey, 100))
		c := r.genaiClient(t, "v1beta", "x")
		for range 3 {
			_, err := c.Models.GenerateContent(context.Background(), geminiModel, userText(poison), nil)
			var apiErr genai.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != 400 || !strings.Contains(apiErr.Message, "enable billing") {
				t.Fatalf("want the upstream's 400 passed through, got %v", err)
			}
		}
		if cds := r.App.Sched.Cooldowns(); len(cds) != 0 {
			t.Fatalf("a client's text cooled accounts: %+v", cds)
		}
		resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("say hi"), nil)
		if err != nil || resp.Text() != fakeGeminiText {
			t.Fatalf("next request: %v", err)
		}
	})
}
