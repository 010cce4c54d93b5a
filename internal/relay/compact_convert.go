package relay

import (
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// Compaction served by an account of another API (a Claude account): the
// history is sent as an ordinary request with an instruction to summarise
// it, and the model's summary comes back in the compaction answer's shape.
// OpenAI's own compaction item is sealed (only OpenAI can read it), so the
// summary travels as text: in a user message, as Codex's local compaction
// builds the compacted history (core/src/compact.rs: the kept user messages,
// then one user message holding the summary).

// summaryInstruction is the request appended to the history. The model
// answers it with text only (no tool may be called).
const summaryInstruction = "The conversation above is about to be compacted: everything before this message will be " +
	"replaced by what you write now. Write a summary that lets the work continue without the history: " +
	"the user's goal and requests, the decisions made and why, the current state (files changed, " +
	"commands run and their results), what remains to be done, and every name, value or constraint " +
	"needed to go on. Answer with the summary only."

// summaryPrefix opens the user message that carries the summary.
const summaryPrefix = "Summary of the conversation so far (the earlier history was compacted):\n\n"

// keptUserBytes bounds the user messages a compaction keeps (the most
// recent ones, about 20k tokens, as Codex's local compaction does).
const keptUserBytes = 80 << 10

// decodeForSummary reads a compaction body as a Responses request asking
// for the summary: no stream, no tool call, the instruction last.
func decodeForSummary(body []byte) (*convert.Request, error) {
	req, err := decodeSummaryRequest(body)
	if req != nil {
		req.Stream = false
	}
	return req, err
}

// decodeSummaryRequest reads a Responses body (a compaction's, or a turn
// ending in Codex's compaction_trigger item, which the decoder drops) as a
// request for the summary: no tool call, the instruction last.
func decodeSummaryRequest(body []byte) (*convert.Request, error) {
	req, err := convert.DecodeResponses(body)
	if err != nil {
		return nil, err
	}
	req.ToolChoice = convert.ToolChoice{Mode: "none"}
	req.PreviousResponseID = ""
	part := convert.Part{Kind: convert.PartText, Text: summaryInstruction}
	if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == convert.RoleUser {
		req.Messages[n-1].Parts = append(req.Messages[n-1].Parts, part)
	} else {
		req.Messages = append(req.Messages, convert.Message{Role: convert.RoleUser, Parts: []convert.Part{part}})
	}
	return req, nil
}

// keptUserMessages are the user messages of a compaction body's input, as
// output items (typed, content a list of parts), the most recent ones
// within keptUserBytes, in order.
func keptUserMessages(body []byte) []string {
	var all []string
	gjson.GetBytes(body, "input").ForEach(func(_, it gjson.Result) bool {
		if t := it.Get("type").Str; (t == "message" || t == "") && it.Get("role").Str == "user" {
			all = append(all, userMessageItem(it.Get("content")))
		}
		return true
	})
	size, from := 0, len(all)
	for from > 0 && size+len(all[from-1]) <= keptUserBytes {
		from--
		size += len(all[from])
	}
	return all[from:]
}

// userMessageItem is a user message item holding content (a string
// becomes one input_text part).
func userMessageItem(content gjson.Result) string {
	out := `{"type":"message","role":"user","content":[]}`
	switch {
	case content.Type == gjson.String:
		out, _ = sjson.Set(out, "content.0", map[string]string{"type": "input_text", "text": content.Str})
	case content.IsArray():
		out, _ = sjson.SetRaw(out, "content", content.Raw)
	}
	return out
}

// summaryText is the text of an answer ("(no summary available)" when the
// model wrote none).
func summaryText(resp *convert.Response) string {
	var b strings.Builder
	for _, p := range resp.Parts {
		if p.Kind == convert.PartText {
			b.WriteString(p.Text)
		}
	}
	if strings.TrimSpace(b.String()) == "" {
		return "(no summary available)"
	}
	return b.String()
}

// compactionAnswer is the body of POST /v1/responses/compact built from a
// summary answer: the kept user messages, then the summary in a user
// message; usage in OpenAI's terms.
func compactionAnswer(kept []string, resp *convert.Response, now time.Time) []byte {
	b := []byte(`{"id":`)
	id := resp.ID
	if id == "" {
		id = strconv.FormatInt(now.UnixNano(), 36)
	}
	b = provider.AppendJSONString(b, "resp_"+strings.TrimPrefix(id, "resp_"))
	b = append(b, `,"object":"response.compaction","created_at":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, `,"output":[`...)
	for _, m := range kept {
		b = append(b, m...)
		b = append(b, ',')
	}
	b = append(b, `{"type":"message","role":"user","content":[{"type":"input_text","text":`...)
	b = provider.AppendJSONString(b, summaryPrefix+summaryText(resp))
	b = append(b, `}]}],"usage":`...)
	b = appendResponsesUsage(b, resp.Usage, resp.ReasoningTokens)
	return append(b, '}')
}

// appendResponsesUsage writes u as a Responses usage object: input_tokens
// counts cache reads and writes, cached_tokens the reads.
func appendResponsesUsage(b []byte, u provider.Usage, reasoning int64) []byte {
	in := u.InputTokens + u.CacheReadTokens + u.CacheCreationTokens
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, in, 10)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.CacheReadTokens, 10)
	b = append(b, `},"output_tokens":`...)
	b = strconv.AppendInt(b, u.OutputTokens, 10)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, reasoning, 10)
	b = append(b, `},"total_tokens":`...)
	b = strconv.AppendInt(b, in+u.OutputTokens, 10)
	return append(b, '}')
}

// compactSide is the client side of a compaction served through
// conversion. kept is taken from the body at once: the body's buffer is
// released while the call runs.
func compactSide(body []byte, now func() time.Time) *clientSide {
	kept := keptUserMessages(body)
	return &clientSide{
		decode: decodeForSummary,
		write: func(resp *convert.Response, _ string) []byte {
			return compactionAnswer(kept, resp, now())
		},
		// The summary is asked without a stream; an upstream that streams
		// anyway is written as a Responses stream.
		newWriter: func(model string, _ *convert.Request) convert.StreamWriter {
			return convert.NewResponsesStreamWriter(model)
		},
	}
}
