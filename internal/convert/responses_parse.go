package convert

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file reads an upstream Responses object (the non-stream answer, and
// the response inside response.completed) into the neutral Response.
//
// Output items: message (output_text parts joined into one text part; a
// refusal part is text and stops with StopRefusal), function_call,
// custom_tool_call (Custom), reasoning (its summaries joined by a blank
// line, else its reasoning_text; encrypted_content is Sig.Value with origin
// openai and the item id). Hosted tool items (web_search_call...) have no
// neutral form and are dropped.

// ErrResponseFailed is what ParseResponses returns for a response whose
// status is "failed"; the error's text carries the upstream's code and
// message.
var ErrResponseFailed = errors.New("upstream response failed")

// ParseResponses reads an upstream Response object.
func ParseResponses(body []byte) (*Response, error) {
	if !gjson.ValidBytes(body) {
		return nil, errors.New("parse responses answer: not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errors.New("parse responses answer: not a JSON object")
	}
	if root.Get("status").Str == "failed" {
		e := root.Get("error")
		return nil, fmt.Errorf("%w: %s: %s", ErrResponseFailed, e.Get("code").String(), e.Get("message").String())
	}
	resp := &Response{ID: root.Get("id").String(), Model: root.Get("model").String()}
	tool, refusal := false, false
	root.Get("output").ForEach(func(_, item gjson.Result) bool {
		p, ok, refused := parseOutputItem(item)
		if ok {
			resp.Parts = append(resp.Parts, p)
			tool = tool || p.Kind == PartToolCall
		}
		refusal = refusal || refused
		return true
	})
	resp.Usage, resp.ReasoningTokens = responsesUsageOf(root.Get("usage"))
	resp.Stop = stopOf(root, tool, refusal)
	return resp, nil
}

// responsesUsageOf reads a Responses usage object with the relay's
// semantics: input_tokens includes the cached ones, InputTokens does not.
func responsesUsageOf(u gjson.Result) (provider.Usage, int64) {
	in := u.Get("input_tokens").Int()
	cached := u.Get("input_tokens_details.cached_tokens").Int()
	if cached > in {
		cached = in
	}
	return provider.Usage{InputTokens: in - cached, CacheReadTokens: cached, OutputTokens: u.Get("output_tokens").Int()},
		u.Get("output_tokens_details.reasoning_tokens").Int()
}

// stopOf maps a final response's status and incomplete_details onto a stop
// reason; tool and refusal report a call and a refusal in its output.
func stopOf(root gjson.Result, tool, refusal bool) StopReason {
	switch {
	case root.Get("status").Str == "incomplete":
		if root.Get("incomplete_details.reason").Str == "content_filter" {
			return StopRefusal
		}
		return StopMax // max_output_tokens, and any reason the API adds
	case tool:
		return StopTool
	case refusal:
		return StopRefusal
	}
	return StopEnd
}

// parseOutputItem turns one output item into a part; ok is false for items
// with no neutral form, refusal reports a refusal content part.
func parseOutputItem(item gjson.Result) (p Part, ok, refusal bool) {
	switch item.Get("type").Str {
	case "message":
		var b strings.Builder
		item.Get("content").ForEach(func(_, c gjson.Result) bool {
			switch c.Get("type").Str {
			case "output_text":
				b.WriteString(c.Get("text").String())
			case "refusal":
				b.WriteString(c.Get("refusal").String())
				refusal = true
			}
			return true
		})
		return Part{Kind: PartText, Text: b.String()}, true, refusal
	case "function_call":
		return Part{Kind: PartToolCall, CallID: item.Get("call_id").String(), Name: callName(item),
			Args: item.Get("arguments").String()}, true, false
	case "custom_tool_call":
		return Part{Kind: PartToolCall, CallID: item.Get("call_id").String(), Name: callName(item),
			Args: item.Get("input").String(), Custom: true}, true, false
	case "reasoning":
		return Part{Kind: PartThinking, Text: reasoningText(item), Sig: openAISig(item)}, true, false
	}
	return Part{}, false, false
}

// openAISig is a reasoning item's state as OpenAI gave it.
func openAISig(item gjson.Result) Signature {
	enc, id := item.Get("encrypted_content").String(), item.Get("id").String()
	if enc == "" && id == "" {
		return Signature{}
	}
	return Signature{Origin: OriginOpenAI, Value: enc, ID: id}
}
