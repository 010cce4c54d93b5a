package fakeupstream

import (
	"encoding/base64"
	"strings"

	"github.com/tidwall/gjson"
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
		if it.Get("type").Str == "message" && it.Get("role").Str == "user" {
			b.WriteString(it.Raw)
			b.WriteByte(',')
		}
	}
	sealed := base64.StdEncoding.EncodeToString([]byte(CompactSecret + gjson.GetBytes(body, "input.#").String()))
	b.WriteString(`{"type":"compaction","id":"cmp_fake01","encrypted_content":"` + sealed + `"}],"usage":` + compactUsage + `}`)
	return b.String()
}

// isCompact reports whether rec is a compaction request.
func isCompact(rec *Recorded) bool {
	return rec.Method == "POST" && strings.HasSuffix(rec.Path, "/responses/compact")
}
