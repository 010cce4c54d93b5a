package fakeupstream

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// ChatCompat is a fake OpenAI-compatible Chat Completions API (the upstream
// of openai-compatible accounts: DeepSeek, Kimi, GLM, Ollama, vLLM...): POST
// .../chat/completions as JSON or SSE (data-only chunks, then [DONE]), GET
// .../models, errors in OpenAI's shape. Its default answer is a tool round
// trip: a request that offers tools and ends with a user message gets a
// call of the first tool (ToolArgs); one that ends with a tool result gets
// the text "tool said: <result>"; any other gets Text.
type ChatCompat struct {
	// Keys are the accepted Bearer tokens; empty = any, and none needed
	// (a local server).
	Keys []string
	// Script, when set, answers each request; nil result = default answer.
	Script func(n int, r *Recorded) *Reply
	// Text is the default answer text.
	Text string
	// ToolArgs are the default tool call's arguments (default {}).
	ToolArgs string
	// NoCallIDs: tool calls come without ids (some local servers).
	NoCallIDs bool
	// NoStreamOptions refuses a request with stream_options (400), as
	// vendors that do not take them do.
	NoStreamOptions bool
	// NoStreamUsage: streams never carry a usage chunk, even when asked.
	NoStreamUsage bool
	// JSONModeOnly refuses response_format json_schema and takes
	// json_object only when the prompt says "json", as DeepSeek does.
	JSONModeOnly bool
	// Reasoning, when set, is DeepSeek's thinking mode: answers carry it as
	// reasoning_content before their content, and a request whose
	// assistant tool-call message lacks reasoning_content is refused (400),
	// as DeepSeek refuses a tool turn without its reasoning.
	Reasoning string

	requestLog
}

// ServeHTTP records the request, checks the key and answers it.
func (f *ChatCompat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	n := f.add(rec)
	if len(f.Keys) > 0 {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		valid := false
		for _, k := range f.Keys {
			valid = valid || (ok && k == key)
		}
		if !valid {
			WriteReply(w, r, &Reply{Status: 401, Body: OpenAIError("Authentication Fails (no such user)", "authentication_error", "", "invalid_request_error")})
			return
		}
	}
	if rep := f.refusal(rec); rep != nil {
		WriteReply(w, r, rep)
		return
	}
	WriteReply(w, r, scripted(f.Script, n, rec, f.defaultReply))
}

// refusal is the 400 a strict vendor gives rec, nil when it takes it.
func (f *ChatCompat) refusal(rec *Recorded) *Reply {
	if rec.Method != http.MethodPost {
		return nil
	}
	body := gjson.ParseBytes(rec.Body)
	if f.NoStreamOptions && body.Get("stream_options").Exists() {
		return &Reply{Status: 400, Body: OpenAIError("Unrecognized request argument supplied: stream_options", "invalid_request_error", "stream_options", "")}
	}
	if f.JSONModeOnly {
		switch body.Get("response_format.type").Str {
		case "json_schema":
			return &Reply{Status: 400, Body: OpenAIError("This response_format type is unavailable now", "invalid_request_error", "", "invalid_request_error")}
		case "json_object":
			if !strings.Contains(strings.ToLower(body.Get("messages").Raw), "json") {
				return &Reply{Status: 400, Body: OpenAIError("Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'.", "invalid_request_error", "", "invalid_request_error")}
			}
		}
	}
	if f.Reasoning == "" {
		return nil
	}
	var missing bool
	body.Get("messages").ForEach(func(_, m gjson.Result) bool {
		if m.Get("role").Str == "assistant" && m.Get("tool_calls.#").Int() > 0 && m.Get("reasoning_content").Str == "" {
			missing = true
		}
		return !missing
	})
	if missing {
		return &Reply{Status: 400, Body: OpenAIError("Missing `reasoning_content` field in the assistant message at message index 2.", "invalid_request_error", "", "invalid_request_error")}
	}
	return nil
}

func (f *ChatCompat) defaultReply(rec *Recorded) *Reply {
	if rec.Method == http.MethodGet && strings.HasSuffix(rec.Path, "/models") {
		return &Reply{Body: `{"object":"list","data":[{"id":"compat-fake-1","object":"model","owned_by":"fake"}]}`}
	}
	if rec.Method != http.MethodPost || !strings.HasSuffix(rec.Path, "/chat/completions") {
		return &Reply{Status: 404, Body: OpenAIError("Invalid URL ("+rec.Method+" "+rec.Path+")", "invalid_request_error", "", "")}
	}
	body := gjson.ParseBytes(rec.Body)
	a := chatAnswer{model: body.Get("model").Str, reasoning: f.Reasoning, text: f.Text}
	if a.text == "" {
		a.text = "Hello from fake upstream"
	}
	last := body.Get("messages.@reverse.0")
	switch {
	case last.Get("role").Str == "tool":
		a.text = "tool said: " + last.Get("content").String()
	case last.Get("role").Str == "user" && body.Get("tools.#").Int() > 0:
		a.tool = body.Get("tools.0.function.name").Str
		a.args = f.ToolArgs
		if a.args == "" {
			a.args = "{}"
		}
		if !f.NoCallIDs {
			a.callID = "call_fake01"
		}
	}
	if !body.Get("stream").Bool() {
		return &Reply{Body: a.json()}
	}
	usage := body.Get("stream_options.include_usage").Bool() && !f.NoStreamUsage
	return &Reply{Events: a.stream(usage)}
}

// ChatCompatUsage is the usage of every default answer: 20 prompt tokens
// of which 8 cached, 9 completion tokens.
const ChatCompatUsage = `{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":8}}`

// chatAnswer is one default answer: text, or a call of tool.
type chatAnswer struct {
	model, reasoning, text string
	tool, callID, args     string
}

func (a *chatAnswer) finish() string {
	if a.tool != "" {
		return "tool_calls"
	}
	return "stop"
}

func (a *chatAnswer) json() string {
	msg := `{"role":"assistant","content":` + strconv.Quote(a.text)
	if a.tool != "" {
		msg = `{"role":"assistant","content":null,"tool_calls":[{` + a.idField() + `"type":"function","function":{"name":` +
			strconv.Quote(a.tool) + `,"arguments":` + strconv.Quote(a.args) + `}}]`
	}
	if a.reasoning != "" {
		msg += `,"reasoning_content":` + strconv.Quote(a.reasoning)
	}
	return fmt.Sprintf(`{"id":"chatcmpl-fake01","object":"chat.completion","created":1767225600,"model":%q,"choices":[{"index":0,"message":%s},"finish_reason":%q}],"usage":%s}`,
		a.model, msg, a.finish(), ChatCompatUsage)
}

func (a *chatAnswer) idField() string {
	if a.callID == "" {
		return ""
	}
	return `"id":` + strconv.Quote(a.callID) + `,`
}

// stream is the answer as chat.completion.chunk events: the role chunk,
// reasoning, content or the tool call (its arguments in two pieces), the
// finish chunk, the usage chunk when usage, then [DONE].
func (a *chatAnswer) stream(usage bool) []Event {
	chunk := func(delta, finish string) Event {
		f := "null"
		if finish != "" {
			f = strconv.Quote(finish)
		}
		return Event{Data: fmt.Sprintf(`{"id":"chatcmpl-fake01","object":"chat.completion.chunk","created":1767225600,"model":%q,"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}`, a.model, delta, f)}
	}
	evs := []Event{chunk(`{"role":"assistant","content":""}`, "")}
	if a.reasoning != "" {
		for _, part := range split(a.reasoning, 2) {
			evs = append(evs, chunk(`{"reasoning_content":`+strconv.Quote(part)+`}`, ""))
		}
	}
	if a.tool != "" {
		half := len(a.args) / 2
		evs = append(evs,
			chunk(`{"tool_calls":[{"index":0,`+a.idField()+`"type":"function","function":{"name":`+strconv.Quote(a.tool)+`,"arguments":`+strconv.Quote(a.args[:half])+`}}]}`, ""),
			chunk(`{"tool_calls":[{"index":0,"function":{"arguments":`+strconv.Quote(a.args[half:])+`}}]}`, ""))
	} else {
		for _, part := range split(a.text, 3) {
			evs = append(evs, chunk(`{"content":`+strconv.Quote(part)+`}`, ""))
		}
	}
	evs = append(evs, chunk(`{}`, a.finish()))
	if usage {
		evs = append(evs, Event{Data: fmt.Sprintf(`{"id":"chatcmpl-fake01","object":"chat.completion.chunk","created":1767225600,"model":%q,"choices":[],"usage":%s}`, a.model, ChatCompatUsage)})
	}
	return append(evs, Event{Data: "[DONE]"})
}
