package convert

import (
	"math"
	"strconv"
)

// Append-style encoders of the Responses objects the stream writer sends
// (the response object, its output items), byte for byte what marshal
// writes for them (TestResponsesAppendMatchesMarshal) without encoding/json's
// reflection on every stream.

// appendResponsesObject appends o as marshal would, with output (already
// encoded items) as its output array in place of o.Output, which must be
// empty, as o.Tools must be; otherwise it falls back to marshal.
func appendResponsesObject(dst []byte, o *responsesObject, output [][]byte) []byte {
	if len(o.Output) != 0 || len(o.Tools) != 0 || o.Output == nil || o.Tools == nil {
		b, _ := marshal(o) // plain values only: cannot fail
		return append(dst, b...)
	}
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, o.ID)
	dst = append(dst, `,"object":`...)
	dst = appendString(dst, o.Object)
	dst = append(dst, `,"created_at":`...)
	dst = appendInt(dst, o.CreatedAt)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, o.Status)
	dst = append(dst, `,"background":`...)
	dst = strconv.AppendBool(dst, o.Background)
	dst = append(dst, `,"error":`...)
	if e := o.Error; e != nil {
		dst = append(dst, `{"code":`...)
		dst = appendString(dst, e.Code)
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, e.Message)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"incomplete_details":`...)
	if d := o.IncompleteDetails; d != nil {
		dst = append(dst, `{"reason":`...)
		dst = appendString(dst, d.Reason)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"instructions":`...)
	dst = appendStringPtr(dst, o.Instructions)
	dst = append(dst, `,"max_output_tokens":`...)
	if o.MaxOutputTokens != nil {
		dst = appendInt(dst, *o.MaxOutputTokens)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, o.Model)
	dst = append(dst, `,"output":[`...)
	for i, it := range output {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	dst = append(dst, `],"parallel_tool_calls":`...)
	dst = strconv.AppendBool(dst, o.ParallelToolCalls)
	dst = append(dst, `,"previous_response_id":`...)
	dst = appendStringPtr(dst, o.PreviousResponseID)
	dst = append(dst, `,"reasoning":{"effort":`...)
	dst = appendStringPtr(dst, o.Reasoning.Effort)
	dst = append(dst, `,"summary":`...)
	dst = appendStringPtr(dst, o.Reasoning.Summary)
	dst = append(dst, `},"store":`...)
	dst = strconv.AppendBool(dst, o.Store)
	dst = append(dst, `,"temperature":`...)
	dst = appendFloat(dst, o.Temperature)
	dst = append(dst, `,"text":{"format":{"type":`...)
	dst = appendString(dst, o.Text.Format.Type)
	dst = append(dst, `}},"tool_choice":`...)
	dst = appendString(dst, o.ToolChoice)
	dst = append(dst, `,"tools":[],"top_p":`...)
	dst = appendFloat(dst, o.TopP)
	dst = append(dst, `,"truncation":`...)
	dst = appendString(dst, o.Truncation)
	dst = append(dst, `,"usage":`...)
	if u := o.Usage; u != nil {
		dst = append(dst, `{"input_tokens":`...)
		dst = appendInt(dst, u.InputTokens)
		dst = append(dst, `,"input_tokens_details":{"cached_tokens":`...)
		dst = appendInt(dst, u.InputTokensDetails.CachedTokens)
		dst = append(dst, `},"output_tokens":`...)
		dst = appendInt(dst, u.OutputTokens)
		dst = append(dst, `,"output_tokens_details":{"reasoning_tokens":`...)
		dst = appendInt(dst, u.OutputTokensDetails.ReasoningTokens)
		dst = append(dst, `},"total_tokens":`...)
		dst = appendInt(dst, u.TotalTokens)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, `,"metadata":{}}`...)
}

// appendOutputItem appends one of the output item types of
// responses_write.go as marshal would; other values go through marshal.
func appendOutputItem(dst []byte, item any) []byte {
	switch it := item.(type) {
	case responsesMessageOut:
		if it.Content != nil && emptyLists(it.Content) {
			return appendMessageItem(dst, &it)
		}
	case responsesFunctionOut:
		dst = append(dst, `{"type":`...)
		dst = appendString(dst, it.Type)
		dst = appendMember(dst, "id", it.ID)
		dst = appendMember(dst, "status", it.Status)
		dst = appendMember(dst, "arguments", it.Arguments)
		dst = appendMember(dst, "call_id", it.CallID)
		if it.Namespace != "" {
			dst = appendMember(dst, "namespace", it.Namespace)
		}
		dst = appendMember(dst, "name", it.Name)
		return append(dst, '}')
	case responsesCustomOut:
		dst = append(dst, `{"type":`...)
		dst = appendString(dst, it.Type)
		dst = appendMember(dst, "id", it.ID)
		dst = appendMember(dst, "status", it.Status)
		dst = appendMember(dst, "call_id", it.CallID)
		if it.Namespace != "" {
			dst = appendMember(dst, "namespace", it.Namespace)
		}
		dst = appendMember(dst, "name", it.Name)
		dst = appendMember(dst, "input", it.Input)
		return append(dst, '}')
	case responsesReasoningOut:
		if it.Summary != nil {
			return appendReasoningItem(dst, &it)
		}
	}
	b, _ := marshal(item) // plain values only: cannot fail
	return append(dst, b...)
}

// emptyLists reports whether every content part has empty, non-nil
// annotations and logprobs (what outputText makes).
func emptyLists(content []responsesOutputText) bool {
	for _, c := range content {
		if c.Annotations == nil || c.Logprobs == nil || len(c.Annotations) != 0 || len(c.Logprobs) != 0 {
			return false
		}
	}
	return true
}

func appendMessageItem(dst []byte, it *responsesMessageOut) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, it.Type)
	dst = appendMember(dst, "id", it.ID)
	dst = appendMember(dst, "status", it.Status)
	dst = appendMember(dst, "role", it.Role)
	dst = append(dst, `,"content":[`...)
	for i, c := range it.Content {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"type":`...)
		dst = appendString(dst, c.Type)
		dst = appendMember(dst, "text", c.Text)
		dst = append(dst, `,"annotations":[],"logprobs":[]}`...)
	}
	return append(dst, "]}"...)
}

func appendReasoningItem(dst []byte, it *responsesReasoningOut) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, it.Type)
	dst = appendMember(dst, "id", it.ID)
	dst = append(dst, `,"summary":[`...)
	for i, s := range it.Summary {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"type":`...)
		dst = appendString(dst, s.Type)
		dst = appendMember(dst, "text", s.Text)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if it.EncryptedContent != nil {
		dst = appendMember(dst, "encrypted_content", *it.EncryptedContent)
	}
	return append(dst, '}')
}

// appendMember appends `,"key":` and the JSON string val.
func appendMember(dst []byte, key, val string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendString(dst, val)
}

func appendStringPtr(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return appendString(dst, *s)
}

// appendFloat appends a finite f as encoding/json writes a float64.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
