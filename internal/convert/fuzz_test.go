package convert

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzChatOnClaude checks the Chat route's request path to a Claude
// account (DecodeChat, then EncodeMessages): any body either becomes a
// well-formed Anthropic request or fails with a *RequestError.
func FuzzChatOnClaude(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}],"max_tokens":10,"stop":["x"]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":"y"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","parallel_tool_calls":false}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"developer","content":"d"},{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":100,"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"}}}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"robot","content":"x"}],"n":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := chatOnClaude(body)
		if err != nil {
			checkRequestError(t, err)
			return
		}
		checkMessagesRequest(t, out.body, out.model, out.stream)
	})
}

// chatOnClaudeRequest is a Chat body as the relay sends it to Claude.
type chatOnClaudeRequest struct {
	body   []byte
	model  string
	stream bool
}

// chatOnClaude converts a Chat body into the Messages body a Claude account
// gets, the model renamed as a [models] alias would.
func chatOnClaude(body []byte) (*chatOnClaudeRequest, error) {
	r, err := DecodeChat(body)
	if err != nil {
		return nil, err
	}
	if r.IncludeUsage && !r.Stream {
		return nil, errors.New("include_usage without stream")
	}
	if r.Model == "gpt-4o" {
		r.Model = "claude-sonnet-4-5"
	}
	out, err := EncodeMessages(r)
	if err != nil {
		return nil, err
	}
	return &chatOnClaudeRequest{body: out, model: r.Model, stream: r.Stream}, nil
}

// checkMessagesRequest asserts the invariants Anthropic enforces on a
// request body.
func checkMessagesRequest(t *testing.T, body []byte, model string, stream bool) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("body is not valid JSON: %s", body)
	}
	var r struct {
		Model     string
		MaxTokens int64 `json:"max_tokens"`
		Messages  []struct {
			Role    string
			Content []struct {
				Type      string
				Text      *string
				Input     json.RawMessage
				ID        string
				ToolUseID string `json:"tool_use_id"`
			}
		}
		Thinking *struct {
			BudgetTokens int64 `json:"budget_tokens"`
		}
		Stream bool
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("body does not decode: %v: %s", err, body)
	}
	if r.Model == "" || r.Model != model {
		t.Fatalf("model %q, want %q", r.Model, model)
	}
	if r.MaxTokens < 1 {
		t.Fatalf("max_tokens = %d", r.MaxTokens)
	}
	if r.Thinking != nil && r.MaxTokens <= r.Thinking.BudgetTokens {
		t.Fatalf("max_tokens %d does not exceed budget %d", r.MaxTokens, r.Thinking.BudgetTokens)
	}
	if r.Stream != stream {
		t.Fatalf("stream %v, want %v", r.Stream, stream)
	}
	if len(r.Messages) == 0 {
		t.Fatal("no messages")
	}
	for i, m := range r.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			t.Fatalf("message %d role %q", i, m.Role)
		}
		if i > 0 && r.Messages[i-1].Role == m.Role {
			t.Fatalf("messages %d and %d share role %q", i-1, i, m.Role)
		}
		if len(m.Content) == 0 {
			t.Fatalf("message %d is empty", i)
		}
		seenOther := false
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				if b.Text == nil || *b.Text == "" {
					t.Fatalf("empty text block in message %d", i)
				}
			case "tool_use":
				if len(b.Input) == 0 || b.Input[0] != '{' {
					t.Fatalf("tool_use input is not an object: %s", b.Input)
				}
				if b.ID == "" || sanitizeToolID(b.ID) != b.ID {
					t.Fatalf("tool_use id %q outside Anthropic's charset", b.ID)
				}
			case "tool_result":
				if b.ToolUseID == "" || sanitizeToolID(b.ToolUseID) != b.ToolUseID {
					t.Fatalf("tool_result id %q outside Anthropic's charset", b.ToolUseID)
				}
				if seenOther {
					t.Fatalf("tool_result after other content in message %d", i)
				}
				continue
			}
			seenOther = true
		}
	}
}

// FuzzClaudeToChat checks the Chat route's answer path from a Claude
// account (ParseMessages, then WriteChat): any upstream body either fails
// or becomes a valid chat.completion.
func FuzzClaudeToChat(f *testing.F) {
	f.Add([]byte(`{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"x":[1,2]}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":3,"cache_creation_input_tokens":4}}`))
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Add([]byte(`{"content":[{"type":"tool_use","input":"str"}],"usage":{"input_tokens":-5}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := ParseMessages(body)
		if err != nil {
			return
		}
		out := WriteChat(resp, "")
		var r struct {
			ID      string
			Object  string
			Choices []struct {
				Message struct {
					Role      string
					ToolCalls []struct {
						Index    int
						Function struct{ Arguments string }
					} `json:"tool_calls"`
				}
				FinishReason string `json:"finish_reason"`
			}
			Usage struct {
				TotalTokens int64 `json:"total_tokens"`
			}
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %s", out)
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("output does not decode: %v: %s", err, out)
		}
		if !strings.HasPrefix(r.ID, "chatcmpl-") || r.Object != "chat.completion" || len(r.Choices) != 1 || r.Choices[0].Message.Role != "assistant" || r.Choices[0].FinishReason == "" {
			t.Fatalf("malformed completion: %s", out)
		}
		for i, tc := range r.Choices[0].Message.ToolCalls {
			if tc.Index != i || !json.Valid([]byte(tc.Function.Arguments)) {
				t.Fatalf("tool call %d malformed: %s", i, out)
			}
		}
	})
}

// FuzzClaudeStreamToChat feeds arbitrary Messages event sequences through
// the Chat route's stream path from a Claude account (the Messages stream
// reader, then the Chat stream writer). The input is split into events on
// blank lines; each event's first line is its name (one letter from
// messagesEventNames, or spelled out), the rest its data.
func FuzzClaudeStreamToChat(f *testing.F) {
	f.Add([]byte("s\n{\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}\n\nb\n{\"index\":0,\"content_block\":{\"type\":\"text\"}}\n\nd\n{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nm\n{\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nx\n{}"), true)
	f.Add([]byte("b\n{\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\"}}\n\nd\n{\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}\n\nb\n{\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"u\",\"name\":\"o\"}}\n\nd\n{\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\":1}\"}}"), false)
	f.Add([]byte("d\n{\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\np\n{}\n\nm\n{\"delta\":{\"stop_reason\":\"tool_use\"}}"), true)
	f.Add([]byte("r\n{\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}"), true)
	f.Fuzz(func(t *testing.T, input []byte, includeUsage bool) {
		rd, w := NewMessagesStreamReader(), newChatStreamWriter("m", includeUsage, 1)
		var out []byte
		var evs []Event
		eachFuzzEvent(input, func(name, data []byte) {
			evs = rd.Read(evs[:0], name, data)
			for i := range evs {
				out = w.Write(out, &evs[i])
			}
		})
		out = w.Finish(out)
		checkChatStream(t, out, includeUsage)
	})
}

// checkChatStream asserts what an OpenAI client relies on: framing, JSON,
// one id, tool-call ordinals that only grow by one, nothing after the
// finish_reason but usage, and [DONE] last.
func checkChatStream(t *testing.T, out []byte, includeUsage bool) {
	t.Helper()
	payloads := chatPayloads(t, out)
	if len(payloads) == 0 || payloads[len(payloads)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", out)
	}
	var (
		id         string
		tools      int
		finished   bool
		usageSeen  bool
		roleSeen   bool
		choicesSet bool
	)
	for i, p := range payloads[:len(payloads)-1] {
		if p == "[DONE]" {
			t.Fatalf("[DONE] at %d of %d", i, len(payloads))
		}
		if !json.Valid([]byte(p)) {
			t.Fatalf("chunk %d is not valid JSON: %s", i, p)
		}
		var c struct {
			Error   json.RawMessage
			ID      string
			Object  string
			Choices *[]struct {
				Index int
				Delta struct {
					Role      *string
					ToolCalls []struct {
						Index    int
						ID       *string
						Function struct {
							Name      *string
							Arguments *string
						}
					} `json:"tool_calls"`
				}
				FinishReason *string `json:"finish_reason"`
			}
			Usage json.RawMessage
		}
		if err := json.Unmarshal([]byte(p), &c); err != nil {
			t.Fatalf("chunk %d does not decode: %v: %s", i, err, p)
		}
		if c.Error != nil {
			continue
		}
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Choices == nil {
			t.Fatalf("chunk %d malformed: %s", i, p)
		}
		if id == "" {
			id = c.ID
		} else if c.ID != id {
			t.Fatalf("chunk %d id %q, earlier %q", i, c.ID, id)
		}
		if hasUsage := c.Usage != nil && string(c.Usage) != "null"; hasUsage {
			if !includeUsage || usageSeen || len(*c.Choices) != 0 {
				t.Fatalf("unexpected usage chunk %d: %s", i, p)
			}
			usageSeen = true
			continue
		}
		if includeUsage != (string(c.Usage) == "null") {
			t.Fatalf("chunk %d usage field %q with includeUsage=%v", i, c.Usage, includeUsage)
		}
		if usageSeen {
			t.Fatalf("choice chunk %d after the usage chunk", i)
		}
		if len(*c.Choices) != 1 {
			t.Fatalf("chunk %d has %d choices", i, len(*c.Choices))
		}
		ch := (*c.Choices)[0]
		if !choicesSet {
			choicesSet = true
			roleSeen = ch.Delta.Role != nil && *ch.Delta.Role == "assistant"
			if !roleSeen {
				t.Fatalf("first chunk is not the role chunk: %s", p)
			}
		} else if ch.Delta.Role != nil {
			t.Fatalf("role repeated in chunk %d", i)
		}
		if finished {
			t.Fatalf("chunk %d after finish_reason: %s", i, p)
		}
		if ch.FinishReason != nil {
			finished = true
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.ID != nil {
				if tc.Index != tools || tc.Function.Name == nil || tc.Function.Arguments == nil {
					t.Fatalf("tool call start %d out of order (have %d): %s", tc.Index, tools, p)
				}
				tools++
				continue
			}
			if tc.Index < 0 || tc.Index >= tools || tc.Function.Arguments == nil {
				t.Fatalf("tool call fragment for unknown index %d (have %d): %s", tc.Index, tools, p)
			}
		}
	}
}
