package relay

import (
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// Codex 0.169.0 compacts with "remote compaction v2" (its feature
// remote_compaction_v2, always on): the history goes to POST /v1/responses
// (or the WebSocket) with a last input item {"type":"compaction_trigger"},
// and the answer's output must be exactly one compaction item, which
// replaces the history in later turns. OpenAI seals that item; served by an
// account of another API, the relay asks the model for a summary and
// answers with a compaction item whose encrypted_content is the summary
// wrapped (convert.WrapSignature), which convert.DecodeResponses turns back
// into the summary's text in a user turn when Codex sends it again.

// compactionTriggered reports whether a Responses body's input ends with a
// compaction_trigger item.
func compactionTriggered(body []byte) bool {
	in := gjson.GetBytes(body, "input")
	if !in.IsArray() {
		return false
	}
	n := in.Get("#").Int()
	return n > 0 && in.Get(strconv.FormatInt(n-1, 10)+".type").Str == "compaction_trigger"
}

// triggerSide is the client side of a compaction_trigger turn served
// through conversion: the summary asked as the client asked (stream or
// not), answered with one compaction item.
func triggerSide(now func() time.Time) *clientSide {
	return &clientSide{
		decode: decodeSummaryRequest,
		write: func(resp *convert.Response, model string) []byte {
			w := &compactionWriter{model: model, id: resp.ID, created: now().Unix(), usage: resp.Usage}
			return w.object("completed", "["+w.item(summaryText(resp))+"]")
		},
		newWriter: func(model string, _ *convert.Request) convert.StreamWriter {
			return &compactionWriter{model: model, created: now().Unix()}
		},
	}
}

// compactionWriter writes a summary answer as a Responses answer whose
// output is one compaction item: as a stream (response.created, the item
// added and done, response.completed; nothing while the summary is
// written) or whole (object).
type compactionWriter struct {
	model, id      string
	created, seq   int64
	started, ended bool
	// textPart: the part being written is text (thinking is not kept).
	textPart bool
	text     strings.Builder
	usage    provider.Usage
}

// item is the compaction item carrying summary.
func (w *compactionWriter) item(summary string) string {
	enc := convert.WrapSignature(convert.Signature{Origin: convert.OriginAnthropic, ID: "compaction"}, summaryPrefix+summary)
	b := []byte(`{"type":"compaction","id":`)
	b = provider.AppendJSONString(b, "cmp_"+w.respID())
	b = append(b, `,"encrypted_content":`...)
	b = provider.AppendJSONString(b, enc)
	return string(append(b, '}'))
}

func (w *compactionWriter) respID() string {
	if w.id == "" {
		w.id = strconv.FormatInt(w.created, 36)
	}
	return strings.TrimPrefix(w.id, "resp_")
}

// object is the response object with status and output (JSON array).
func (w *compactionWriter) object(status, output string) []byte {
	b := []byte(`{"id":`)
	b = provider.AppendJSONString(b, "resp_"+w.respID())
	b = append(b, `,"object":"response","created_at":`...)
	b = strconv.AppendInt(b, w.created, 10)
	b = append(b, `,"status":`...)
	b = provider.AppendJSONString(b, status)
	b = append(b, `,"model":`...)
	b = provider.AppendJSONString(b, w.model)
	b = append(b, `,"output":`...)
	b = append(b, output...)
	b = append(b, `,"usage":`...)
	if status == "in_progress" {
		b = append(b, "null"...)
	} else {
		b = appendResponsesUsage(b, w.usage, 0)
	}
	return append(b, '}')
}

// event appends one SSE event whose data is {"type":name,"sequence_number":n,<members>}.
func (w *compactionWriter) event(dst []byte, name, members string) []byte {
	dst = append(dst, "event: "+name+"\ndata: {\"type\":\""+name+"\",\"sequence_number\":"...)
	dst = strconv.AppendInt(dst, w.seq, 10)
	w.seq++
	dst = append(dst, ',')
	dst = append(dst, members...)
	return append(dst, "}\n\n"...)
}

// Write implements convert.StreamWriter.
func (w *compactionWriter) Write(dst []byte, ev *convert.Event) []byte {
	if w.ended {
		return dst
	}
	if !w.started {
		w.started = true
		if ev.ID != "" {
			w.id = ev.ID
		}
		dst = w.event(dst, "response.created", `"response":`+string(w.object("in_progress", "[]")))
	}
	switch ev.Kind {
	case convert.EventStart:
		w.usage.Merge(ev.Usage)
	case convert.EventPartStart:
		w.textPart = ev.Part.Kind == convert.PartText
	case convert.EventDelta:
		if w.textPart {
			w.text.WriteString(ev.Delta)
		}
	case convert.EventFinish:
		w.usage.Merge(ev.Usage)
		item := w.item(summaryText(&convert.Response{Parts: []convert.Part{{Kind: convert.PartText, Text: w.text.String()}}}))
		dst = w.event(dst, "response.output_item.added", `"output_index":0,"item":`+item)
		dst = w.event(dst, "response.output_item.done", `"output_index":0,"item":`+item)
		dst = w.event(dst, "response.completed", `"response":`+string(w.object("completed", "["+item+"]")))
		w.ended = true
	case convert.EventError:
		e := []byte(`{"code":`)
		e = provider.AppendJSONString(e, ev.ErrType)
		e = append(e, `,"message":`...)
		e = provider.AppendJSONString(e, ev.Delta)
		failed := strings.Replace(string(w.object("failed", "[]")), `"usage":`, `"error":`+string(e)+`,"usage":`, 1)
		dst = w.event(dst, "response.failed", `"response":`+failed)
		w.ended = true
	}
	return dst
}

// Finish implements convert.StreamWriter: the Responses stream has no
// closing marker.
func (w *compactionWriter) Finish(dst []byte) []byte { return dst }
