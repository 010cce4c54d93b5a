package fakeupstream

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// CompactSecret is the plaintext the fakes seal into a compaction item's
// encrypted_content (base64 of it and the compacted item count), so a test
// can tell the item the upstream made from one the relay made up.
const CompactSecret = "fake-compaction:"

// compactUsage is the usage of every default compaction answer.
const compactUsage = `{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":150}`

// CompactJSON is the answer of POST {base}/responses/compact to body, in
// the shape OpenAI's compaction endpoint gives (and Codex reads: codex-api
// endpoint/compact.rs takes its "output"): the request's user messages kept
// as they were, then one compaction item whose encrypted_content stands for
// the rest of the history.
func CompactJSON(body []byte) string {
	var b strings.Builder
	b.WriteString(`{"id":"resp_fakecompact01","object":"response.compaction","created_at":1767225600,"output":[`)
	in := gjson.GetBytes(body, "input").Array()
	for _, it := range in {
		// A message may omit its type (the SDKs' "easy" input message).
		if t := it.Get("type").Str; (t == "message" || t == "") && it.Get("role").Str == "user" {
			b.WriteString(userMessageItem(it))
			b.WriteByte(',')
		}
	}
	b.WriteString(compactionItem(body) + `],"usage":` + compactUsage + `}`)
	return b.String()
}

// userMessageItem is a user message of a request as an output item: typed,
// its content a list of parts (a string becomes one input_text part).
func userMessageItem(it gjson.Result) string {
	out := `{"type":"message","role":"user","content":[]}`
	c := it.Get("content")
	if c.Type == gjson.String {
		out, _ = sjson.Set(out, "content.0", map[string]string{"type": "input_text", "text": c.Str})
		return out
	}
	if c.IsArray() {
		out, _ = sjson.SetRaw(out, "content", c.Raw)
	}
	return out
}

// compactionItem is the compaction item for the history in body.
func compactionItem(body []byte) string {
	sealed := base64.StdEncoding.EncodeToString([]byte(CompactSecret + gjson.GetBytes(body, "input.#").String()))
	return `{"type":"compaction","id":"cmp_fake01","encrypted_content":"` + sealed + `"}`
}

// wantsCompaction reports whether a Responses request asks for compaction
// in the stream: Codex's remote compaction v2 (0.169.0: feature
// remote_compaction_v2 "removed", i.e. always on) sends its history to
// POST .../responses with a last input item {"type":"compaction_trigger"}
// and needs exactly one compaction item in the answer's output.
func wantsCompaction(rec *Recorded) bool {
	in := gjson.GetBytes(rec.Body, "input")
	n := in.Get("#").Int()
	return n > 0 && in.Get(fmt.Sprint(n-1)+".type").Str == "compaction_trigger"
}

// CompactionStream is the Responses stream answering a compaction_trigger:
// one compaction output item, then response.completed with usage.
func CompactionStream(model string, body []byte) []Event {
	item := compactionItem(body)
	resp := func(status, output, usage string) string { return responseObject(model, status, output, usage) }
	return []Event{
		{Name: "response.created", Data: `{"type":"response.created","sequence_number":0,"response":` + resp("in_progress", "[]", "null") + `}`},
		{Name: "response.output_item.added", Data: `{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":` + item + `}`},
		{Name: "response.output_item.done", Data: `{"type":"response.output_item.done","sequence_number":2,"output_index":0,"item":` + item + `}`},
		{Name: "response.completed", Data: `{"type":"response.completed","sequence_number":3,"response":` + resp("completed", "["+item+"]", compactUsage) + `}`},
	}
}

// isCompact reports whether rec is a compaction request.
func isCompact(rec *Recorded) bool {
	return rec.Method == "POST" && strings.HasSuffix(rec.Path, "/responses/compact")
}
