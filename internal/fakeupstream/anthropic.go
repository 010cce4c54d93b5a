// Package fakeupstream holds loopback stand-ins for the providers' APIs,
// speaking their real wire formats (JSON, SSE flushed event by event, errors
// in each provider's shape). Tests and the benchmark run the relay against them.
package fakeupstream

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Recorded is a request the fake received.
type Recorded struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// Event is one SSE event to send.
type Event struct {
	Name string
	Data string
	// Delay is waited before sending this event.
	Delay time.Duration
}

// Reply scripts one answer.
type Reply struct {
	Status int
	Header map[string]string
	Body   string
	// Events, when set, are sent as an SSE stream (status 200 unless Status set).
	Events []Event
	// CutAfter > 0 drops the connection after that many events (no clean end).
	CutAfter int
	// Stall > 0 waits that long before the first byte of the answer.
	Stall time.Duration
	// Hang blocks after sending the events until the client goes away.
	Hang bool
}

// Anthropic is a fake Anthropic Messages API.
type Anthropic struct {
	// Keys are the accepted x-api-key values / Bearer tokens; empty = any.
	Keys []string
	// Script, when set, answers each request; nil result = default answer.
	Script func(n int, r *Recorded) *Reply
	// Text is the default answer text.
	Text string
	// StreamEvents is the number of text deltas in a default stream (default 3).
	StreamEvents int
	// EventGap is the default pause between stream events.
	EventGap time.Duration
	// Headers, when set, adds headers to answer n (scripted or default), e.g.
	// rate-limit numbers (see ClaudeQuota, CodexHeaders).
	Headers func(n int) map[string]string
	// Usage, when set, replaces the default answer's usage (JSON and
	// stream) and adds Anthropic's cache_creation split into 5-minute and
	// 1-hour writes.
	Usage *Usage
	// Strict refuses, before the script runs, a Messages request the real
	// API would refuse (anthropic_strict.go): a 400 invalid_request_error.
	Strict bool

	requestLog
}

// Usage is the token usage a fake reports.
type Usage struct {
	Input, Output, CacheWrite5m, CacheWrite1h, CacheRead int64
}

// json is the usage object as Anthropic sends it: cache_creation_input_tokens
// the total of cache writes, cache_creation its split.
func (u Usage) json(output int64) string {
	return fmt.Sprintf(`{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":%d}`,
		u.Input, u.CacheWrite5m+u.CacheWrite1h, u.CacheRead, u.CacheWrite5m, u.CacheWrite1h, output)
}

func record(r *http.Request) *Recorded {
	body, _ := io.ReadAll(r.Body)
	return &Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
}

func (a *Anthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	n := a.add(rec)
	if len(a.Keys) > 0 {
		key := r.Header.Get("X-Api-Key")
		if key == "" {
			key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		ok := false
		for _, k := range a.Keys {
			ok = ok || k == key
		}
		if !ok {
			WriteReply(w, r, &Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_fake"}`})
			return
		}
	}
	if a.Strict {
		if rep := strictReply(rec); rep != nil {
			WriteReply(w, r, rep)
			return
		}
	}
	rep := scripted(a.Script, n, rec, a.defaultReply)
	if a.Headers != nil {
		rep = withHeaders(rep, a.Headers(n))
	}
	WriteReply(w, r, rep)
}

// scripted is the script's reply to request n, or the fake's default one.
func scripted(script func(int, *Recorded) *Reply, n int, rec *Recorded, def func(*Recorded) *Reply) *Reply {
	if script != nil {
		if rep := script(n, rec); rep != nil {
			return rep
		}
	}
	return def(rec)
}

func (a *Anthropic) defaultReply(rec *Recorded) *Reply {
	switch {
	case strings.HasSuffix(rec.Path, "/count_tokens"):
		return &Reply{Body: `{"input_tokens":42}`}
	case strings.HasSuffix(rec.Path, "/models"):
		return &Reply{Body: `{"data":[{"type":"model","id":"claude-fake-1","display_name":"Claude Fake","created_at":"2026-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-fake-1","last_id":"claude-fake-1"}`}
	}
	if u := a.Usage; u != nil {
		whole := func(model, text string) string {
			return strings.Replace(MessageJSON(model, text), defaultUsageJSON, u.json(u.Output), 1)
		}
		stream := func(model, text string, n int, gap time.Duration) []Event {
			ev := MessageStream(model, text, n, gap)
			for i := range ev {
				ev[i].Data = strings.Replace(ev[i].Data, defaultStartUsage, u.json(1), 1)
				ev[i].Data = strings.Replace(ev[i].Data, defaultDeltaUsage, u.json(u.Output), 1)
			}
			return ev
		}
		return defaultAnswer(rec, a.Text, a.StreamEvents, a.EventGap, stream, whole)
	}
	return defaultAnswer(rec, a.Text, a.StreamEvents, a.EventGap, MessageStream, MessageJSON)
}

// The usage objects of the default answers, which Anthropic.Usage replaces.
const (
	defaultUsageJSON  = `{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7,"service_tier":"standard"}`
	defaultStartUsage = `{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":1}`
	defaultDeltaUsage = `{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7}`
)

// defaultAnswer is the Anthropic and OpenAI fakes' default reply: text (or
// "Hello from fake upstream") for the request's model, as a stream of n
// parts (default 3) gap apart when the body asks for one, else whole.
func defaultAnswer(rec *Recorded, text string, n int, gap time.Duration,
	stream func(model, text string, n int, gap time.Duration) []Event, whole func(model, text string) string) *Reply {
	model := gjson.GetBytes(rec.Body, "model").Str
	if text == "" {
		text = "Hello from fake upstream"
	}
	if gjson.GetBytes(rec.Body, "stream").Bool() {
		if n == 0 {
			n = 3
		}
		return &Reply{Events: stream(model, text, n, gap)}
	}
	return &Reply{Body: whole(model, text)}
}

// MessageJSON is a complete non-streaming Messages answer.
func MessageJSON(model, text string) string {
	return fmt.Sprintf(`{"id":"msg_fake01","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7,"service_tier":"standard"},"container":null}`, model, text)
}

// MessageStream is a Messages SSE stream whose text is split into n deltas.
func MessageStream(model, text string, n int, gap time.Duration) []Event {
	ev := []Event{
		{Name: "message_start", Data: fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_fake01","type":"message","role":"assistant","content":[],"model":%q,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":1}}}`, model)},
		{Name: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`, Delay: gap},
		{Name: "ping", Data: `{"type": "ping"}`},
	}
	for i, part := range split(text, n) {
		_ = i
		ev = append(ev, Event{Name: "content_block_delta", Data: fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, part), Delay: gap})
	}
	return append(ev,
		Event{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":0}`},
		Event{Name: "message_delta", Data: `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7}}`, Delay: gap},
		Event{Name: "message_stop", Data: `{"type":"message_stop"}`},
	)
}

func split(s string, n int) []string {
	if n <= 1 || len(s) < n {
		return []string{s}
	}
	var out []string
	size := len(s) / n
	for i := 0; i < n-1; i++ {
		out = append(out, s[i*size:(i+1)*size])
	}
	return append(out, s[(n-1)*size:])
}

// WriteReply sends a scripted reply.
func WriteReply(w http.ResponseWriter, r *http.Request, rep *Reply) {
	if rep.Stall > 0 {
		select {
		case <-time.After(rep.Stall):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	if rep.Events == nil {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		status := rep.Status
		if status == 0 {
			status = 200
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(rep.Body)))
		w.WriteHeader(status)
		io.WriteString(w, rep.Body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	status := rep.Status
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	fl := w.(http.Flusher)
	fl.Flush()
	var buf bytes.Buffer
	for i, e := range rep.Events {
		if rep.CutAfter > 0 && i == rep.CutAfter {
			cut(w)
			return
		}
		if e.Delay > 0 {
			select {
			case <-time.After(e.Delay):
			case <-r.Context().Done():
				return
			}
		}
		buf.Reset()
		if e.Name != "" {
			buf.WriteString("event: ")
			buf.WriteString(e.Name)
			buf.WriteByte('\n')
		}
		buf.WriteString("data: ")
		buf.WriteString(e.Data)
		buf.WriteString("\n\n")
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		fl.Flush()
	}
	if rep.CutAfter > 0 && rep.CutAfter >= len(rep.Events) {
		cut(w)
		return
	}
	if rep.Hang {
		<-r.Context().Done()
	}
}

// cut drops the connection without ending the response properly.
func cut(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
