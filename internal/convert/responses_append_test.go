package convert

import (
	"testing"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// TestResponsesAppendMatchesMarshal checks that the stream writer's
// append-style encoders write exactly what marshal writes for the same
// objects (strings without \b and \f, which encoding/json escapes by name
// and appendString as \u00XX).
func TestResponsesAppendMatchesMarshal(t *testing.T) {
	enc := "gAAAAB<&>state"
	items := []any{
		messageItem("msg_1", "", "in_progress"),
		messageItem("msg_1", "Hello <b> & \"quoted\"\n\ttab \u2028 é \x01", "completed"),
		callItem(false, "fc_1", "fc_1", "in_progress", "call_1", "shell", ""),
		callItem(false, "fc_1", "fc_1", "completed", "call_1", "mcp__fs___read", `{"path":"/a"}`),
		callItem(true, "ctc_1", "ctc_1", "completed", "call_2", "apply_patch", "*** Begin Patch\n"),
		callItem(true, "ctc_1", "ctc_1", "completed", "call_2", "ns___apply_patch", ""),
		responsesReasoningOut{Type: "reasoning", ID: "rs_1", Summary: []responsesSummary{}},
		reasoningItem("rs_1", "thinking about it", Signature{Origin: OriginAnthropic, Value: "EqQB"}, false),
		responsesReasoningOut{Type: "reasoning", ID: "rs_2", Summary: []responsesSummary{{Type: "summary_text", Text: "a"}, {Type: "summary_text", Text: "b"}}, EncryptedContent: &enc},
		// Fallbacks: what the appenders do not write themselves.
		responsesMessageOut{Type: "message", ID: "m", Content: []responsesOutputText{{Type: "output_text", Text: "x", Annotations: []any{"a"}, Logprobs: []any{}}}},
		responsesMessageOut{Type: "message", ID: "m"},
		responsesReasoningOut{Type: "reasoning", ID: "rs_3"},
		map[string]any{"type": "other"},
	}
	var encoded [][]byte
	for i, it := range items {
		want, err := marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		got := appendOutputItem([]byte("prefix"), it)
		if string(got) != "prefix"+string(want) {
			t.Errorf("item %d:\n got: %s\nwant: prefix%s", i, got, want)
		}
		encoded = append(encoded, want)
	}

	effort, summary, ins := "high", "auto", "be brief"
	maxOut := int64(100)
	objects := []*responsesObject{newResponsesObject("resp_1", "gpt-5 \"x\"", 1700000000)}
	done := newResponsesObject("resp_2", "claude-sonnet-4-5", 1700000001)
	done.finish(StopMax, provider.Usage{InputTokens: 3, CacheReadTokens: 5, CacheCreationTokens: 7, OutputTokens: 11}, 2)
	objects = append(objects, done)
	failed := newResponsesObject("resp_3", "m", 0)
	failed.Status = "failed"
	failed.Error = &responsesError{Code: "server_error", Message: "upstream <closed>"}
	failed.Instructions, failed.MaxOutputTokens, failed.PreviousResponseID = &ins, &maxOut, &ins
	failed.Reasoning = responsesReasonOut{Effort: &effort, Summary: &summary}
	failed.Temperature, failed.TopP, failed.Store, failed.Background = 0.7, 1e-7, true, true
	objects = append(objects, failed)
	for i, o := range objects {
		for _, out := range [][][]byte{nil, encoded[:1], encoded[:4]} {
			withOut := *o
			withOut.Output = nil
			for _, b := range out {
				withOut.Output = append(withOut.Output, rawJSON(b))
			}
			if withOut.Output == nil {
				withOut.Output = []any{}
			}
			want, err := marshal(&withOut)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendResponsesObject(nil, o, out); string(got) != string(want) {
				t.Errorf("object %d with %d items:\n got: %s\nwant: %s", i, len(out), got, want)
			}
		}
	}
	// An object the appender does not write itself goes through marshal.
	other := newResponsesObject("resp_4", "m", 0)
	other.Tools = append(other.Tools, map[string]string{"type": "web_search"})
	want, _ := marshal(other)
	if got := appendResponsesObject(nil, other, nil); string(got) != string(want) {
		t.Errorf("object with tools:\n got: %s\nwant: %s", got, want)
	}
}

// rawJSON is encoded JSON that marshal writes as it is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }
