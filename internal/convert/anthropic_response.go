package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// ParseMessages reads an upstream Anthropic Messages answer (a whole,
// non-stream body) into the neutral form. An error body ({"type":"error"})
// or a body that is not a message is an error.
//
// text, thinking (Sig origin OriginAnthropic), redacted_thinking
// (Redacted, Sig.Value its data) and tool_use blocks are read; server-tool
// blocks (server_tool_use, web_search_tool_result and the other
// "*_tool_result" blocks, mcp_tool_use) and citations have no neutral form
// and are dropped. A tool_use's input is the call's Args as compact JSON;
// which calls were of custom tools the answer cannot say (see
// UncustomCalls).
func ParseMessages(body []byte) (*Response, error) {
	if !json.Valid(body) {
		return nil, errors.New("parse messages response: body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errors.New("parse messages response: body is not a JSON object")
	}
	if root.Get("type").Str == "error" {
		return nil, fmt.Errorf("parse messages response: upstream error %s: %s",
			root.Get("error.type").String(), root.Get("error.message").String())
	}
	content := root.Get("content")
	if !content.IsArray() {
		return nil, errors.New("parse messages response: no content array")
	}
	resp := &Response{
		ID:           root.Get("id").String(),
		Model:        root.Get("model").String(),
		Stop:         stopReason(root.Get("stop_reason").String()),
		StopSequence: root.Get("stop_sequence").String(),
		Usage:        readUsage(root.Get("usage")),
	}
	content.ForEach(func(_, b gjson.Result) bool {
		if p, ok := parseMessagesBlock(b); ok {
			resp.Parts = append(resp.Parts, p)
		}
		return true
	})
	return resp, nil
}

func parseMessagesBlock(b gjson.Result) (Part, bool) {
	switch b.Get("type").Str {
	case "text":
		return Part{Kind: PartText, Text: b.Get("text").String()}, true
	case "thinking":
		p := Part{Kind: PartThinking, Text: b.Get("thinking").String()}
		if s := b.Get("signature").String(); s != "" {
			p.Sig = Signature{Origin: OriginAnthropic, Value: s}
		}
		return p, true
	case "redacted_thinking":
		return Part{Kind: PartThinking, Redacted: true, Sig: Signature{Origin: OriginAnthropic, Value: b.Get("data").String()}}, true
	case "tool_use":
		args := "{}"
		if in := b.Get("input"); in.IsObject() {
			var buf bytes.Buffer
			if json.Compact(&buf, []byte(in.Raw)) == nil {
				args = buf.String()
			}
		}
		return Part{Kind: PartToolCall, CallID: b.Get("id").String(), Name: b.Get("name").String(), Args: args}, true
	}
	return Part{}, false
}

// stopReason reads an Anthropic stop_reason. model_context_window_exceeded
// is a length stop; an absent or unknown reason is a normal end.
func stopReason(s string) StopReason {
	switch r := StopReason(s); r {
	case StopEnd, StopMax, StopTool, StopSequence, StopRefusal, StopPause:
		return r
	case "model_context_window_exceeded":
		return StopMax
	}
	return StopEnd
}

// WriteMessages writes resp as the Anthropic Messages answer a client
// expects, reporting model. Its id is resp.ID with a "msg_" prefix (a random
// one when resp has none). Thinking from another provider goes out as a
// thinking block whose signature is WrapSignature(sig, text), so the client
// hands it back on the next turn; Anthropic's own state goes out as it
// came. A custom tool call's raw input is written as {"input": ...}; a call
// whose arguments are not a JSON object gets the input {}.
func WriteMessages(resp *Response, model string) []byte {
	out := make([]byte, 0, 512)
	out = append(out, `{"id":`...)
	out = appendString(out, messageID(resp.ID))
	out = append(out, `,"type":"message","role":"assistant","model":`...)
	out = appendString(out, model)
	out = append(out, `,"content":[`...)
	n := 0
	for i := range resp.Parts {
		b := appendMessagesBlock(nil, &resp.Parts[i])
		if b == nil {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
		n++
	}
	out = append(out, `],"stop_reason":`...)
	stop := resp.Stop
	if stop == "" {
		stop = StopEnd
	}
	out = appendString(out, string(stop))
	out = append(out, `,"stop_sequence":`...)
	if resp.StopSequence != "" {
		out = appendString(out, resp.StopSequence)
	} else {
		out = append(out, "null"...)
	}
	out = append(out, `,"usage":`...)
	out = appendMessagesUsage(out, resp.Usage)
	return append(out, '}')
}

// messageID derives the client's message id from the upstream's.
func messageID(id string) string {
	switch {
	case id == "":
		return randomID("msg_")
	case strings.HasPrefix(id, "msg_"):
		return id
	}
	return "msg_" + id
}

// appendMessagesBlock appends p as a whole content block; nil for a part
// with no block of its own (a tool result in an answer).
func appendMessagesBlock(dst []byte, p *Part) []byte {
	switch p.Kind {
	case PartText:
		dst = append(dst, `{"type":"text","text":`...)
		dst = appendString(dst, p.Text)
		return append(dst, '}')
	case PartThinking:
		if p.Redacted && p.Sig.Origin == OriginAnthropic {
			dst = append(dst, `{"type":"redacted_thinking","data":`...)
			dst = appendString(dst, p.Sig.Value)
			return append(dst, '}')
		}
		dst = append(dst, `{"type":"thinking","thinking":`...)
		dst = appendString(dst, p.Text)
		dst = append(dst, `,"signature":`...)
		dst = appendString(dst, clientSignature(p.Sig, p.Text))
		return append(dst, '}')
	case PartToolCall:
		dst = append(dst, `{"type":"tool_use","id":`...)
		dst = appendString(dst, p.CallID)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, p.Name)
		dst = append(dst, `,"input":`...)
		dst = append(dst, clientToolInput(p.Args, p.Custom)...)
		return append(dst, '}')
	case PartImage:
		// Models do not answer with images today; a client of this dialect
		// reads an image block the way it sends one.
		dst = append(dst, `{"type":"image","source":`...)
		if p.Data != "" {
			dst = append(dst, `{"type":"base64","media_type":`...)
			dst = appendString(dst, p.MediaType)
			dst = append(dst, `,"data":`...)
			dst = appendString(dst, p.Data)
		} else {
			dst = append(dst, `{"type":"url","url":`...)
			dst = appendString(dst, p.URL)
		}
		return append(dst, "}}"...)
	}
	return nil
}

// clientSignature is the signature a Messages client gets for sig: the
// value itself for Anthropic's state, a wrapped one for any other origin.
func clientSignature(sig Signature, text string) string {
	if sig.Origin == OriginAnthropic {
		return sig.Value
	}
	return WrapSignature(sig, text)
}

// clientToolInput is a tool call's input object for a Messages client.
func clientToolInput(args string, custom bool) []byte {
	if custom {
		b := appendString(append([]byte(nil), `{"input":`...), args)
		return append(b, '}')
	}
	s := strings.TrimSpace(args)
	if s == "" || !json.Valid([]byte(s)) || !gjson.Parse(s).IsObject() {
		return []byte("{}")
	}
	return []byte(s)
}

// appendMessagesUsage writes an Anthropic usage object.
func appendMessagesUsage(dst []byte, u provider.Usage) []byte {
	dst = append(dst, `{"input_tokens":`...)
	dst = appendInt(dst, u.InputTokens)
	dst = append(dst, `,"cache_creation_input_tokens":`...)
	dst = appendInt(dst, u.CacheCreationTokens)
	dst = append(dst, `,"cache_read_input_tokens":`...)
	dst = appendInt(dst, u.CacheReadTokens)
	dst = append(dst, `,"output_tokens":`...)
	dst = appendInt(dst, u.OutputTokens)
	return append(dst, '}')
}

// UncustomCalls marks the tool calls of resp that call a custom (freeform)
// tool of tools, and turns their Args from the {"input": ...} object
// EncodeMessages asked Claude for back into the raw input. An Anthropic
// answer cannot say which tools were custom: the relay, which holds the
// request, calls this after ParseMessages (UncustomStream does the same for
// a stream). A call whose input lacks a string "input" keeps its Args as
// they are, marked Custom.
func UncustomCalls(resp *Response, tools []Tool) {
	for i := range resp.Parts {
		p := &resp.Parts[i]
		if p.Kind == PartToolCall && isCustomTool(tools, p.Name) {
			p.Custom = true
			p.Args = customInput(p.Args)
		}
	}
}

func isCustomTool(tools []Tool, name string) bool {
	for i := range tools {
		if tools[i].Custom && tools[i].Name == name {
			return true
		}
	}
	return false
}

// customInput is the raw input inside a custom call's {"input": ...}.
func customInput(args string) string {
	if in := gjson.Get(args, "input"); in.Type == gjson.String {
		return in.Str
	}
	return args
}
