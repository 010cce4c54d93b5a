package fakeupstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
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
