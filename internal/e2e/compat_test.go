package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// openai-compatible accounts (docs/accounts.md): a Chat Completions upstream
// serves Chat clients by passthrough and the other dialects by conversion.

// compatAccount is an openai-compatible account; extra is more of its keys.
func compatAccount(id, url, key, models, extra string) string {
	s := fmt.Sprintf("[[accounts]]\ntype = \"openai-compatible\"\nid = %q\napi_url = %q\nmodels = %s\n", id, url, models)
	if key != "" {
		s += fmt.Sprintf("api_key = %q\n", key)
	}
	return s + extra
}

// The OpenAI SDK's Chat Completions on a compat account: the body reaches
// the vendor as the client wrote it (the model renamed by model_map), what
// a conversion would refuse (n > 1) passes, and the answer comes back as the
// vendor wrote it, streamed too. A model no compat account lists stays off
// them; an account without a key sends no Authorization.
func TestCompatChatPassthrough(t *testing.T) {
	fake := &fakeupstream.ChatCompat{Keys: []string{"sk-deepseek"}, Text: "hello from deepseek"}
	up := upstream(t, fake)
	local := &fakeupstream.ChatCompat{Text: "hello from ollama"}
	lup := upstream(t, local)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+
		compatAccount("ds", up.URL+"/v1", "sk-deepseek", `["deepseek-*"]`, `model_map = { "deepseek-r1" = "deepseek-reasoner" }`+"\n")+
		compatAccount("ollama", lup.URL+"/v1", "", `["llama3*"]`, ""))
	c := r.openaiClient("/v1")

	body := `{"model":"deepseek-r1","n":2,"messages":[{"role":"user","content":"hi"}],"x_vendor_option":{"keep":true}}`
	resp, err := c.Chat.Completions.New(context.Background(), chatParams("deepseek-r1"), option.WithRequestBody("application/json", []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "hello from deepseek" || resp.Usage.PromptTokens != 20 || resp.Usage.PromptTokensDetails.CachedTokens != 8 {
		t.Fatalf("answer %+v", resp)
	}
	got := fake.Requests()[0]
	want := strings.Replace(body, `"deepseek-r1"`, `"deepseek-reasoner"`, 1)
	if got.Path != "/v1/chat/completions" || string(got.Body) != want || got.Header.Get("Authorization") != "Bearer sk-deepseek" {
		t.Fatalf("upstream got %s %s %v", got.Path, got.Body, got.Header)
	}

	stream := c.Chat.Completions.NewStreaming(context.Background(), chatParams("deepseek-chat"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "hello from deepseek" {
		t.Fatalf("streamed %+v", acc.ChatCompletion)
	}
	if g := fake.Requests()[1]; gjson.GetBytes(g.Body, "model").Str != "deepseek-chat" || gjson.GetBytes(g.Body, "stream_options").Exists() {
		t.Fatalf("stream request %s", g.Body)
	}

	if _, err := c.Chat.Completions.New(context.Background(), chatParams("llama3.2")); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("the deepseek account got a llama model: %d requests", n)
	}
	if g := local.Requests()[0]; g.Header.Get("Authorization") != "" || gjson.GetBytes(g.Body, "model").Str != "llama3.2" {
		t.Fatalf("local request %v %s", g.Header, g.Body)
	}
	// Rows are found by what they are: a stream's row may be written
	// after the next request's.
	byKind := map[string]usageRow{}
	for _, row := range r.usageRows(3) {
		byKind[fmt.Sprintf("%s stream=%v", row.Account, row.Stream)] = row
	}
	if row := byKind["ds stream=false"]; row.Model != "deepseek-r1" || row.In != 12 || row.CacheRead != 8 || row.Out != 9 {
		t.Fatalf("usage rows %+v", byKind)
	}
	// The stream asked for no usage and got none: unknown, not 0 tokens.
	if row, ok := byKind["ds stream=true"]; !ok || row.In != 0 || row.Out != 0 {
		t.Fatalf("usage rows %+v", byKind)
	}
}

// Claude Code's dialect (the Anthropic SDK) on a DeepSeek-like compat
// account in thinking mode that refuses stream_options (stream_usage =
// false) and sends tool calls without ids: turn one streams a tool call,
// turn two sends the tool result back with the thinking block, which must
// reach the vendor as reasoning_content (it refuses the turn without it).
func TestCompatServesClaudeCode(t *testing.T) {
	fake := &fakeupstream.ChatCompat{Keys: []string{"sk-ds"}, NoStreamOptions: true, NoCallIDs: true,
		Reasoning: "The user wants the weather.", ToolArgs: `{"city":"Paris"}`}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("ds", up.URL, "sk-ds", `["deepseek-*"]`, "stream_usage = false\n"))
	client := r.anthropicClient()
	p := newParams("deepseek-reasoner")
	p.System = []anthropic.TextBlockParam{{Text: "You are terse."}}
	p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris?"))}
	p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather", Description: anthropic.String("Weather of a city"),
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}}}}}

	acc := streamMessage(t, client, p)
	var use anthropic.ToolUseBlock
	var thought bool
	for _, b := range acc.Content {
		switch b.Type {
		case "tool_use":
			use = b.AsToolUse()
		case "thinking":
			thought = b.Thinking == "The user wants the weather." && b.Signature != ""
		}
	}
	if acc.StopReason != "tool_use" || use.Name != "get_weather" || use.ID == "" || string(use.Input) != `{"city":"Paris"}` || !thought {
		t.Fatalf("turn one %+v", acc)
	}
	first := gjson.ParseBytes(fake.Requests()[0].Body)
	if first.Get("stream_options").Exists() || first.Get("tools.0.function.name").Str != "get_weather" || first.Get("messages.0.role").Str != "system" {
		t.Fatalf("turn one upstream body %s", first.Raw)
	}

	p.Messages = append(p.Messages, acc.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "21C, sunny", false)))
	msg, err := client.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[len(msg.Content)-1].Text != "tool said: 21C, sunny" || msg.Usage.InputTokens != 12 || msg.Usage.CacheReadInputTokens != 8 {
		t.Fatalf("turn two %+v", msg)
	}
	second := gjson.ParseBytes(fake.Requests()[1].Body)
	asst := second.Get(`messages.#(role=="assistant")`)
	tool := second.Get(`messages.#(role=="tool")`)
	if asst.Get("reasoning_content").Str != "The user wants the weather." || asst.Get("tool_calls.0.id").Str != tool.Get("tool_call_id").Str {
		t.Fatalf("turn two upstream body %s", second.Raw)
	}
	rows := r.usageRows(2)
	if rows[0].Account != "ds" || rows[0].Out != 0 || rows[1].Out != 9 {
		t.Fatalf("usage rows %+v", rows)
	}
}

// The OpenAI SDK's Responses (Codex's dialect) on a compat account, whole
// and streamed, with the stream's usage asked for and counted.
func TestCompatServesResponses(t *testing.T) {
	fake := &fakeupstream.ChatCompat{Text: "hello from glm"}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("glm", up.URL+"/api/paas/v4", "", `["glm-*"]`, ""))
	c := r.openaiClient("/v1")
	resp, err := c.Responses.New(context.Background(), responsesParams("glm-4.6"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "hello from glm" || resp.Status != "completed" || resp.Usage.InputTokens != 20 || resp.Usage.InputTokensDetails.CachedTokens != 8 {
		t.Fatalf("response %+v", resp)
	}
	got := fake.Requests()[0]
	if got.Path != "/api/paas/v4/chat/completions" || gjson.GetBytes(got.Body, "model").Str != "glm-4.6" ||
		gjson.GetBytes(got.Body, "messages.0.content").Str != "You are terse." {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	types, text, final := readResponsesStream(t, c, responsesParams("glm-4.6"))
	var out int64
	if slices.Contains(types, "response.completed") {
		out = final.Usage.OutputTokens
	}
	if text != "hello from glm" || out != 9 || !gjson.GetBytes(fake.Requests()[1].Body, "stream_options.include_usage").Bool() {
		t.Fatalf("streamed %q, output tokens %d", text, out)
	}
	if rows := r.usageRows(2); rows[1].Account != "glm" || rows[1].Out != 9 {
		t.Fatalf("usage rows %+v", rows)
	}
}

// GET /openai/v1/models names the models openai-compatible accounts serve
// by name (literal `models` entries, model_map names their globs take):
// alone when no account has an upstream model list, else added to it.
func TestCompatModelsListed(t *testing.T) {
	vendor := upstream(t, &fakeupstream.ChatCompat{})
	accts := compatAccount("ds", vendor.URL, "", `["deepseek-*", "kimi-k2"]`, `model_map = { "deepseek-r1" = "deepseek-reasoner", "glm-4" = "glm-4.6" }`+"\n") +
		compatAccount("local", vendor.URL, "", `["qwen3:8b", "kimi-k2"]`, "")
	list := func(r *relayUT) []string {
		t.Helper()
		c := r.openaiClient("/openai/v1")
		page, err := c.Models.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		return ids
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+accts)
	if got, want := strings.Join(list(r), ","), "deepseek-r1,kimi-k2,qwen3:8b"; got != want {
		t.Fatalf("models %s, want %s", got, want)
	}

	fake := &fakeupstream.OpenAI{}
	r2 := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+accts+openaiAccount("oa", upstream(t, fake).URL+"/v1", "k", 100))
	if got, want := strings.Join(list(r2), ","), "gpt-fake-1,deepseek-r1,kimi-k2,qwen3:8b"; got != want {
		t.Fatalf("models %s, want %s", got, want)
	}
}

// A vendor with JSON mode only (DeepSeek refuses response_format
// json_schema): with json_schema = false the relay sends json_object and
// the schema in a first system message, for a Chat client's structured
// output and for Gemini CLI's classifier call (responseJsonSchema) alike;
// without it the vendor's refusal reaches the client with its wording.
func TestCompatJSONModeOnly(t *testing.T) {
	vendor := &fakeupstream.ChatCompat{JSONModeOnly: true, Text: `{"ok":true}`}
	url := upstream(t, vendor).URL
	schema := map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}, "required": []string{"ok"}}
	params := chatParams("deepseek-chat")
	params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "verdict", Schema: schema},
	}}

	plain := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("ds", url, "", `["deepseek-*"]`, ""))
	pc := plain.openaiClient("/v1")
	_, err := pc.Chat.Completions.New(context.Background(), params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Message != "This response_format type is unavailable now" {
		t.Fatalf("without json_schema = false: %v", err)
	}

	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("ds", url, "", `["deepseek-*"]`, "json_schema = false\n"))
	c := r.openaiClient("/v1")
	resp, err := c.Chat.Completions.New(context.Background(), params)
	if err != nil || resp.Choices[0].Message.Content != `{"ok":true}` {
		t.Fatalf("answer %+v %v", resp, err)
	}
	got := lastRequest(t, vendor.Requests())
	first := gjson.GetBytes(got.Body, "messages.0")
	if gjson.GetBytes(got.Body, "response_format").Raw != `{"type":"json_object"}` || first.Get("role").Str != "system" ||
		!strings.Contains(first.Get("content").Str, `"ok":{"type":"boolean"}`) ||
		gjson.GetBytes(got.Body, "messages.#").Int() != 3 || gjson.GetBytes(got.Body, "messages.2.content").Str != "say hi" {
		t.Fatalf("vendor got %s", got.Body)
	}

	g := r.genaiClient(t, "v1beta", relayKey)
	out, err := g.Models.GenerateContent(context.Background(), "deepseek-chat", userText("rate this"), &genai.GenerateContentConfig{
		ResponseMIMEType: "application/json", ResponseJsonSchema: schema,
	})
	if err != nil || out.Text() != `{"ok":true}` {
		t.Fatalf("Gemini client: %v", err)
	}
	got = lastRequest(t, vendor.Requests())
	if gjson.GetBytes(got.Body, "response_format.type").Str != "json_object" || !strings.Contains(gjson.GetBytes(got.Body, "messages.0.content").Str, "JSON schema") {
		t.Fatalf("vendor got %s", got.Body)
	}
}
