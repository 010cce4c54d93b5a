package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// Token counts across the matrix (docs/matrix.md, "Counting tokens"): each
// dialect's count method is served by the accounts the model routes to, a
// real count from the account's own count method where it has one (the
// strict fakes refuse what the real methods refuse: generation parameters,
// unknown members, a generateContentRequest without its model, a tool
// schema Gemini does not take), else the relay's estimate, said so.

// countRelay is a relay with a strict Claude, an OpenAI Responses and a
// strict Gemini account, each model naming its pool.
type countRelay struct {
	*relayUT
	claude *fakeupstream.Anthropic
	openai *fakeupstream.OpenAI
	gemini *fakeupstream.GeminiAPI
}

func startCountRelay(t *testing.T) *countRelay {
	cr := &countRelay{
		claude: &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true},
		openai: &fakeupstream.OpenAI{Keys: []string{"sk-openai"}, Strict: true},
		gemini: &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true},
	}
	cr.relayUT = startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+
		claudeAPIAccount("ca", upstream(t, cr.claude).URL, "sk-ant", 100)+
		openaiAccount("oa", upstream(t, cr.openai).URL, "sk-openai", 100)+
		geminiAPIAccount("ga", upstream(t, cr.gemini).URL, geminiKey, 100))
	return cr
}

// lastRequest is the last request fake saw, failing the test if none.
func lastRequest(t *testing.T, reqs []*fakeupstream.Recorded) *fakeupstream.Recorded {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return reqs[len(reqs)-1]
}

// countTool is a tool whose schema Gemini refuses as it is
// (additionalProperties, $schema): a converted count must clean it.
var countTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name: "read_file",
	InputSchema: anthropic.ToolInputSchemaParam{
		Properties:  map[string]any{"path": map[string]any{"type": "string"}},
		Required:    []string{"path"},
		ExtraFields: map[string]any{"additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"},
	},
}}

// Claude Code's count_tokens for models of the other APIs: OpenAI's
// input_tokens and Gemini's countTokens count it, in Anthropic's shape.
func TestCountTokensOnOtherAPIs(t *testing.T) {
	cr := startCountRelay(t)
	client := cr.anthropicClient()
	params := func(model string) anthropic.MessageCountTokensParams {
		return anthropic.MessageCountTokensParams{
			Model:    anthropic.Model(model),
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfString: anthropic.String("You are terse.")},
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count me"))},
			Tools:    []anthropic.MessageCountTokensToolUnionParam{{OfTool: countTool.OfTool}},
		}
	}
	var hdr *http.Response
	n, err := client.Messages.CountTokens(context.Background(), params("gpt-5"), option.WithResponseInto(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if n.InputTokens != fakeupstream.OpenAIInputTokens || hdr.Header.Get("X-Ccrelay-Token-Count") != "" {
		t.Fatalf("count %d, header %q", n.InputTokens, hdr.Header.Get("X-Ccrelay-Token-Count"))
	}
	got := lastRequest(t, cr.openai.Requests())
	if got.Path != "/responses/input_tokens" || gjson.GetBytes(got.Body, "model").Str != "gpt-5" ||
		!strings.Contains(string(got.Body), "You are terse.") || !gjson.GetBytes(got.Body, "tools.0").Exists() {
		t.Fatalf("OpenAI got %s %s", got.Path, got.Body)
	}

	n, err = client.Messages.CountTokens(context.Background(), params("gemini-2.5-pro"))
	if err != nil {
		t.Fatal(err)
	}
	if n.InputTokens != fakeupstream.GeminiCountTokens {
		t.Fatalf("count %d", n.InputTokens)
	}
	got = lastRequest(t, cr.gemini.Requests())
	gcr := gjson.GetBytes(got.Body, "generateContentRequest")
	if !strings.HasSuffix(got.Path, "/models/gemini-2.5-pro:countTokens") || gcr.Get("model").Str != "models/gemini-2.5-pro" ||
		!strings.Contains(gcr.Get("systemInstruction").Raw, "You are terse.") || !gcr.Get("tools.0.functionDeclarations.0").Exists() {
		t.Fatalf("Gemini got %s %s", got.Path, got.Body)
	}
	if cr.claude.Count() != 0 {
		t.Fatal("the Claude account was asked")
	}
	// Counts are not generations: no tokens are recorded against them.
	for _, row := range cr.usageRows(2) {
		if row.In != 0 || row.Out != 0 {
			t.Fatalf("a count recorded usage: %+v", row)
		}
	}
}

// Gemini CLI's countTokens on a Claude and an OpenAI model, and a
// generateContentRequest-shaped body (the form that counts a whole request).
func TestGeminiCountTokensOnOtherAPIs(t *testing.T) {
	cr := startCountRelay(t)
	c := cr.genaiClient(t, "v1beta", relayKey)
	ct, err := c.Models.CountTokens(context.Background(), "claude-sonnet-4-5", userText("count me"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct.TotalTokens != 42 {
		t.Fatalf("count %+v", ct)
	}
	got := lastRequest(t, cr.claude.Requests())
	if got.Path != "/v1/messages/count_tokens" || gjson.GetBytes(got.Body, "model").Str != "claude-sonnet-4-5" ||
		!strings.Contains(gjson.GetBytes(got.Body, "messages").Raw, "count me") {
		t.Fatalf("Claude got %s %s", got.Path, got.Body)
	}
	ct, err = c.Models.CountTokens(context.Background(), "gpt-5", userText("count me"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct.TotalTokens != fakeupstream.OpenAIInputTokens {
		t.Fatalf("count %+v", ct)
	}

	body := `{"generateContentRequest":{"model":"models/claude-sonnet-4-5","systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"count me"}]}]}}`
	status, _, resp := rawGemini(t, http.MethodPost, cr.URL+"/gemini/v1beta/models/claude-sonnet-4-5:countTokens", body, map[string]string{"x-goog-api-key": relayKey})
	if status != http.StatusOK || gjson.Get(resp, "totalTokens").Int() != 42 {
		t.Fatalf("status %d: %s", status, resp)
	}
	got = lastRequest(t, cr.claude.Requests())
	if !strings.Contains(gjson.GetBytes(got.Body, "system").Raw, "be brief") || !strings.Contains(string(got.Body), "count me") {
		t.Fatalf("Claude got %s", got.Body)
	}
}

// The OpenAI SDK's input_tokens: passed through to an openai-responses
// account byte for byte, converted for Claude and Gemini models.
func TestResponsesInputTokens(t *testing.T) {
	cr := startCountRelay(t)
	c := cr.openaiClient("/v1")
	count := func(model string, opts ...oaoption.RequestOption) int64 {
		t.Helper()
		res, err := c.Responses.InputTokens.Count(context.Background(), responses.InputTokenCountParams{
			Model:        param.NewOpt(model),
			Instructions: param.NewOpt("You are terse."),
			Input:        responses.InputTokenCountParamsInputUnion{OfString: param.NewOpt("count me")},
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return res.InputTokens
	}
	if n := count("gpt-5"); n != fakeupstream.OpenAIInputTokens {
		t.Fatalf("count %d", n)
	}
	got := lastRequest(t, cr.openai.Requests())
	if got.Path != "/responses/input_tokens" || gjson.GetBytes(got.Body, "input").Str != "count me" {
		t.Fatalf("OpenAI got %s %s", got.Path, got.Body)
	}
	if n := count("claude-sonnet-4-5"); n != 42 {
		t.Fatalf("count %d", n)
	}
	got = lastRequest(t, cr.claude.Requests())
	if got.Path != "/v1/messages/count_tokens" || !strings.Contains(gjson.GetBytes(got.Body, "system").Raw, "You are terse.") {
		t.Fatalf("Claude got %s %s", got.Path, got.Body)
	}
	if n := count("gemini-2.5-pro"); n != fakeupstream.GeminiCountTokens {
		t.Fatalf("count %d", n)
	}
	// A parameter the count method does not know is the upstream's 400,
	// its wording intact, in OpenAI's shape.
	_, err := c.Responses.InputTokens.Count(context.Background(), responses.InputTokenCountParams{Model: param.NewOpt("gpt-5")},
		oaoption.WithJSONSet("max_output_tokens", 10))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.Message != "Unknown parameter: 'max_output_tokens'." || apiErr.Param != "max_output_tokens" {
		t.Fatalf("err %v", err)
	}
	// The client's own mistakes are refused by the relay, in OpenAI's
	// shape, before any account: a body that is not JSON, a key twice.
	sent := len(cr.openai.Requests()) + len(cr.claude.Requests()) + len(cr.gemini.Requests())
	auth := map[string]string{"Authorization": "Bearer " + relayKey}
	for _, body := range []string{`not json`, `{"model":"gpt-5","model":"claude-sonnet-4-5","input":"x"}`} {
		status, out := rawHTTP(t, cr.URL, "POST", "/v1/responses/input_tokens", auth, body)
		if status != 400 || gjson.Get(out, "error.message").Str == "" || gjson.Get(out, "error.type").Str != "invalid_request_error" {
			t.Fatalf("%s: %d %s", body, status, out)
		}
	}
	if now := len(cr.openai.Requests()) + len(cr.claude.Requests()) + len(cr.gemini.Requests()); now != sent {
		t.Fatal("a refused count reached an account")
	}
}

// Accounts without a count method (codex-oauth, openai-compatible) are left
// out of a count: another account of the pool counts, and with none the
// answer is the estimate, said so, no account asked.
func TestCountTokensWithoutACountMethod(t *testing.T) {
	o := &fakeupstream.OAuth{}
	chatgpt := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	codex := codexAccount("cx", upstream(t, chatgpt).URL+"/backend-api/codex", upstream(t, o).URL, o.Issue(), "ws-1", 200)
	vendor := &fakeupstream.ChatCompat{}
	compat := compatAccount("ds", upstream(t, vendor).URL, "", `["deepseek-*"]`, "")
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codex+compat)

	var hdr *http.Response
	client := r.anthropicClient()
	for _, model := range []string{"gpt-5", "deepseek-chat"} {
		n, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
			Model:    anthropic.Model(model),
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("word ", 400)))},
		}, option.WithResponseInto(&hdr))
		if err != nil {
			t.Fatal(err)
		}
		if n.InputTokens < 450 || n.InputTokens > 550 || hdr.Header.Get("X-Ccrelay-Token-Count") != "estimate" {
			t.Fatalf("%s: count %d header %q", model, n.InputTokens, hdr.Header.Get("X-Ccrelay-Token-Count"))
		}
	}
	oc := r.openaiClient("/v1")
	res, err := oc.Responses.InputTokens.Count(context.Background(), responses.InputTokenCountParams{
		Model: param.NewOpt("gpt-5"),
		Input: responses.InputTokenCountParamsInputUnion{OfString: param.NewOpt(strings.Repeat("word ", 400))},
	})
	if err != nil || res.InputTokens < 400 || res.InputTokens > 550 {
		t.Fatalf("input_tokens %+v %v", res, err)
	}
	g, err := r.genaiClient(t, "v1beta", relayKey).Models.CountTokens(context.Background(), "gpt-5", userText(strings.Repeat("word ", 400)), nil)
	if err != nil || g.TotalTokens < 400 || g.TotalTokens > 550 {
		t.Fatalf("countTokens %+v %v", g, err)
	}
	if chatgpt.Count() != 0 || vendor.Count() != 0 {
		t.Fatal("an account without a count method was asked")
	}

	// With an openai-responses account beside the codex-oauth one (of a
	// higher priority), the count goes to the account that can count.
	fake := &fakeupstream.OpenAI{}
	r2 := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codex+openaiAccount("oa", upstream(t, fake).URL, "k", 100))
	client2 := r2.anthropicClient()
	n, err := client2.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "gpt-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count me"))},
	})
	if err != nil || n.InputTokens != fakeupstream.OpenAIInputTokens || fake.Count() != 1 || chatgpt.Count() != 0 {
		t.Fatalf("count %+v %v; openai %d chatgpt %d", n, err, fake.Count(), chatgpt.Count())
	}
}

// A route's targets count in order: a target whose accounts cannot count is
// passed over for the next that can.
func TestCountTokensFollowsRoutes(t *testing.T) {
	vendor := &fakeupstream.ChatCompat{}
	claude := &fakeupstream.Anthropic{Strict: true}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+
		compatAccount("ds", upstream(t, vendor).URL, "", `["deepseek-*"]`, "")+
		claudeAPIAccount("ca", upstream(t, claude).URL, "k", 100)+
		"[[routes]]\nmodels = [\"deepseek-*\"]\nto = [\"compat\", \"claude:claude-sonnet-4-5\"]\n")
	var hdr *http.Response
	client := r.anthropicClient()
	n, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "deepseek-chat",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count me"))},
	}, option.WithResponseInto(&hdr))
	if err != nil || n.InputTokens != 42 || hdr.Header.Get("X-Ccrelay-Token-Count") != "" {
		t.Fatalf("count %+v %v", n, err)
	}
	got := lastRequest(t, claude.Requests())
	if gjson.GetBytes(got.Body, "model").Str != "claude-sonnet-4-5" || vendor.Count() != 0 {
		t.Fatalf("Claude got %s; vendor asked %d times", got.Body, vendor.Count())
	}
}

// Code Assist's countTokens takes the contents alone, in its envelope.
func TestCountTokensOnCodeAssist(t *testing.T) {
	ca := &fakeupstream.CodeAssist{}
	_, acct := codeAssistUpstream(t, "ca-1", ca, 100)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+acct)
	client := r.anthropicClient()
	n, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "gemini-2.5-pro",
		System:   anthropic.MessageCountTokensParamsSystemUnion{OfString: anthropic.String("You are terse.")},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count me"))},
	})
	if err != nil || n.InputTokens != fakeupstream.GeminiCountTokens {
		t.Fatalf("count %+v %v", n, err)
	}
	got := lastRequest(t, ca.Requests())
	req := gjson.GetBytes(got.Body, "request")
	if got.Path != "/v1internal:countTokens" || req.Get("model").Str != "models/gemini-2.5-pro" ||
		req.Get("contents.0.parts.0.text").Str != "count me" || req.Get("systemInstruction").Exists() || gjson.GetBytes(got.Body, "project").Exists() {
		t.Fatalf("Code Assist got %s %s", got.Path, got.Body)
	}
}
