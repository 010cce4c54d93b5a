package fakeupstream

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// OpenAI is a fake OpenAI Responses API (the upstream of openai-responses
// accounts): POST .../responses as JSON or SSE, POST .../responses/compact
// (CompactJSON), GET .../models, errors in OpenAI's {"error":{...}} shape.
type OpenAI struct {
	// Keys are the accepted Bearer tokens; empty = any.
	Keys []string
	// Script, when set, answers each request; nil result = default answer.
	Script func(n int, r *Recorded) *Reply
	// Text is the default answer text.
	Text string
	// StreamEvents is the number of text deltas in a default stream (default 3).
	StreamEvents int
	// EventGap is the default pause between stream events.
	EventGap time.Duration
	// Headers, when set, adds headers to answer n (scripted or default), e.g.
	// rate-limit numbers (see ClaudeQuota, CodexHeaders).
	Headers func(n int) map[string]string
	// Strict refuses what the real API refuses of a converted request
	// (openai_strict.go); ReasoningToolCall scripts a reasoning chain.
	Strict bool

	requestLog
	reasoningChains
}

// ServeHTTP records the request, checks the key and answers it.
func (o *OpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	n := o.add(rec)
	if len(o.Keys) > 0 {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		valid := false
		for _, k := range o.Keys {
			valid = valid || (ok && k == key)
		}
		if !valid {
			WriteReply(w, r, &Reply{Status: 401, Body: OpenAIError("Incorrect API key provided.", "invalid_request_error", "", "invalid_api_key")})
			return
		}
	}
	if rep := o.strictReply(rec, o.Strict, openAIErrorShape); rep != nil {
		WriteReply(w, r, rep)
		return
	}
	rep := scripted(o.Script, n, rec, o.defaultReply)
	if o.Headers != nil {
		rep = withHeaders(rep, o.Headers(n))
	}
	WriteReply(w, r, rep)
}

func (o *OpenAI) defaultReply(rec *Recorded) *Reply {
	if rec.Method == http.MethodGet && strings.HasSuffix(rec.Path, "/models") {
		return &Reply{Body: `{"object":"list","data":[{"id":"gpt-fake-1","object":"model","created":1767225600,"owned_by":"fake"}]}`}
	}
	if isCompact(rec) {
		return &Reply{Body: CompactJSON(rec.Body)}
	}
	if isInputTokens(rec) {
		return inputTokensReply(rec)
	}
	if rec.Method != http.MethodPost || !strings.HasSuffix(rec.Path, "/responses") {
		return &Reply{Status: 404, Body: OpenAIError("Invalid URL ("+rec.Method+" "+rec.Path+")", "invalid_request_error", "", "")}
	}
	if wantsCompaction(rec) && gjson.GetBytes(rec.Body, "stream").Bool() {
		return &Reply{Events: CompactionStream(gjson.GetBytes(rec.Body, "model").Str, rec.Body)}
	}
	return defaultAnswer(rec, o.Text, o.StreamEvents, o.EventGap, ResponseStream, ResponseJSON)
}

// Responses usage of every default answer: 20 input tokens of which 8 were
// cached, 9 output.
const responsesUsage = `{"input_tokens":20,"input_tokens_details":{"cached_tokens":8},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":29}`

func responseMessage(text, status string) string {
	content := "[]"
	if status == "completed" {
		content = fmt.Sprintf(`[{"type":"output_text","text":%q,"annotations":[],"logprobs":[]}]`, text)
	}
	return fmt.Sprintf(`{"type":"message","id":"msg_fake01","status":%q,"role":"assistant","content":%s}`, status, content)
}

func responseObject(model, status, output, usage string) string {
	return fmt.Sprintf(`{"id":"resp_fake01","object":"response","created_at":1767225600,"status":%q,"background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":%q,"output":%s,"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":%s,"metadata":{}}`, status, model, output, usage)
}

// ResponseJSON is a complete non-streaming Responses answer.
func ResponseJSON(model, text string) string {
	return responseObject(model, "completed", "["+responseMessage(text, "completed")+"]", responsesUsage)
}

// ResponseStream is a Responses SSE stream, response.created to
// response.completed (with usage), whose text is split into n deltas.
func ResponseStream(model, text string, n int, gap time.Duration) []Event {
	seq := 0
	ev := func(name, format string, args ...any) Event {
		data := fmt.Sprintf(`{"type":%q,"sequence_number":%d,`, name, seq) + fmt.Sprintf(format, args...) + "}"
		seq++
		return Event{Name: name, Data: data}
	}
	out := []Event{
		ev("response.created", `"response":%s`, responseObject(model, "in_progress", "[]", "null")),
		ev("response.in_progress", `"response":%s`, responseObject(model, "in_progress", "[]", "null")),
		ev("response.output_item.added", `"output_index":0,"item":%s`, responseMessage("", "in_progress")),
		ev("response.content_part.added", `"item_id":"msg_fake01","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}`),
	}
	out[2].Delay = gap
	for _, part := range split(text, n) {
		e := ev("response.output_text.delta", `"item_id":"msg_fake01","output_index":0,"content_index":0,"delta":%q,"logprobs":[]`, part)
		e.Delay = gap
		out = append(out, e)
	}
	return append(out,
		ev("response.output_text.done", `"item_id":"msg_fake01","output_index":0,"content_index":0,"text":%q,"logprobs":[]`, text),
		ev("response.content_part.done", `"item_id":"msg_fake01","output_index":0,"content_index":0,"part":{"type":"output_text","text":%q,"annotations":[],"logprobs":[]}`, text),
		ev("response.output_item.done", `"output_index":0,"item":%s`, responseMessage(text, "completed")),
		ev("response.completed", `"response":%s`, responseObject(model, "completed", "["+responseMessage(text, "completed")+"]", responsesUsage)),
	)
}

// ResponseFailedEvent is a response.failed event carrying an error code
// ("server_error", "rate_limit_exceeded", "insufficient_quota"...).
func ResponseFailedEvent(model, code, message string) Event {
	resp := responseObject(model, "failed", "[]", "null")
	resp = strings.Replace(resp, `"error":null`, fmt.Sprintf(`"error":{"code":%q,"message":%q}`, code, message), 1)
	return Event{Name: "response.failed", Data: fmt.Sprintf(`{"type":"response.failed","sequence_number":1,"response":%s}`, resp)}
}

// OpenAIError is an error body in OpenAI's shape; empty param and code are null.
func OpenAIError(message, typ, param, code string) string {
	null := func(s string) string {
		if s == "" {
			return "null"
		}
		return strconv.Quote(s)
	}
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":%s,"code":%s}}`, message, typ, null(param), null(code))
}

// OpenAIRateLimited is the 429 OpenAI sends when a request-rate limit is
// hit: retry-after plus the x-ratelimit-* family. retryAfter is in seconds.
func OpenAIRateLimited(retryAfter int) *Reply {
	return &Reply{
		Status: 429,
		Header: map[string]string{
			"Retry-After":                    strconv.Itoa(retryAfter),
			"X-Ratelimit-Limit-Requests":     "500",
			"X-Ratelimit-Remaining-Requests": "0",
			"X-Ratelimit-Reset-Requests":     strconv.Itoa(retryAfter) + "s",
			"X-Ratelimit-Limit-Tokens":       "30000",
			"X-Ratelimit-Remaining-Tokens":   "29000",
			"X-Ratelimit-Reset-Tokens":       "120ms",
			"X-Request-Id":                   "req_fake_429",
		},
		Body: OpenAIError("Rate limit reached for requests. Please try again in "+strconv.Itoa(retryAfter)+"s.", "requests", "", "rate_limit_exceeded"),
	}
}

// CodexUsageLimit is the 429 the Codex backend sends when a subscription
// window is used up: x-codex-* headers name the window and its reset (unix
// seconds).
func CodexUsageLimit(resetAt time.Time) *Reply {
	reset := strconv.FormatInt(resetAt.Unix(), 10)
	return &Reply{
		Status: 429,
		Header: map[string]string{
			"X-Codex-Primary-Used-Percent":     "100",
			"X-Codex-Primary-Window-Minutes":   "300",
			"X-Codex-Primary-Reset-At":         reset,
			"X-Codex-Secondary-Used-Percent":   "41",
			"X-Codex-Secondary-Window-Minutes": "10080",
			"X-Codex-Secondary-Reset-At":       strconv.FormatInt(resetAt.Add(72*time.Hour).Unix(), 10),
		},
		Body: fmt.Sprintf(`{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":%s}}`, reset),
	}
}

func functionCallItem(callID, name, args, status string) string {
	return fmt.Sprintf(`{"type":"function_call","id":"fc_fake01","status":%q,"arguments":%q,"call_id":%q,"name":%q}`, status, args, callID, name)
}

// ResponseFunctionCallStream is the Responses SSE stream of an answer whose
// output is one function call (args is the arguments' JSON text), as the
// Responses API and the ChatGPT backend send it: the item added with empty arguments, the arguments in two deltas, their
// done event, the item done, and response.completed with usage.
func ResponseFunctionCallStream(model, callID, name, args string) []Event {
	seq := 0
	ev := func(name, format string, a ...any) Event {
		data := fmt.Sprintf(`{"type":%q,"sequence_number":%d,`, name, seq) + fmt.Sprintf(format, a...) + "}"
		seq++
		return Event{Name: name, Data: data}
	}
	out := []Event{
		ev("response.created", `"response":%s`, responseObject(model, "in_progress", "[]", "null")),
		ev("response.in_progress", `"response":%s`, responseObject(model, "in_progress", "[]", "null")),
		ev("response.output_item.added", `"output_index":0,"item":%s`, functionCallItem(callID, name, "", "in_progress")),
	}
	for _, part := range split(args, 2) {
		out = append(out, ev("response.function_call_arguments.delta", `"item_id":"fc_fake01","output_index":0,"delta":%q`, part))
	}
	return append(out,
		ev("response.function_call_arguments.done", `"item_id":"fc_fake01","output_index":0,"arguments":%q`, args),
		ev("response.output_item.done", `"output_index":0,"item":%s`, functionCallItem(callID, name, args, "completed")),
		ev("response.completed", `"response":%s`, responseObject(model, "completed", "["+functionCallItem(callID, name, args, "completed")+"]", responsesUsage)),
	)
}
