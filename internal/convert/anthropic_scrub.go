package convert

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// ScrubMessages makes a Messages request body that passes through to
// Anthropic (the client's own API) safe to send after another provider
// served an earlier turn of the conversation. That turn's reasoning reached
// the client as a thinking block whose signature the relay wrapped
// (WrapSignature); Anthropic refuses a signature it did not issue, so:
//
//   - a thinking or redacted_thinking block with a wrapped signature (or
//     data) is removed, and an assistant turn left empty with it;
//   - when the final assistant turn that needs one (a prefill, or the turn
//     with tool_use) then no longer starts with a thinking block, thinking
//     is turned off, as EncodeMessages does: never a 400 for a signature.
//
// Everything else stays as the client sent it. A body without a wrapped
// value (HasWrappedSignature false) is returned as it is.
func ScrubMessages(body []byte) ([]byte, error) {
	if !HasWrappedSignature(body) {
		return body, nil
	}
	msgs := gjson.GetBytes(body, "messages").Array()
	out := body
	var err error
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Get("role").Str != "assistant" || !msgs[i].Get("content").IsArray() {
			continue
		}
		blocks := msgs[i].Get("content").Array()
		drop := wrappedThinkingBlocks(blocks)
		if len(drop) == 0 {
			continue
		}
		path := "messages." + strconv.Itoa(i)
		if len(drop) == len(blocks) {
			if out, err = sjson.DeleteBytes(out, path); err != nil {
				return nil, fmt.Errorf("scrub messages: %w", err)
			}
			continue
		}
		for k := len(drop) - 1; k >= 0; k-- {
			if out, err = sjson.DeleteBytes(out, path+".content."+strconv.Itoa(drop[k])); err != nil {
				return nil, fmt.Errorf("scrub messages: %w", err)
			}
		}
	}
	if th := gjson.GetBytes(out, "thinking.type").Str; (th == "enabled" || th == "adaptive") && finalTurnLacksThinking(gjson.GetBytes(out, "messages").Array()) {
		if out, err = sjson.DeleteBytes(out, "thinking"); err != nil {
			return nil, fmt.Errorf("scrub messages: %w", err)
		}
	}
	return out, nil
}

// wrappedThinkingBlocks are the indexes, in order, of the thinking blocks
// whose state the relay wrapped.
func wrappedThinkingBlocks(blocks []gjson.Result) []int {
	var out []int
	for j, b := range blocks {
		field := ""
		switch b.Get("type").Str {
		case "thinking":
			field = "signature"
		case "redacted_thinking":
			field = "data"
		default:
			continue
		}
		if _, _, ok := UnwrapSignature(b.Get(field).Str); ok {
			out = append(out, j)
		}
	}
	return out
}

// finalTurnLacksThinking is lacksReplayedThinking for a request body's
// messages.
func finalTurnLacksThinking(msgs []gjson.Result) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Get("role").Str != "assistant" {
			continue
		}
		content := msgs[i].Get("content")
		blocks := content.Array()
		needs := i == len(msgs)-1
		for _, b := range blocks {
			needs = needs || b.Get("type").Str == "tool_use"
		}
		if !needs {
			return false
		}
		return !content.IsArray() || len(blocks) == 0 || !isThinkingBlock(blocks[0].Get("type").Str)
	}
	return false
}
