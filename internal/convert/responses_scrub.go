package convert

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// ScrubResponses makes a Responses request body that passes through to
// OpenAI (the client's own API) safe to send after another provider served
// an earlier turn of the conversation. That turn's state reached the client
// wrapped (WrapSignature) in encrypted_content, which OpenAI refuses as
// content it cannot verify, so:
//
//   - a reasoning item whose encrypted_content is wrapped is removed;
//   - a compaction item whose encrypted_content is wrapped (a summary the
//     relay wrote on another account) becomes a user message with the
//     summary's text, as DecodeResponses reads it.
//
// Everything else stays as the client sent it. A body without a wrapped
// value (HasWrappedSignature false) is returned as it is.
func ScrubResponses(body []byte) ([]byte, error) {
	if !HasWrappedSignature(body) {
		return body, nil
	}
	items := gjson.GetBytes(body, "input")
	if !items.IsArray() {
		return body, nil
	}
	arr := items.Array()
	out := body
	var err error
	for i := len(arr) - 1; i >= 0; i-- {
		_, text, ok := UnwrapSignature(arr[i].Get("encrypted_content").Str)
		if !ok {
			continue
		}
		path := "input." + strconv.Itoa(i)
		switch typ := arr[i].Get("type").Str; {
		case typ == "reasoning" || (typ == "compaction" || typ == "compaction_summary") && text == "":
			out, err = sjson.DeleteBytes(out, path)
		case typ == "compaction" || typ == "compaction_summary":
			msg := map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": text}}}
			out, err = sjson.SetBytes(out, path, msg)
		}
		if err != nil {
			return nil, fmt.Errorf("scrub responses input: %w", err)
		}
	}
	return out, nil
}
