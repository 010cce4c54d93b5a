package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// Gemini in the protocol matrix (#33): Claude Code's dialect on a gemini-api
// account with the strict fake (tool schemas cleaned), and the GenAI SDK
// (Gemini CLI's dialect) on a Claude account.

func TestMessagesServedByGeminiAccount(t *testing.T) {
	fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("ga", up.URL, geminiKey, 100))
	client := r.anthropicClient()
	p := newParams("gemini-2.5-pro")
	p.System = []anthropic.TextBlockParam{{Text: "You are terse."}}
	// A tool schema as Claude Code writes them: JSON Schema keywords the
	// Gemini API refuses ($schema, additionalProperties) must be cleaned.
	p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
		Name: "Read", Description: anthropic.String("Read a file"),
		InputSchema: anthropic.ToolInputSchemaParam{
			Properties:  map[string]any{"file_path": map[string]any{"type": "string"}},
			Required:    []string{"file_path"},
			ExtraFields: map[string]any{"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false},
		},
	}}}
	msg, err := client.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatalf("%v (the strict fake refused: %v)", err, fake.Requests())
	}
	if len(msg.Content) == 0 || msg.Content[0].Text != fakeGeminiText || msg.Model != "gemini-2.5-pro" {
		t.Fatalf("message %+v", msg)
	}
	got := fake.Requests()[0]
	if !strings.Contains(got.Path, "/models/gemini-2.5-pro:generateContent") ||
		gjson.GetBytes(got.Body, "systemInstruction.parts.0.text").Str != "You are terse." ||
		strings.Contains(string(got.Body), "additionalProperties") || strings.Contains(string(got.Body), "$schema") {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	if msg.Usage.CacheReadInputTokens != fakeupstream.GeminiCachedTokens || msg.Usage.InputTokens != fakeupstream.GeminiPromptTokens-fakeupstream.GeminiCachedTokens {
		t.Fatalf("usage %+v", msg.Usage)
	}

	acc := streamMessage(t, client, p)
	var text strings.Builder
	for _, b := range acc.Content {
		text.WriteString(b.Text)
	}
	if text.String() != fakeGeminiText || acc.StopReason != "end_turn" {
		t.Fatalf("accumulated %+v", acc)
	}
	last := fake.Requests()[1]
	if !strings.Contains(last.Path, ":streamGenerateContent") || !strings.Contains(last.RawQuery, "alt=sse") {
		t.Fatalf("stream upstream got %s?%s", last.Path, last.RawQuery)
	}
	rows := r.usageRows(2)
	if rows[0].Account != "ga" || rows[0].Model != "gemini-2.5-pro" {
		t.Fatalf("usage row %+v", rows[0])
	}
}

func TestGeminiClientServedByClaudeAccount(t *testing.T) {
	fake := &fakeupstream.Anthropic{Keys: []string{"sk-ant"}, Strict: true}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("ca", up.URL, "sk-ant", 100))
	c := r.genaiClient(t, "v1beta", relayKey)
	cfg := &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("be brief", "")}
	resp, err := c.Models.GenerateContent(context.Background(), "claude-sonnet-4-5", userText("say hi"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "Hello from fake upstream" || resp.UsageMetadata == nil || resp.UsageMetadata.CandidatesTokenCount != 7 {
		t.Fatalf("response %+v", resp)
	}
	got := fake.Requests()[0]
	if got.Path != "/v1/messages" || gjson.GetBytes(got.Body, "model").Str != "claude-sonnet-4-5" || !strings.Contains(gjson.GetBytes(got.Body, "system").Raw, "be brief") {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	text, um, n := collectStream(t, c, "claude-sonnet-4-5", cfg)
	if text != "Hello from fake upstream" || um == nil || um.CandidatesTokenCount != 7 || n < 2 {
		t.Fatalf("streamed %q usage %+v in %d chunks", text, um, n)
	}
	ct, err := c.Models.CountTokens(context.Background(), "claude-sonnet-4-5", userText(strings.Repeat("word ", 400)), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Counted by the Claude account's count_tokens (count_test.go has more).
	if ct.TotalTokens != 42 || fake.Count() != 3 || fake.Requests()[2].Path != "/v1/messages/count_tokens" {
		t.Fatalf("count %d; the upstream saw %d requests", ct.TotalTokens, fake.Count())
	}
}

// Codex's dialect on a gemini-api account, and Chat Completions too: the
// same Gemini upstream side serves every client dialect.
func TestResponsesAndChatServedByGeminiAccount(t *testing.T) {
	fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, Strict: true}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("ga", up.URL, geminiKey, 100))
	c := r.openaiClient("/v1")
	resp, err := c.Responses.New(context.Background(), responsesParams("gemini-2.5-flash"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != fakeGeminiText || resp.Usage.OutputTokens == 0 {
		t.Fatalf("response %+v", resp)
	}
	comp, err := c.Chat.Completions.New(context.Background(), chatParams("gemini-2.5-flash"))
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 1 || comp.Choices[0].Message.Content != fakeGeminiText || comp.Model != "gemini-2.5-flash" {
		t.Fatalf("completion %+v", comp)
	}
	for _, got := range fake.Requests() {
		if !strings.Contains(got.Path, "/models/gemini-2.5-flash:generateContent") {
			t.Fatalf("upstream got %s", got.Path)
		}
	}
}

// The GenAI SDK (Gemini CLI's dialect) on an openai-compatible account: the
// Gemini route's client side with the Chat upstream side.
func TestGeminiClientServedByCompatAccount(t *testing.T) {
	fake := &fakeupstream.ChatCompat{Text: "hello from qwen"}
	up := upstream(t, fake)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+compatAccount("qw", up.URL+"/v1", "", `["qwen-*"]`, ""))
	c := r.genaiClient(t, "v1beta", relayKey)
	resp, err := c.Models.GenerateContent(context.Background(), "qwen-3-coder", userText("say hi"), &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("be brief", "")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "hello from qwen" || resp.UsageMetadata == nil || resp.UsageMetadata.CandidatesTokenCount == 0 {
		t.Fatalf("response %+v", resp)
	}
	got := fake.Requests()[0]
	if got.Path != "/v1/chat/completions" || gjson.GetBytes(got.Body, "model").Str != "qwen-3-coder" || gjson.GetBytes(got.Body, "messages.0.content").Str != "be brief" {
		t.Fatalf("upstream got %s %s", got.Path, got.Body)
	}
	if text, _, _ := collectStream(t, c, "qwen-3-coder", nil); text != "hello from qwen" {
		t.Fatalf("streamed %q", text)
	}
}

// A converted Gemini stream records the usage the stream reported (the
// reader keeps it, readerUsage): the whole stream's, and for a stream cut
// after its second chunk the running usage read so far.
func TestGeminiConvertedStreamUsage(t *testing.T) {
	fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}}
	fake.Script = func(n int, _ *fakeupstream.Recorded) *fakeupstream.Reply {
		rep := &fakeupstream.Reply{Events: fakeupstream.GeminiStream("gemini-2.5-pro", "one two three", 3, 0)}
		if n == 1 {
			rep.CutAfter = 2
		}
		return rep
	}
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("ga", upstream(t, fake).URL, geminiKey, 100))
	client := r.anthropicClient()
	for i := 0; i < 2; i++ {
		stream := client.Messages.NewStreaming(context.Background(), newParams("gemini-2.5-pro"))
		for stream.Next() {
		}
		if err := stream.Err(); (err != nil) != (i == 1) {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	rows := r.usageRows(2)
	in, cached := int64(fakeupstream.GeminiPromptTokens-fakeupstream.GeminiCachedTokens), int64(fakeupstream.GeminiCachedTokens)
	whole := int64(fakeupstream.GeminiCandidatesTokens + fakeupstream.GeminiThoughtsTokens)
	// Chunk two of three reports 2*7/3 = 4 candidates tokens, and the thoughts.
	cut := int64(2*fakeupstream.GeminiCandidatesTokens/3 + fakeupstream.GeminiThoughtsTokens)
	for i, want := range []int64{whole, cut} {
		if row := rows[i]; !row.Stream || row.In != in || row.CacheRead != cached || row.Out != want {
			t.Fatalf("row %d: %+v, want in %d cached %d out %d", i, row, in, cached, want)
		}
	}
}
