package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// Codex's Responses WebSocket ("WebSocket mode" of the Responses API), what
// its built-in OpenAI provider tries before HTTP (codex-api
// endpoint/responses_websocket.rs, core/src/client.rs):
//   - the client opens GET /v1/responses with Upgrade: websocket, its
//     Authorization and OpenAI-Beta: responses_websockets=2026-02-06;
//   - each turn is one text frame {"type":"response.create", ...the body of
//     POST /v1/responses...}; "generate":false is a warm-up that makes no
//     output; "previous_response_id" naming the connection's last response
//     means "input" holds only the items after that response's input and
//     output (get_incremental_items);
//   - the server answers with each Responses stream event's JSON as one text
//     frame, and an error as {"type":"error","status_code":N,"error":{...},
//     "headers":{...}} (parse_wrapped_websocket_error_event).
//
// The relay serves each response.create through the same handler as POST
// /v1/responses (intake, policy, failover, usage), over HTTP upstream, with a
// ResponseWriter that turns the SSE events the handler writes into frames.
// Turns on a connection are served one at a time, in order.

const (
	// wsIdle closes a connection no turn arrived on for this long (Codex
	// opens a new one when its cached connection is closed).
	wsIdle = 15 * time.Minute
	// wsMaxAge bounds a connection's life, as OpenAI's does (60 minutes).
	wsMaxAge = 60 * time.Minute
)

// handleResponsesWebSocket accepts Codex's WebSocket on GET /v1/responses
// after the relay key check (a refused key gets its HTTP answer, which Codex
// reports). A GET that is not an upgrade gets 426.
func (r *Relay) handleResponsesWebSocket(w http.ResponseWriter, req *http.Request, d dialect) {
	if !headerHasToken(req.Header, "Connection", "upgrade") || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		writeDialectError(w, d, http.StatusUpgradeRequired, "GET /v1/responses is the Responses WebSocket: send Upgrade: websocket, or POST /v1/responses")
		return
	}
	switch auth := r.authenticate(req, false); auth.status {
	case 0:
	case http.StatusUnauthorized:
		writeDialectError(w, d, http.StatusUnauthorized, "invalid or missing relay API key (send it as Authorization: Bearer)")
		return
	default:
		writeRefusalTo(w, d, auth.status, policy.RateLimited, auth.msg, auth.retry)
		return
	}
	if !r.sockets.enter() {
		writeDialectError(w, d, http.StatusServiceUnavailable, "the relay is shutting down")
		return
	}
	defer r.sockets.leave()
	// The origin check stays on: a browser page must not reach a relay in
	// protected mode through a socket (Codex sends no Origin).
	conn, err := websocket.Accept(w, req, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept answered the client
	}
	conn.SetReadLimit(r.opts.MaxBodyBytes)
	s := &wsSession{r: r, conn: conn, up: req, d: d}
	s.run(req.Context())
	r.log.Info("responses websocket closed", "path", req.URL.Path, "responses", s.served)
}

// wsHub counts the open sockets and ends them on a drain: hijacked
// connections are outside http.Server.Shutdown's reach.
type wsHub struct {
	mu     sync.Mutex
	open   sync.WaitGroup
	closed bool
	stop   chan struct{}
}

// enter registers a socket; false once the relay drains.
func (h *wsHub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.open.Add(1)
	return true
}

func (h *wsHub) leave() { h.open.Done() }

// stopping is closed when the relay drains.
func (h *wsHub) stopping() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopChan()
}

// stopChan is the drain's channel; call with mu held.
func (h *wsHub) stopChan() chan struct{} {
	if h.stop == nil {
		h.stop = make(chan struct{})
	}
	return h.stop
}

// CloseWebSockets drains the Responses WebSockets: no new one is accepted,
// each open one finishes its turn in flight and is closed (1001); it
// returns when all are closed or ctx ends. Call it after the server's
// Shutdown, before usage is flushed.
func (r *Relay) CloseWebSockets(ctx context.Context) error {
	h := &r.sockets
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.stopChan())
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.open.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close the Responses WebSockets: %w", ctx.Err())
	}
}

// headerHasToken reports whether the comma-separated header name holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsSession is one client connection and the state a continuation needs:
// the last response's id, the full input it was made from and its output
// items (what OpenAI keeps per connection for previous_response_id).
type wsSession struct {
	r    *Relay
	conn *websocket.Conn
	up   *http.Request
	d    dialect

	lastID     string
	lastInput  []byte   // JSON array
	lastOutput [][]byte // output items' JSON
	served     int
}

// run reads turns and serves them in order until the client closes, the
// connection idles past wsIdle or outlives wsMaxAge.
func (s *wsSession) run(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, wsMaxAge)
	defer cancel()
	msgs := make(chan []byte)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel() // a closed or broken connection ends a turn in flight
		for {
			typ, data, err := s.conn.Read(ctx)
			if err != nil {
				return
			}
			if typ != websocket.MessageText {
				s.sendError(ctx, http.StatusBadRequest, "invalid_request_error", "", "messages must be text frames holding JSON")
				continue
			}
			select {
			case msgs <- data:
			case <-ctx.Done():
				return
			}
		}
	}()
	idle := time.NewTimer(wsIdle)
	defer idle.Stop()
	status, reason := websocket.StatusNormalClosure, ""
	stop := s.r.sockets.stopping()
loop:
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				status, reason = websocket.StatusGoingAway, "connection too old; open a new one"
			}
			break loop
		case <-idle.C:
			break loop
		case <-stop:
			status, reason = websocket.StatusGoingAway, "the relay is shutting down"
			break loop
		case m := <-msgs:
			s.serveMessage(ctx, m) // a turn in flight finishes before a drain closes
			idle.Reset(wsIdle)
		}
	}
	_ = s.conn.Close(status, reason)
	cancel()
	<-readDone
}

// serveMessage serves one client message: a response.create through the
// Responses handler, a warm-up at once, anything else an error event.
func (s *wsSession) serveMessage(ctx context.Context, data []byte) {
	msg := gjson.ParseBytes(data)
	if !msg.IsObject() || !gjson.ValidBytes(data) {
		s.sendError(ctx, http.StatusBadRequest, "invalid_request_error", "", "a message must be a JSON object")
		return
	}
	if t := msg.Get("type").Str; t != "response.create" {
		s.sendError(ctx, http.StatusBadRequest, "invalid_request_error", "type", "unsupported message type "+strconv.Quote(truncateForError(t))+`; this relay takes "response.create"`)
		return
	}
	input, werr := s.fullInput(msg)
	if werr != nil {
		s.sendError(ctx, http.StatusBadRequest, "invalid_request_error", "previous_response_id", werr.Error(), "previous_response_not_found")
		return
	}
	if g := msg.Get("generate"); g.Exists() && g.Type == gjson.False {
		s.warmUp(ctx, msg.Get("model").Str, input)
		return
	}
	body, err := requestBody(data, input)
	if err != nil {
		s.sendError(ctx, http.StatusBadRequest, "invalid_request_error", "", "could not read the message: "+err.Error())
		return
	}
	// Each turn is a request of its own: its own id (the socket's, then
	// ".<turn>") for the request log, and its own access log line.
	s.served++
	info := &Info{}
	if up := InfoFrom(ctx); up != nil {
		*info = *up
		info.Account, info.Model, info.Attempts, info.Status, info.Usage = "", "", 0, 0, provider.Usage{}
	}
	info.RequestID += "." + strconv.Itoa(s.served)
	w := &wsWriter{ctx: ctx, conn: s.conn, h: http.Header{}}
	s.r.handleResponses(w, s.messageRequest(WithInfo(ctx, info), body), s.d)
	w.finish()
	s.r.log.Info("websocket turn", "id", info.RequestID, "status", info.Status, "account", info.Account, "model", info.Model,
		"in", info.InputTokens, "out", info.OutputTokens, "cache_read", info.CacheReadTokens, "attempts", info.Attempts)
	s.lastID, s.lastInput, s.lastOutput = "", nil, nil
	if w.completed && w.id != "" {
		s.lastID, s.lastInput, s.lastOutput = w.id, input, w.items
	}
}

// fullInput is the message's input with what previous_response_id stands
// for put before it: the last response's input and output items. A
// previous_response_id this connection did not answer last is an error
// (previous_response_not_found, as OpenAI's).
func (s *wsSession) fullInput(msg gjson.Result) ([]byte, error) {
	in := msg.Get("input")
	var items []string
	switch {
	case in.IsArray():
		for _, it := range in.Array() {
			items = append(items, it.Raw)
		}
	case in.Type == gjson.String:
		m, _ := sjson.Set(`{"type":"message","role":"user","content":[{"type":"input_text"}]}`, "content.0.text", in.Str)
		items = append(items, m)
	}
	prev := msg.Get("previous_response_id")
	s.r.log.Debug("responses websocket turn", "continues", prev.Str != "", "new_items", len(items))
	if prev.Str == "" {
		return joinItems(items), nil
	}
	if prev.Str != s.lastID {
		return nil, errors.New("previous response with id " + strconv.Quote(truncateForError(prev.Str)) +
			" not found: this relay keeps only the last response of this WebSocket connection; send the full input without previous_response_id")
	}
	all := make([]string, 0, len(items)+len(s.lastOutput)+8)
	for _, it := range gjson.ParseBytes(s.lastInput).Array() {
		all = append(all, it.Raw)
	}
	for _, it := range s.lastOutput {
		all = append(all, string(it))
	}
	return joinItems(append(all, items...)), nil
}

// joinItems is a JSON array of raw items.
func joinItems(items []string) []byte {
	return []byte("[" + strings.Join(items, ",") + "]")
}

// requestBody is the POST /v1/responses body of a response.create message:
// without the socket's own members (type, generate, previous_response_id),
// with the full input and stream:true (the events are what the socket
// carries).
func requestBody(msg, input []byte) ([]byte, error) {
	out := bytes.Clone(msg)
	var err error
	for _, k := range []string{"type", "generate", "previous_response_id"} {
		if gjson.GetBytes(out, k).Exists() {
			if out, err = sjson.DeleteBytes(out, k); err != nil {
				return nil, err
			}
		}
	}
	if out, err = sjson.SetRawBytes(out, "input", input); err != nil {
		return nil, err
	}
	return sjson.SetBytes(out, "stream", true)
}

// messageRequest is the POST the handler serves for one message: the
// upgrade request's path, address and headers (the relay key, Codex's
// session and x-codex-* headers) without the handshake's own.
func (s *wsSession) messageRequest(ctx context.Context, body []byte) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.up.URL.Path, bytes.NewReader(body))
	req.Header = s.up.Header.Clone()
	for name := range req.Header {
		if strings.HasPrefix(name, "Sec-Websocket-") {
			delete(req.Header, name)
		}
	}
	req.Header.Del("Connection")
	req.Header.Del("Upgrade")
	if strings.Contains(req.Header.Get("Openai-Beta"), "responses_websockets") {
		req.Header.Del("Openai-Beta") // a socket's beta; the upstream call is HTTP
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Host, req.RemoteAddr = s.up.Host, s.up.RemoteAddr
	return req
}

// warmUp answers generate:false: a completed response with no output that a
// later turn may continue from; nothing goes upstream.
func (s *wsSession) warmUp(ctx context.Context, model string, input []byte) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := "resp_ws" + hex.EncodeToString(b[:])
	resp := `{"id":"` + id + `","object":"response","created_at":` + strconv.FormatInt(s.r.now().Unix(), 10) +
		`,"status":"in_progress","model":` + string(provider.AppendJSONString(nil, model)) + `,"output":[],"usage":null}`
	created := `{"type":"response.created","sequence_number":0,"response":` + resp + `}`
	resp = strings.Replace(resp, `"in_progress"`, `"completed"`, 1)
	resp = strings.Replace(resp, `"usage":null`, `"usage":{"input_tokens":0,"input_tokens_details":{"cached_tokens":0},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":0}`, 1)
	completed := `{"type":"response.completed","sequence_number":1,"response":` + resp + `}`
	if s.conn.Write(ctx, websocket.MessageText, []byte(created)) != nil || s.conn.Write(ctx, websocket.MessageText, []byte(completed)) != nil {
		return
	}
	s.lastID, s.lastInput, s.lastOutput = id, input, nil
}

// sendError sends an error event in the shape Codex reads; code is
// optional.
func (s *wsSession) sendError(ctx context.Context, status int, typ, param, msg string, code ...string) {
	e := []byte(`{"type":`)
	e = provider.AppendJSONString(e, typ)
	e = append(e, `,"message":`...)
	e = provider.AppendJSONString(e, msg)
	if param != "" {
		e = append(e, `,"param":`...)
		e = provider.AppendJSONString(e, param)
	}
	if len(code) > 0 {
		e = append(e, `,"code":`...)
		e = provider.AppendJSONString(e, code[0])
	}
	e = append(e, '}')
	_ = s.conn.Write(ctx, websocket.MessageText, errorFrame(status, e, nil))
}

// errorFrame is the error event {"type":"error","status_code":...,"error":
// errObj,"headers":{...}} with the answer headers Codex reads (Retry-After,
// the x-codex-* quota numbers).
func errorFrame(status int, errObj []byte, h http.Header) []byte {
	b := []byte(`{"type":"error","status_code":`)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"error":`...)
	b = append(b, errObj...)
	first := true
	for name, vv := range h {
		ln := strings.ToLower(name)
		if len(vv) == 0 || (ln != "retry-after" && !strings.HasPrefix(ln, "x-codex-") && !strings.HasPrefix(ln, "x-ratelimit-")) {
			continue
		}
		if first {
			b = append(b, `,"headers":{`...)
		} else {
			b = append(b, ',')
		}
		first = false
		b = provider.AppendJSONString(b, ln)
		b = append(b, ':')
		b = provider.AppendJSONString(b, vv[0])
	}
	if !first {
		b = append(b, '}')
	}
	return append(b, '}')
}

// wsWriter is the http.ResponseWriter the Responses handler writes one
// turn's answer to: each SSE event's data goes out as a text frame as it is
// written; a non-2xx answer is kept and sent as one error event at the end
// (finish). It notes the response's id and output items for a
// continuation.
type wsWriter struct {
	ctx    context.Context
	conn   *websocket.Conn
	h      http.Header
	status int
	body   bytes.Buffer
	p      sse.Parser
	err    error

	id        string
	items     [][]byte
	completed bool
	// limitsSent: the quota numbers of the answer's headers went out.
	limitsSent bool
}

// rateLimitsEvent is the codex.rate_limits event Codex reads on a socket
// (codex-api rate_limits.rs parse_rate_limit_event) from the x-codex-*
// quota headers a ChatGPT backend answer carries over HTTP (which Codex
// reads from the headers when it speaks HTTP itself); nil without them.
func rateLimitsEvent(h http.Header) []byte {
	if h.Get("X-Codex-Primary-Used-Percent") == "" {
		return nil
	}
	b := []byte(`{"type":"codex.rate_limits","rate_limits":{`)
	first := true
	for _, w := range [...]string{"primary", "secondary"} {
		used, err := strconv.ParseFloat(h.Get("X-Codex-"+w+"-Used-Percent"), 64)
		if err != nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"`+w+`":{"used_percent":`...)
		b = strconv.AppendFloat(b, used, 'f', -1, 64)
		for _, f := range [...][2]string{{"window_minutes", "-Window-Minutes"}, {"reset_at", "-Reset-At"}} {
			if n, err := strconv.ParseInt(h.Get("X-Codex-"+w+f[1]), 10, 64); err == nil {
				b = append(b, `,"`+f[0]+`":`...)
				b = strconv.AppendInt(b, n, 10)
			}
		}
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

func (w *wsWriter) Header() http.Header { return w.h }

func (w *wsWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *wsWriter) stream() bool {
	return w.status/100 == 2 && strings.HasPrefix(w.h.Get("Content-Type"), "text/event-stream")
}

func (w *wsWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.stream() {
		w.body.Write(b) // the relay's and the upstream's answers are bounded
		return len(b), nil
	}
	if !w.limitsSent {
		w.limitsSent = true
		if ev := rateLimitsEvent(w.h); ev != nil {
			if w.err = w.conn.Write(w.ctx, websocket.MessageText, ev); w.err != nil {
				return 0, w.err
			}
		}
	}
	w.p.Feed(b, func(ev *sse.Event) bool {
		if len(ev.Data) == 0 {
			return true
		}
		w.note(ev.Data)
		if err := w.conn.Write(w.ctx, websocket.MessageText, ev.Data); err != nil {
			w.err = err
			return false
		}
		return true
	})
	if w.err != nil {
		return 0, w.err
	}
	return len(b), nil
}

// Flush is a no-op: every event is sent as it is written.
func (w *wsWriter) Flush() {}

// note reads what a continuation needs from one event.
func (w *wsWriter) note(data []byte) {
	r := gjson.GetManyBytes(data, "type", "response.id", "item")
	switch r[0].Str {
	case "response.created":
		w.id = r[1].Str
	case "response.output_item.done":
		w.items = append(w.items, []byte(r[2].Raw))
	case "response.completed":
		w.id, w.completed = r[1].Str, true
		if len(w.items) == 0 {
			for _, it := range gjson.GetBytes(data, "response.output").Array() {
				w.items = append(w.items, []byte(it.Raw))
			}
		}
	}
}

// finish sends what the handler left to say: an error answer as an error
// event, a whole JSON answer as response.completed.
func (w *wsWriter) finish() {
	if w.err != nil || w.stream() {
		return
	}
	body := w.body.Bytes()
	if w.status/100 == 2 {
		if gjson.ValidBytes(body) && len(body) > 0 {
			_ = w.conn.Write(w.ctx, websocket.MessageText, append([]byte(`{"type":"response.completed","response":`), append(body, '}')...))
			w.id, w.completed = gjson.GetBytes(body, "id").Str, true
		}
		return
	}
	e := gjson.GetBytes(body, "error")
	obj := []byte(e.Raw)
	if !e.IsObject() {
		obj = provider.AppendJSONString([]byte(`{"type":"upstream_error","message":`), upstreamMessage(body))
		obj = append(obj, '}')
	}
	_ = w.conn.Write(w.ctx, websocket.MessageText, errorFrame(w.status, obj, w.h))
}
