package fakeupstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

func TestFastJSON(t *testing.T) {
	srv := httptest.NewServer(NewFast("claude-bench"))
	defer srv.Close()
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(srv.URL), option.WithAPIKey("k"), option.WithMaxRetries(0))
	msg, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-bench", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Model != "claude-bench" || msg.Usage.OutputTokens != 7 || len(msg.Content) != 1 {
		t.Errorf("unexpected answer: %+v", msg)
	}
}

func TestFastStream(t *testing.T) {
	tests := []struct {
		name   string
		events int
		gap    time.Duration
		want   int
	}{
		{"fifty back to back", 50, 0, 50},
		{"spaced", 8, 2 * time.Millisecond, 8},
		{"too few is raised to the minimum", 1, 0, 6},
	}
	srv := httptest.NewServer(NewFast("claude-bench"))
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(srv.URL), option.WithAPIKey("k"), option.WithMaxRetries(0),
				option.WithHeader(HeaderEvents, strconv.Itoa(tt.events)), option.WithHeader(HeaderGap, strconv.FormatInt(tt.gap.Microseconds(), 10)))
			st := c.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
				Model: "claude-bench", MaxTokens: 10,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
			})
			var acc anthropic.Message
			n := 0
			for st.Next() {
				if err := acc.Accumulate(st.Current()); err != nil {
					t.Fatal(err)
				}
				n++
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("got %d events, want %d", n, tt.want)
			}
			if acc.StopReason != anthropic.StopReasonEndTurn || acc.Usage.OutputTokens != 7 {
				t.Errorf("accumulated message: stop %q, usage %+v", acc.StopReason, acc.Usage)
			}
		})
	}
}

func TestFastStamps(t *testing.T) {
	srv := httptest.NewServer(NewFast("claude-bench"))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(`{}`))
	req.Header.Set(HeaderEvents, "10")
	req.Header.Set(HeaderGap, "1000")
	before := time.Now().UnixNano()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixNano()
	events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	if len(events) != 10 {
		t.Fatalf("got %d events:\n%s", len(events), body)
	}
	prev := before
	for i, ev := range events {
		ts, ok := ParseStamp([]byte(ev))
		if !ok {
			t.Fatalf("event %d has no stamp: %q", i, ev)
		}
		if ts < prev || ts > after {
			t.Errorf("event %d stamp %d outside [%d, %d]", i, ts, prev, after)
		}
		// Event i is due i gaps after the handler started, which is after before.
		if due := before + int64(i)*int64(time.Millisecond); ts < due {
			t.Errorf("event %d sent %v before it was due", i, time.Duration(due-ts))
		}
		prev = ts
	}
}

func TestParseStamp(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`data: {"bench_ts":1764000000123456789,"type":"ping"}`, 1764000000123456789, true},
		{`data: {"type":"ping"}`, 0, false},
		{`data: {"bench_ts":17640000001234`, 0, false},
		{`data: {"bench_ts":17640000001234567x9,`, 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseStamp([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseStamp(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBenchFieldRoundTrip(t *testing.T) {
	body := []byte(`{"model":"m","stream":true}`)
	got := WithBenchField(body, 50, 20*time.Millisecond, 3*time.Second)
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("not JSON: %s: %v", got, err)
	}
	if v["model"] != "m" || v["stream"] != true {
		t.Fatalf("request fields lost: %s", got)
	}
	ev, gap, hold, ok := benchSpec(got)
	if !ok || ev != 50 || gap != 20000 || hold != 3 {
		t.Fatalf("benchSpec(%s) = %d %d %d %v", got, ev, gap, hold, ok)
	}
	if _, _, _, ok := benchSpec(body); ok {
		t.Fatal("a body without the field was read as steering")
	}
}

func TestFastResponsesJSON(t *testing.T) {
	srv := httptest.NewServer(NewFast("gpt-bench"))
	defer srv.Close()
	c := openai.NewClient(openaiopt.WithBaseURL(srv.URL+"/v1"), openaiopt.WithAPIKey("k"), openaiopt.WithMaxRetries(0))
	resp, err := c.Responses.New(context.Background(), responses.ResponseNewParams{
		Model: shared.ResponsesModel("gpt-bench"),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "gpt-bench" || resp.OutputText() == "" || resp.Usage.OutputTokens != 9 || resp.Status != "completed" {
		t.Errorf("unexpected answer: model %q, text %q, usage %+v, status %q", resp.Model, resp.OutputText(), resp.Usage, resp.Status)
	}
}

func TestFastResponsesStream(t *testing.T) {
	tests := []struct {
		name   string
		events int
		want   int
	}{
		{"fifty back to back", 50, 50},
		{"too few is raised to the minimum", 1, 9},
	}
	srv := httptest.NewServer(NewFast("gpt-bench"))
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openai.NewClient(openaiopt.WithBaseURL(srv.URL+"/v1"), openaiopt.WithAPIKey("k"), openaiopt.WithMaxRetries(0),
				openaiopt.WithHeader(HeaderEvents, strconv.Itoa(tt.events)))
			st := c.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
				Model: shared.ResponsesModel("gpt-bench"),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			})
			var deltas strings.Builder
			var final responses.Response
			n := 0
			for st.Next() {
				ev := st.Current()
				n++
				switch ev.Type {
				case "response.output_text.delta":
					deltas.WriteString(ev.Delta)
				case "response.completed":
					final = ev.Response
				}
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("got %d events, want %d", n, tt.want)
			}
			if final.Status != "completed" || final.Usage.OutputTokens != 9 || final.OutputText() != deltas.String() {
				t.Errorf("completed response: status %q, usage %+v, text %q (deltas %q)", final.Status, final.Usage, final.OutputText(), deltas.String())
			}
		})
	}
}

// TestFastTextSteer: a body that carries its steering in the text (as a
// converted request does) gets that many text deltas in either API, each
// stamped in its text too, in order.
func TestFastTextSteer(t *testing.T) {
	srv := httptest.NewServer(NewFast("bench"))
	defer srv.Close()
	for _, tt := range []struct {
		path, delta, last string
		head, tail        int
	}{
		{"/v1/messages", "event: content_block_delta\n", "event: message_stop\n", 2, 3},
		{"/v1/responses", "event: response.output_text.delta\n", "event: response.completed\n", 4, 4},
	} {
		t.Run(tt.path, func(t *testing.T) {
			// A long body: the steering is far from the first bytes.
			body := `{"model":"m","input":"` + strings.Repeat("pad ", 20000) + "review this " + TextSteer(12, 500*time.Microsecond, 0) + `","stream":true}`
			before := time.Now().UnixNano()
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			after := time.Now().UnixNano()
			events := strings.Split(strings.TrimSuffix(string(got), "\n\n"), "\n\n")
			if len(events) != tt.head+12+tt.tail || !strings.HasPrefix(events[len(events)-1], tt.last) {
				t.Fatalf("got %d events, last %.40q", len(events), events[len(events)-1])
			}
			prev := before
			for i, ev := range events[tt.head : tt.head+12] {
				if !strings.HasPrefix(ev, tt.delta) {
					t.Fatalf("event %d is not a text delta: %.60q", tt.head+i, ev)
				}
				ts, ok := ParseTextStamp([]byte(ev))
				js, jok := ParseStamp([]byte(ev))
				if !ok || !jok || ts != js {
					t.Fatalf("delta %d: text stamp %d %v, JSON stamp %d %v: %q", i, ts, ok, js, jok, ev)
				}
				if ts < prev || ts > after {
					t.Errorf("delta %d stamp %d outside [%d, %d]", i, ts, prev, after)
				}
				prev = ts
			}
		})
	}
}

// TestFastEventStreamUnchanged: steering by the BenchField or the headers
// keeps the plain delta text (no text stamps), as before the text mode.
func TestFastEventStreamUnchanged(t *testing.T) {
	srv := httptest.NewServer(NewFast("bench"))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/messages", "application/json", bytes.NewReader(WithBenchField([]byte(`{"stream":true}`), 8, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	events := strings.Split(strings.TrimSuffix(string(got), "\n\n"), "\n\n")
	if len(events) != 8 || strings.Contains(string(got), TextStampKey) {
		t.Fatalf("got %d events, text stamps %v:\n%s", len(events), strings.Contains(string(got), TextStampKey), got)
	}
	if !strings.HasSuffix(events[2], `"text":" token"}}`) {
		t.Errorf("delta %q", events[2])
	}
}

func TestScanTextSteer(t *testing.T) {
	steer := TextSteer(44, 20*time.Millisecond, 3*time.Second)
	tests := []struct {
		name  string
		body  string
		found bool
	}{
		{"none", `{"model":"m","input":"hello"}`, false},
		{"in the head", `{"input":"` + steer + `"}`, true},
		{"across a chunk boundary", `{"input":"` + strings.Repeat("x", 32<<10-20) + steer + `"}`, true},
		{"a broken one before the real one", `{"input":"[bench deltas=x ` + steer + `"}`, true},
		{"cut short", `{"input":"[bench deltas=44 gap_us=20`, false},
		{"no deltas", `{"input":"[bench deltas=0 gap_us=0 hold_s=0]"}`, false},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/one byte reads %v", tt.name, oneByte), func(t *testing.T) {
				var rd io.Reader = strings.NewReader(tt.body)
				head := make([]byte, min(96, len(tt.body)))
				_, _ = io.ReadFull(rd, head)
				if oneByte {
					rd = iotest.OneByteReader(rd)
				}
				d, g, h, ok := scanTextSteer(rd, head)
				if ok != tt.found || ok && (d != 44 || g != 20000 || h != 3) {
					t.Errorf("scanTextSteer = %d %d %d %v, want found %v", d, g, h, ok, tt.found)
				}
				if n, _ := rd.Read(make([]byte, 1)); n != 0 {
					t.Error("the body was not read to the end")
				}
			})
		}
	}
}

func TestParseTextStamp(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`data: {"delta":{"type":"text_delta","text":" token@1764000000123456789"}}`, 1764000000123456789, true},
		{`data: {"delta":" token@1764000000123456789 token@1864000000123456789"}`, 1764000000123456789, true},
		{`data: {"delta":" token"}`, 0, false},
		{`data: {"delta":" token@17640000001234"}`, 0, false},
		{`data: {"delta":" token@17640000001234567x9"}`, 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseTextStamp([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseTextStamp(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
