package convert

import (
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file writes Events as a client's Responses SSE stream, event for
// event as the API sends it ("event: response.x\ndata: {...}\n\n", a
// sequence_number on each, no [DONE]): response.created and
// response.in_progress; per part output_item.added, its content events and
// output_item.done; then response.completed carrying every item and the
// usage. StopMax is status "incomplete" with incomplete_details in that
// response.completed event, not the API's response.incomplete event: Codex
// CLI knows no response.incomplete and fails a stream that ends without
// response.completed ("stream closed before response.completed"), retrying
// the whole turn; openai-go reads either. A text
// part is a message item (content_part.added, output_text.delta/.done,
// content_part.done), a tool call a function_call item
// (function_call_arguments.delta/.done) or a custom_tool_call item
// (custom_tool_call_input.delta/.done), thinking a reasoning item with one
// summary part (reasoning_summary_part.added, reasoning_summary_text
// .delta/.done, reasoning_summary_part.done) whose done item carries the
// encrypted_content the client sends back (see WriteResponses). EventError
// is response.failed with an error object.

// responsesStreamWriter keeps one client stream's state.
type responsesStreamWriter struct {
	model, base, id string
	created         int64
	seq             int64
	started, ended  bool
	// n is the next output_index.
	n   int
	cur *writerItem
	// items are the done output items, encoded: response.completed
	// carries them again.
	items [][]byte
	usage provider.Usage
	// scratch holds an in-progress item while it is written.
	scratch []byte
}

// writerItem is the output item being written.
type writerItem struct {
	kind        PartKind
	custom      bool
	id          string
	outIdx      int
	callID      string
	name        string
	text        strings.Builder
	sig         Signature
	redacted    bool
	summaryOpen bool
}

// NewResponsesStreamWriter returns a writer of one client Responses stream
// that reports model.
func NewResponsesStreamWriter(model string) StreamWriter {
	return &responsesStreamWriter{model: model}
}

// Write implements StreamWriter.
func (w *responsesStreamWriter) Write(dst []byte, ev *Event) []byte {
	if w.ended {
		return dst
	}
	if !w.started {
		dst = w.start(dst, ev)
	}
	switch ev.Kind {
	case EventStart:
		w.usage.Merge(ev.Usage)
	case EventPartStart:
		dst = w.closeItem(dst)
		dst = w.openItem(dst, ev.Part)
	case EventDelta:
		dst = w.delta(dst, ev.Delta)
	case EventSignature:
		if w.cur != nil && w.cur.kind == PartThinking {
			w.cur.sig = ev.Sig
		}
	case EventPartStop:
		dst = w.closeItem(dst)
	case EventFinish:
		dst = w.closeItem(dst)
		w.usage.Merge(ev.Usage)
		obj := w.object()
		obj.finish(ev.Stop, w.usage, ev.ReasoningTokens)
		w.ended = true
		return w.withResponse(dst, "response.completed", obj)
	case EventError:
		dst = w.closeItem(dst)
		obj := w.object()
		obj.Status = "failed"
		obj.Error = &responsesError{Code: openAIErrorCode(ev.ErrType), Message: ev.Delta}
		w.ended = true
		return w.withResponse(dst, "response.failed", obj)
	}
	return dst
}

// Finish implements StreamWriter: a Responses stream has no terminator
// after its last event.
func (w *responsesStreamWriter) Finish(dst []byte) []byte { return dst }

// start writes response.created and response.in_progress, once: a stream
// retried on another account keeps the first preamble.
func (w *responsesStreamWriter) start(dst []byte, ev *Event) []byte {
	w.started = true
	w.base = responsesBase(ev.ID)
	if ev.Kind != EventStart {
		w.base = responsesBase("")
	}
	w.id = "resp_" + w.base
	w.created = time.Now().Unix()
	// Both events carry the same object: encoded once.
	obj := appendResponsesObject(make([]byte, 0, responsesObjectSize), w.object(), w.items)
	dst = w.withResponseJSON(dst, "response.created", obj)
	return w.withResponseJSON(dst, "response.in_progress", obj)
}

// responsesObjectSize is room for an encoded response object without its
// output (about 600 bytes with a long model name).
const responsesObjectSize = 1024

// object is the response object with no output: the encoders take
// w.items as its output.
func (w *responsesStreamWriter) object() *responsesObject {
	return newResponsesObject(w.id, w.model, w.created)
}

// head opens an event: its name line and data up to the sequence number.
func (w *responsesStreamWriter) head(dst []byte, name string) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata: {\"type\":\""...)
	dst = append(dst, name...)
	dst = append(dst, "\",\"sequence_number\":"...)
	dst = appendInt(dst, w.seq)
	w.seq++
	return dst
}

// withResponse writes an event carrying obj, with w.items as its output.
func (w *responsesStreamWriter) withResponse(dst []byte, name string, obj *responsesObject) []byte {
	dst = w.head(dst, name)
	dst = append(dst, `,"response":`...)
	dst = appendResponsesObject(dst, obj, w.items)
	return append(dst, "}\n\n"...)
}

// withResponseJSON writes an event carrying the encoded response object.
func (w *responsesStreamWriter) withResponseJSON(dst []byte, name string, obj []byte) []byte {
	dst = w.head(dst, name)
	dst = append(dst, `,"response":`...)
	dst = append(dst, obj...)
	return append(dst, "}\n\n"...)
}

// itemEvent writes output_item.added or .done for item.
func (w *responsesStreamWriter) itemEvent(dst []byte, name string, outIdx int, item []byte) []byte {
	dst = w.head(dst, name)
	dst = append(dst, `,"output_index":`...)
	dst = appendInt(dst, int64(outIdx))
	dst = append(dst, `,"item":`...)
	dst = append(dst, item...)
	return append(dst, "}\n\n"...)
}

// partEvent writes an event about the current item: item_id, output_index,
// pre verbatim, the member key with the JSON string val (when key is not
// ""), post verbatim. Deltas go through here, so it appends in place.
func (w *responsesStreamWriter) partEvent(dst []byte, name, pre, key, val, post string) []byte {
	dst = w.head(dst, name)
	dst = append(dst, `,"item_id":`...)
	dst = appendString(dst, w.cur.id)
	dst = append(dst, `,"output_index":`...)
	dst = appendInt(dst, int64(w.cur.outIdx))
	dst = append(dst, pre...)
	if key != "" {
		dst = append(dst, `,"`...)
		dst = append(dst, key...)
		dst = append(dst, `":`...)
		dst = appendString(dst, val)
	}
	dst = append(dst, post...)
	return append(dst, "}\n\n"...)
}

func (w *responsesStreamWriter) openItem(dst []byte, p Part) []byte {
	c := &writerItem{kind: p.Kind, custom: p.Custom, outIdx: w.n, callID: p.CallID, name: p.Name, sig: p.Sig, redacted: p.Redacted}
	switch p.Kind {
	case PartText:
		c.id = itemID("msg_", w.base, w.n)
	case PartToolCall:
		c.id = itemID("fc_", w.base, w.n)
		if p.Custom {
			c.id = itemID("ctc_", w.base, w.n)
		}
	case PartThinking:
		c.id = itemID("rs_", w.base, w.n)
	default:
		return dst // no item for other kinds; their deltas are dropped
	}
	w.n++
	w.cur = c
	w.scratch = appendOutputItem(w.scratch[:0], c.item("in_progress"))
	dst = w.itemEvent(dst, "response.output_item.added", c.outIdx, w.scratch)
	if p.Kind == PartText {
		dst = w.partEvent(dst, "response.content_part.added", `,"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}`, "", "", "")
	}
	return dst
}

func (w *responsesStreamWriter) delta(dst []byte, text string) []byte {
	c := w.cur
	if c == nil || text == "" {
		return dst
	}
	c.text.WriteString(text)
	switch {
	case c.kind == PartText:
		return w.partEvent(dst, "response.output_text.delta", `,"content_index":0`, "delta", text, `,"logprobs":[]`)
	case c.kind == PartToolCall && c.custom:
		return w.partEvent(dst, "response.custom_tool_call_input.delta", "", "delta", text, "")
	case c.kind == PartToolCall:
		return w.partEvent(dst, "response.function_call_arguments.delta", "", "delta", text, "")
	}
	if !c.summaryOpen {
		c.summaryOpen = true
		dst = w.partEvent(dst, "response.reasoning_summary_part.added", `,"summary_index":0,"part":{"type":"summary_text","text":""}`, "", "", "")
	}
	return w.partEvent(dst, "response.reasoning_summary_text.delta", `,"summary_index":0`, "delta", text, "")
}

// closeItem writes the open item's done events.
func (w *responsesStreamWriter) closeItem(dst []byte) []byte {
	c := w.cur
	if c == nil {
		return dst
	}
	text := c.text.String()
	switch {
	case c.kind == PartText:
		dst = w.partEvent(dst, "response.output_text.done", `,"content_index":0`, "text", text, `,"logprobs":[]`)
		dst = w.partEvent(dst, "response.content_part.done", `,"content_index":0,"part":{"type":"output_text"`, "text", text, `,"annotations":[],"logprobs":[]}`)
	case c.kind == PartToolCall && c.custom:
		dst = w.partEvent(dst, "response.custom_tool_call_input.done", "", "input", text, "")
	case c.kind == PartToolCall:
		_, name := splitNamespace(c.name)
		dst = w.partEvent(dst, "response.function_call_arguments.done", string(appendString([]byte(`,"name":`), name)), "arguments", argsOrEmpty(text), "")
	case c.summaryOpen:
		dst = w.partEvent(dst, "response.reasoning_summary_text.done", `,"summary_index":0`, "text", text, "")
		dst = w.partEvent(dst, "response.reasoning_summary_part.done", `,"summary_index":0,"part":{"type":"summary_text"`, "text", text, "}")
	}
	// Room for the item around its text: one allocation.
	item := appendOutputItem(make([]byte, 0, c.text.Len()+len(c.id)+len(c.callID)+len(c.name)+256), c.item("completed"))
	w.items = append(w.items, item)
	w.cur = nil
	return w.itemEvent(dst, "response.output_item.done", c.outIdx, item)
}

// item is the output item in status ("in_progress" with no content yet, or
// "completed").
func (c *writerItem) item(status string) any {
	text := ""
	if status == "completed" {
		text = c.text.String()
	}
	switch {
	case c.kind == PartText:
		return messageItem(c.id, text, status)
	case c.kind == PartToolCall:
		return callItem(c.custom, c.id, c.id, status, c.callID, c.name, text)
	}
	if status != "completed" {
		return responsesReasoningOut{Type: "reasoning", ID: c.id, Summary: []responsesSummary{}}
	}
	return reasoningItem(c.id, text, c.sig, c.redacted)
}

// openAIErrorCode maps an upstream's error type onto the codes OpenAI
// streams carry (and Codex branches on).
func openAIErrorCode(errType string) string {
	switch errType {
	case "", "api_error":
		return "server_error"
	case "overloaded_error":
		return "server_is_overloaded"
	case "rate_limit_error":
		return "rate_limit_exceeded"
	}
	return errType
}
