package convert

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/tidwall/gjson"
)

// TestStreamReadersCopyWhatTheyKeep checks that the readers, which read a
// delta event in place, copy the text they keep: the SSE parser reuses its
// buffer for the next event, so an Event must not point into data.
func TestStreamReadersCopyWhatTheyKeep(t *testing.T) {
	tests := []struct {
		name   string
		reader func() StreamReader
		setup  [][2]string
		event  [2]string
		want   Event
	}{
		{"messages text", NewMessagesStreamReader, messagesSetup(),
			[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"plain text"}}`},
			Event{Kind: EventDelta, Index: 0, Delta: "plain text"}},
		{"messages escaped text", NewMessagesStreamReader, messagesSetup(),
			[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\nb \u00e9"}}`},
			Event{Kind: EventDelta, Index: 0, Delta: "a\nb é"}},
		{"messages signature", NewMessagesStreamReader, messagesSetup(),
			[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBsig"}}`},
			Event{Kind: EventSignature, Index: 0, Sig: Signature{Origin: OriginAnthropic, Value: "EqQBsig"}}},
		{"messages escaped key (read with gjson)", NewMessagesStreamReader, messagesSetup(),
			[2]string{"content_block_delta", `{"type":"content_block_delta","in\u0064ex":0,"delta":{"type":"text_delta","te\u0078t":"plain text"}}`},
			Event{Kind: EventDelta, Index: 0, Delta: "plain text"}},
		{"messages duplicate members: the first counts", NewMessagesStreamReader, messagesSetup(),
			[2]string{"content_block_delta", `{"index":0,"delta":{"type":"text_delta","text":"first","text":"second"},"index":1,"delta":{}}`},
			Event{Kind: EventDelta, Index: 0, Delta: "first"}},
		{"responses text", NewResponsesStreamReader, responsesSetup(),
			[2]string{"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"plain text","logprobs":[]}`},
			Event{Kind: EventDelta, Index: 0, Delta: "plain text"}},
		{"responses escaped text", NewResponsesStreamReader, responsesSetup(),
			[2]string{"response.output_text.delta", `{"type":"response.output_text.delta","output_index":0,"delta":"a\"b"}`},
			Event{Kind: EventDelta, Index: 0, Delta: `a"b`}},
		{"responses escaped key (read with gjson)", NewResponsesStreamReader, responsesSetup(),
			[2]string{"response.output_text.delta", `{"type":"response.output_text.delta","output_index":0,"d\u0065lta":"plain text"}`},
			Event{Kind: EventDelta, Index: 0, Delta: "plain text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.reader()
			for _, ev := range tt.setup {
				r.Read(nil, []byte(ev[0]), []byte(ev[1]))
			}
			data := []byte(tt.event[1])
			evs := r.Read(nil, []byte(tt.event[0]), data)
			copy(data, bytes.Repeat([]byte{'X'}, len(data))) // the parser's next event
			if len(evs) != 1 || !reflect.DeepEqual(evs[0], tt.want) {
				t.Fatalf("events %+v, want [%+v]", evs, tt.want)
			}
		})
	}
}

func messagesSetup() [][2]string {
	return [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
	}
}

func responsesSetup() [][2]string {
	return [][2]string{
		{"response.created", `{"type":"response.created","response":{"id":"resp_1","model":"gpt-5"}}`},
		{"response.output_item.added", `{"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_1","role":"assistant","content":[]}}`},
	}
}

// FuzzDeltaScan checks that the readers' member scan of a delta event
// reads what gjson reads from it, for any valid JSON event.
func FuzzDeltaScan(f *testing.F) {
	f.Add([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\nb"}}`))
	f.Add([]byte(`{"index":0,"delta":{"type":"signature_delta","signature":"EqQB"},"index":1}`))
	f.Add([]byte(`{"type":"response.output_text.delta","output_index":0,"delta":"x\u00e9","logprobs":[]}`))
	f.Add([]byte(`{"output_index":"0","delta":5,"d\u0065lta":"y"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !gjson.ValidBytes(data) {
			return
		}
		m := &messagesStreamReader{open: true}
		got := m.blockDelta(nil, data)
		want := m.blockDeltaGJSON(nil, data)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("messages: scan %+v, gjson %+v", got, want)
		}
		r := &responsesStreamReader{cur: &readerItem{kind: PartText}}
		got = r.delta(nil, data, "")
		want = nil
		if gjson.GetBytes(data, "output_index").Int() == 0 {
			if text := gjson.GetBytes(data, "delta").String(); text != "" {
				want = []Event{{Kind: EventDelta, Delta: text}}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("responses: scan %+v, gjson %+v", got, want)
		}
	})
}
