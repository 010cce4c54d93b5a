package fakeupstream

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

// This file is the strict mode of the OpenAI and ChatGPT fakes (OpenAI.Strict)
// and their reasoning + tool call script. With Strict set, a /responses
// request is refused, as the Responses API refuses it, when it carries:
//   - a top-level field the API does not know (400 unknown_parameter);
//   - a reasoning item whose encrypted_content this fake did not issue (400
//     invalid_encrypted_content), or one with an id and no encrypted_content
//     (404: with store:false nothing is kept to look the id up);
//   - a function_call_output / custom_tool_call_output whose call_id matches
//     no call in the input (400);
//   - a call the fake issued together with a reasoning item, sent back
//     without that reasoning item (400): the chain of thought a stateless
//     client must carry from turn to turn;
//   - a tool or tool call name outside ^[a-zA-Z0-9_-]{1,64}$ (400
//     invalid_value / string_above_max_length, CheckOpenAIToolNames).
//
// ReasoningToolCall scripts the answer that starts such a chain.

// responsesFields are the top-level request fields the Responses API
// accepts (client_metadata is Codex's, which the API takes).
var responsesFields = map[string]bool{
	"model": true, "input": true, "instructions": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "max_tool_calls": true, "reasoning": true, "store": true, "stream": true,
	"stream_options": true, "include": true, "previous_response_id": true, "conversation": true,
	"max_output_tokens": true, "temperature": true, "top_p": true, "top_logprobs": true, "text": true,
	"truncation": true, "metadata": true, "user": true, "safety_identifier": true, "prompt_cache_key": true,
	"prompt_cache_retention": true, "service_tier": true, "background": true, "prompt": true,
	"client_metadata": true,
}

// reasoningChains is what a strict fake remembers of the reasoning it
// issued: every encrypted_content value, and the value each issued call
// must come back with.
type reasoningChains struct {
	mu      sync.Mutex
	issued  map[string]bool
	callSig map[string]string
	refused []string
}

// issue records a new encrypted_content issued with the call callID.
func (c *reasoningChains) issue(callID string) string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	enc := "gAAAAB" + base64.RawURLEncoding.EncodeToString(b[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.issued == nil {
		c.issued, c.callSig = map[string]bool{}, map[string]string{}
	}
	c.issued[enc] = true
	c.callSig[callID] = enc
	return enc
}

// Refused returns the messages of the requests strict mode refused so far.
func (c *reasoningChains) Refused() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.refused...)
}

// strictRefusal is why a strict fake refuses a request.
type strictRefusal struct {
	status               int
	message, param, code string
}

// check returns the refusal of a Responses request body, or nil.
func (c *reasoningChains) check(body []byte) *strictRefusal {
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return &strictRefusal{400, "We could not parse the JSON body of your request.", "", ""}
	}
	var bad *strictRefusal
	root.ForEach(func(k, _ gjson.Result) bool {
		if !responsesFields[k.Str] {
			bad = &strictRefusal{400, fmt.Sprintf("Unknown parameter: '%s'.", k.Str), k.Str, "unknown_parameter"}
		}
		return bad == nil
	})
	if bad != nil {
		return bad
	}
	if bad = checkOpenAIToolNames(root); bad != nil {
		return bad
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	present := map[string]bool{}
	calls := map[string]bool{}
	i := 0
	root.Get("input").ForEach(func(_, item gjson.Result) bool {
		bad = c.checkItem(item, fmt.Sprintf("input[%d]", i), present, calls)
		i++
		return bad == nil
	})
	return bad
}

func (c *reasoningChains) checkItem(item gjson.Result, param string, present, calls map[string]bool) *strictRefusal {
	callID := item.Get("call_id").Str
	switch typ := item.Get("type").Str; typ {
	case "reasoning":
		enc, id := item.Get("encrypted_content").Str, item.Get("id").Str
		switch {
		case enc == "" && id != "":
			return &strictRefusal{404, fmt.Sprintf("Item with id '%s' not found. Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input.", id), param, ""}
		case enc != "" && !c.issued[enc]:
			return &strictRefusal{400, "The encrypted content for item " + param + " could not be verified.", param + ".encrypted_content", "invalid_encrypted_content"}
		}
		present[enc] = true
	case "function_call", "custom_tool_call":
		calls[callID] = true
		if enc, ok := c.callSig[callID]; ok && !present[enc] {
			return &strictRefusal{400, fmt.Sprintf("Item '%s' of type '%s' was provided without its required 'reasoning' item.", callID, typ), param, ""}
		}
	case "function_call_output", "custom_tool_call_output":
		if !calls[callID] {
			return &strictRefusal{400, fmt.Sprintf("No tool call found for function call output with call_id %s.", callID), param, ""}
		}
	}
	return nil
}

// errorShape is the error body shape of a fake: OpenAI's {"error": {...}}
// or the ChatGPT backend's {"detail": "..."}.
type errorShape uint8

const (
	openAIErrorShape errorShape = iota
	detailErrorShape
)

// strictReply is the reply strict mode (on) gives rec, or nil to serve it.
func (c *reasoningChains) strictReply(rec *Recorded, on bool, shape errorShape) *Reply {
	if !on || rec.Method != http.MethodPost || !strings.HasSuffix(rec.Path, "/responses") {
		return nil
	}
	bad := c.check(rec.Body)
	if bad == nil {
		return nil
	}
	c.mu.Lock()
	c.refused = append(c.refused, bad.message)
	c.mu.Unlock()
	if shape == detailErrorShape {
		return &Reply{Status: bad.status, Body: fmt.Sprintf(`{"detail":%q}`, bad.message)}
	}
	return &Reply{Status: bad.status, Body: OpenAIError(bad.message, "invalid_request_error", bad.param, bad.code)}
}

// ReasoningToolCall is a scripted answer to rec: a reasoning item whose
// encrypted_content the fake issues (and, in strict mode, then requires back
// with the call) followed by a function call of name with args (JSON text),
// as JSON or as the Responses SSE stream, as rec asked.
func (c *reasoningChains) ReasoningToolCall(rec *Recorded, callID, name, args string) *Reply {
	enc := c.issue(callID)
	model := gjson.GetBytes(rec.Body, "model").Str
	summary := "**Planning the call**\n\nI will call " + name + "."
	done := reasoningItem(enc, summary)
	fc := functionCallItem(callID, name, args, "completed")
	final := responseObject(model, "completed", "["+done+","+fc+"]", responsesUsage)
	if !gjson.GetBytes(rec.Body, "stream").Bool() {
		return &Reply{Body: final}
	}
	seq := 0
	ev := func(typ, format string, a ...any) Event {
		data := fmt.Sprintf(`{"type":%q,"sequence_number":%d,`, typ, seq) + fmt.Sprintf(format, a...) + "}"
		seq++
		return Event{Name: typ, Data: data}
	}
	out := []Event{
		ev("response.created", `"response":%s`, responseObject(model, "in_progress", "[]", "null")),
		ev("response.in_progress", `"response":%s`, responseObject(model, "in_progress", "[]", "null")),
		ev("response.output_item.added", `"output_index":0,"item":{"id":"rs_fake01","type":"reasoning","summary":[]}`),
		ev("response.reasoning_summary_part.added", `"item_id":"rs_fake01","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}`),
	}
	for _, part := range split(summary, 2) {
		out = append(out, ev("response.reasoning_summary_text.delta", `"item_id":"rs_fake01","output_index":0,"summary_index":0,"delta":%q`, part))
	}
	out = append(out,
		ev("response.reasoning_summary_text.done", `"item_id":"rs_fake01","output_index":0,"summary_index":0,"text":%q`, summary),
		ev("response.reasoning_summary_part.done", `"item_id":"rs_fake01","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":%q}`, summary),
		ev("response.output_item.done", `"output_index":0,"item":%s`, done),
	)
	out = append(out, ev("response.output_item.added", `"output_index":1,"item":%s`, functionCallItem(callID, name, "", "in_progress")))
	for _, part := range split(args, 2) {
		out = append(out, ev("response.function_call_arguments.delta", `"item_id":"fc_fake01","output_index":1,"delta":%q`, part))
	}
	out = append(out,
		ev("response.function_call_arguments.done", `"item_id":"fc_fake01","output_index":1,"arguments":%q`, args),
		ev("response.output_item.done", `"output_index":1,"item":%s`, fc),
		ev("response.completed", `"response":%s`, final),
	)
	return &Reply{Events: out}
}

func reasoningItem(enc, summary string) string {
	return fmt.Sprintf(`{"id":"rs_fake01","type":"reasoning","summary":[{"type":"summary_text","text":%q}],"encrypted_content":%q}`, summary, enc)
}

// openAINameMax is the longest function name OpenAI takes.
const openAINameMax = 64

// OpenAIStrictError is a refusal of the strict OpenAI fake: Message as the
// API writes it, Param the offending field ("tools[0].name"), Code its code.
type OpenAIStrictError struct{ Message, Param, Code string }

// Error returns the message.
func (e *OpenAIStrictError) Error() string { return e.Message }

// CheckOpenAIToolNames returns the refusal OpenAI answers a Responses or
// Chat Completions body (Chat when it has "messages") with when a tool's
// name, or a tool call's name in the history, breaks its rule
// (^[a-zA-Z0-9_-]+$, at most 64 characters), or nil. Tests of converters
// call it directly on Chat bodies; the strict Responses fake applies it.
func CheckOpenAIToolNames(body []byte) error {
	if bad := checkOpenAIToolNames(gjson.ParseBytes(body)); bad != nil {
		return &OpenAIStrictError{Message: bad.message, Param: bad.param, Code: bad.code}
	}
	return nil
}

func checkOpenAIToolNames(root gjson.Result) *strictRefusal {
	chat := root.Get("messages").Exists()
	var bad *strictRefusal
	root.Get("tools").ForEach(func(i, t gjson.Result) bool {
		if chat {
			bad = checkOpenAIName(fmt.Sprintf("tools[%d].function.name", i.Int()), t.Get("function.name"))
		} else if typ := t.Get("type").Str; typ == "function" || typ == "custom" {
			bad = checkOpenAIName(fmt.Sprintf("tools[%d].name", i.Int()), t.Get("name"))
		}
		return bad == nil
	})
	if bad != nil {
		return bad
	}
	if chat {
		root.Get("messages").ForEach(func(i, m gjson.Result) bool {
			m.Get("tool_calls").ForEach(func(j, tc gjson.Result) bool {
				bad = checkOpenAIName(fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i.Int(), j.Int()), tc.Get("function.name"))
				return bad == nil
			})
			return bad == nil
		})
		return bad
	}
	root.Get("input").ForEach(func(i, item gjson.Result) bool {
		if typ := item.Get("type").Str; typ == "function_call" || typ == "custom_tool_call" {
			bad = checkOpenAIName(fmt.Sprintf("input[%d].name", i.Int()), item.Get("name"))
		}
		return bad == nil
	})
	return bad
}

// checkOpenAIName is OpenAI's refusal of the name at param, or nil.
func checkOpenAIName(param string, name gjson.Result) *strictRefusal {
	switch n := len(name.Str); {
	case n == 0:
		return &strictRefusal{400, fmt.Sprintf("Invalid '%s': empty string. Expected a string with minimum length 1, but got an empty string instead.", param), param, "empty_string"}
	case n > openAINameMax:
		return &strictRefusal{400, fmt.Sprintf("Invalid '%s': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", param, openAINameMax, n), param, "string_above_max_length"}
	case !validToolID(name.Str):
		return &strictRefusal{400, fmt.Sprintf("Invalid '%s': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", param), param, "invalid_value"}
	}
	return nil
}
