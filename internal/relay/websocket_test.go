package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/usage"
)

const wsKey = "sk-relay-ws-test"

// wsRelay is a relay with the relay key wsKey and one openai-responses
// account on fake, its body limit maxBody (0: the default).
func wsRelay(t *testing.T, fake http.Handler, maxBody int64) (*httptest.Server, *memRecorder) {
	t.Helper()
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	ac := config.AccountConfig{ID: "oa", Type: config.TypeOpenAIResponses, APIURL: up.URL + "/v1"}
	acct := &scheduler.Account{ID: "oa", Type: ac.Type, Platform: ac.Platform(), Priority: 100, Enabled: true}
	sched := scheduler.New([]*scheduler.Account{acct}, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute}, nil, nil)
	t.Cleanup(sched.Close)
	p, err := policy.New(policy.Options{APIKeys: []string{wsKey}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &memRecorder{}
	rl := New(Options{Policy: p, FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxBodyBytes: maxBody},
		sched, []*Upstream{{Account: acct, Config: ac, Client: &http.Client{}, Token: staticToken("sk-acct")}}, rec, nil)
	srv := httptest.NewServer(rl.Handler())
	t.Cleanup(srv.Close)
	return srv, rec
}

// dialWS opens the Responses WebSocket as Codex does.
func dialWS(t *testing.T, ctx context.Context, srv *httptest.Server, key string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{"Openai-Beta": {"responses_websockets=2026-02-06"}, "Session-Id": {"thread-ws"}}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/responses", &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// readUntil reads frames until one of type want (or an error event) and
// returns every frame read.
func readUntil(t *testing.T, ctx context.Context, c *websocket.Conn, want string) []gjson.Result {
	t.Helper()
	var got []gjson.Result
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d frames: %v", len(got), err)
		}
		if typ != websocket.MessageText {
			t.Fatalf("frame type %v", typ)
		}
		ev := gjson.ParseBytes(data)
		got = append(got, ev)
		if ev.Get("type").Str == want || ev.Get("type").Str == "error" {
			return got
		}
	}
}

// waitRecords waits (bounded) for n usage records: a turn is recorded just
// after its last event reaches the client.
func waitRecords(t *testing.T, rec *memRecorder, n int) []usage.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.all()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return rec.all()
}

func send(t *testing.T, ctx context.Context, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func wsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const userHi = `{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}`

// The upgrade needs the relay key (Authorization as Codex sends it); a GET
// that is no upgrade gets 426 in OpenAI's shape.
func TestWebSocketAuth(t *testing.T) {
	srv, _ := wsRelay(t, &fakeupstream.OpenAI{}, 0)
	ctx := wsCtx(t)
	for _, key := range []string{"", "sk-wrong"} {
		_, resp, err := dialWS(t, ctx, srv, key)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("key %q: err %v, resp %+v; want a 401", key, err, resp)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/responses")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d, want 426", resp.StatusCode)
	}
	if _, _, err := dialWS(t, ctx, srv, wsKey); err != nil {
		t.Fatalf("the right key: %v", err)
	}
}

// Two turns on one connection: each is served through the Responses
// pipeline (upstream over HTTP with stream:true, usage recorded); the second
// continues the first with previous_response_id and only its new items, and
// the upstream gets the whole conversation.
func TestWebSocketTwoTurns(t *testing.T) {
	fake := &fakeupstream.OpenAI{}
	srv, rec := wsRelay(t, fake, 0)
	ctx := wsCtx(t)
	c, _, err := dialWS(t, ctx, srv, wsKey)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","store":false,"input":[`+userHi+`],"tools":[]}`)
	first := readUntil(t, ctx, c, "response.completed")
	last := first[len(first)-1]
	if last.Get("type").Str != "response.completed" || first[0].Get("type").Str != "response.created" {
		t.Fatalf("first turn frames: %v", first)
	}
	id := last.Get("response.id").Str
	const more = `{"type":"message","role":"user","content":[{"type":"input_text","text":"and again"}]}`
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","store":false,"previous_response_id":"`+id+`","input":[`+more+`],"tools":[]}`)
	second := readUntil(t, ctx, c, "response.completed")
	if second[len(second)-1].Get("type").Str != "response.completed" {
		t.Fatalf("second turn frames: %v", second)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	for i, r := range reqs {
		b := gjson.ParseBytes(r.Body)
		if r.Path != "/v1/responses" || !b.Get("stream").Bool() || b.Get("type").Exists() || b.Get("previous_response_id").Exists() ||
			r.Header.Get("Authorization") != "Bearer sk-acct" || r.Header.Get("Session-Id") != "thread-ws" || r.Header.Get("Openai-Beta") != "" {
			t.Fatalf("upstream request %d: %s %v\n%s", i, r.Path, r.Header, r.Body)
		}
	}
	in := gjson.GetBytes(reqs[1].Body, "input").Array()
	if len(in) != 3 || in[0].Get("content.0.text").Str != "hi" || in[1].Get("role").Str != "assistant" || in[2].Get("content.0.text").Str != "and again" {
		t.Fatalf("second upstream input %s, want the first input, its answer and the new item", gjson.GetBytes(reqs[1].Body, "input").Raw)
	}
	recs := waitRecords(t, rec, 2)
	if len(recs) == 2 && (recs[0].RequestID == recs[1].RequestID || !strings.HasSuffix(recs[1].RequestID, ".2")) {
		t.Fatalf("turns share a request id: %q %q", recs[0].RequestID, recs[1].RequestID)
	}
	if len(recs) != 2 || recs[0].AccountID != "oa" || !recs[0].Stream || recs[0].OutputTokens != 9 || recs[1].Status != 200 {
		t.Fatalf("usage records %+v", recs)
	}
}

// Bad messages get error events in the shape Codex reads and leave the
// connection serving; a previous_response_id the connection did not answer
// is previous_response_not_found; an upstream refusal is an error event
// with its status and quota headers.
func TestWebSocketErrors(t *testing.T) {
	fake := &fakeupstream.OpenAI{Script: func(n int, r *fakeupstream.Recorded) *fakeupstream.Reply {
		if strings.Contains(string(r.Body), "rate me") {
			return fakeupstream.CodexUsageLimit(time.Now().Add(time.Hour))
		}
		return nil
	}}
	srv, _ := wsRelay(t, fake, 0)
	ctx := wsCtx(t)
	c, _, err := dialWS(t, ctx, srv, wsKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ msg, status, code, param string }{
		{`not json`, "400", "", ""},
		{`{"type":"response.cancel"}`, "400", "", "type"},
		{`{"type":"response.create","model":"gpt-fake-1","previous_response_id":"resp_unknown","input":[]}`, "400", "previous_response_not_found", "previous_response_id"},
	} {
		send(t, ctx, c, tt.msg)
		got := readUntil(t, ctx, c, "error")
		ev := got[len(got)-1]
		if ev.Get("type").Str != "error" || ev.Get("status_code").String() != tt.status || ev.Get("error.message").Str == "" ||
			ev.Get("error.code").Str != tt.code || ev.Get("error.param").Str != tt.param {
			t.Fatalf("%s: got %s", tt.msg, ev.Raw)
		}
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":[`+userHi+`]}`)
	if got := readUntil(t, ctx, c, "response.completed"); got[len(got)-1].Get("type").Str != "response.completed" {
		t.Fatalf("after the errors: %v", got)
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":"rate me"}`)
	ev := readUntil(t, ctx, c, "error")
	e := ev[len(ev)-1]
	if e.Get("status_code").Int() != 429 || e.Get("error.type").Str != "usage_limit_reached" || e.Get("headers.x-codex-primary-used-percent").Str != "100" {
		t.Fatalf("upstream 429: %s", e.Raw)
	}
}

// A warm-up (generate:false) is answered at once with an empty completed
// response, nothing upstream; a turn may continue from it.
func TestWebSocketWarmUp(t *testing.T) {
	fake := &fakeupstream.OpenAI{}
	srv, rec := wsRelay(t, fake, 0)
	ctx := wsCtx(t)
	c, _, err := dialWS(t, ctx, srv, wsKey)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":[],"generate":false}`)
	got := readUntil(t, ctx, c, "response.completed")
	id := got[len(got)-1].Get("response.id").Str
	if len(got) != 2 || id == "" || got[len(got)-1].Get("response.output.#").Int() != 0 || len(fake.Requests()) != 0 {
		t.Fatalf("warm-up: %v, upstream saw %d", got, len(fake.Requests()))
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","previous_response_id":"`+id+`","input":[`+userHi+`]}`)
	readUntil(t, ctx, c, "response.completed")
	if reqs := fake.Requests(); len(reqs) != 1 || gjson.GetBytes(reqs[0].Body, "input.#").Int() != 1 || len(waitRecords(t, rec, 1)) != 1 {
		t.Fatalf("turn after the warm-up: %d requests, %d records", len(reqs), len(rec.all()))
	}
}

// A message over the relay's body limit closes the connection (1009),
// unread past the limit.
func TestWebSocketMessageLimit(t *testing.T) {
	srv, _ := wsRelay(t, &fakeupstream.OpenAI{}, 4<<10)
	ctx := wsCtx(t)
	c, _, err := dialWS(t, ctx, srv, wsKey)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":"`+strings.Repeat("x", 8<<10)+`"}`)
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
		t.Fatalf("read after an oversized message: %v, want close 1009", err)
	}
}

// A client that closes its socket mid-turn ends the turn: the upstream call
// is cancelled and the turn recorded as the client's leaving (499).
func TestWebSocketClientLeavesMidTurn(t *testing.T) {
	fake := &fakeupstream.OpenAI{Text: strings.Repeat("word ", 100), StreamEvents: 50, EventGap: 100 * time.Millisecond}
	srv, rec := wsRelay(t, fake, 0)
	ctx := wsCtx(t)
	c, _, err := dialWS(t, ctx, srv, wsKey)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":[`+userHi+`]}`)
	readUntil(t, ctx, c, "response.output_text.delta")
	c.CloseNow()
	recs := waitRecords(t, rec, 1)
	if len(recs) != 1 || recs[0].Status != 499 {
		t.Fatalf("records %+v, want one 499", recs)
	}
}

// In protected mode (no relay key) a program on this machine may open the
// socket, a web page (it sends Origin) may not: the same rule as for POSTs.
func TestWebSocketProtectedMode(t *testing.T) {
	up := httptest.NewServer(&fakeupstream.OpenAI{})
	t.Cleanup(up.Close)
	srv, _ := newTestRelay(t, nil, testAccount{id: "oa", typ: config.TypeOpenAIResponses, url: up.URL + "/v1", key: "sk"})
	ctx := wsCtx(t)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/responses"
	_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a page's upgrade: err %v, resp %+v; want 403", err, resp)
	}
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("a local program's upgrade: %v", err)
	}
	defer c.CloseNow()
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":[`+userHi+`]}`)
	if got := readUntil(t, ctx, c, "response.completed"); got[len(got)-1].Get("type").Str != "response.completed" {
		t.Fatalf("local program's turn: %v", got)
	}
}

// A drain (CloseWebSockets, at shutdown) lets the turn in flight finish,
// then closes each socket with 1001 and refuses new ones.
func TestWebSocketDrain(t *testing.T) {
	up := httptest.NewServer(&fakeupstream.OpenAI{StreamEvents: 5, EventGap: 20 * time.Millisecond})
	t.Cleanup(up.Close)
	ac := config.AccountConfig{ID: "oa", Type: config.TypeOpenAIResponses, APIURL: up.URL + "/v1"}
	acct := &scheduler.Account{ID: "oa", Type: ac.Type, Platform: ac.Platform(), Priority: 100, Enabled: true}
	sched := scheduler.New([]*scheduler.Account{acct}, scheduler.Options{StickyTTL: time.Hour}, nil, nil)
	t.Cleanup(sched.Close)
	rl := New(Options{Policy: testPolicy(t), FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
		sched, []*Upstream{{Account: acct, Config: ac, Client: &http.Client{}, Token: staticToken("sk")}}, &memRecorder{}, nil)
	srv := httptest.NewServer(rl.Handler())
	t.Cleanup(srv.Close)
	ctx := wsCtx(t)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/responses"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":[`+userHi+`]}`)
	readUntil(t, ctx, c, "response.created")
	drained := make(chan error, 1)
	go func() { drained <- rl.CloseWebSockets(ctx) }()
	if got := readUntil(t, ctx, c, "response.completed"); got[len(got)-1].Get("type").Str != "response.completed" {
		t.Fatalf("the turn in flight did not finish: %v", got)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after the turn: %v, want close 1001", err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if _, resp, err := websocket.Dial(ctx, url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a socket after the drain: err %v, resp %+v; want 503", err, resp)
	}
}

// The x-codex-* quota numbers of an answer's headers (a ChatGPT backend's)
// reach a socket client as the codex.rate_limits event Codex reads there,
// before the answer's events.
func TestWebSocketRateLimits(t *testing.T) {
	fake := &fakeupstream.OpenAI{Headers: func(int) map[string]string {
		return map[string]string{"X-Codex-Primary-Used-Percent": "42.5", "X-Codex-Primary-Window-Minutes": "300", "X-Codex-Primary-Reset-At": "1767229200",
			"X-Codex-Secondary-Used-Percent": "7", "X-Codex-Secondary-Window-Minutes": "10080"}
	}}
	srv, _ := wsRelay(t, fake, 0)
	ctx := wsCtx(t)
	c, _, err := dialWS(t, ctx, srv, wsKey)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, c, `{"type":"response.create","model":"gpt-fake-1","input":[`+userHi+`]}`)
	got := readUntil(t, ctx, c, "response.completed")
	rl := got[0]
	if rl.Get("type").Str != "codex.rate_limits" || rl.Get("rate_limits.primary.used_percent").Float() != 42.5 ||
		rl.Get("rate_limits.primary.window_minutes").Int() != 300 || rl.Get("rate_limits.primary.reset_at").Int() != 1767229200 ||
		rl.Get("rate_limits.secondary.used_percent").Float() != 7 || rl.Get("rate_limits.secondary.reset_at").Exists() {
		t.Fatalf("first frame %s", rl.Raw)
	}
	if got[1].Get("type").Str != "response.created" {
		t.Fatalf("second frame %s", got[1].Raw)
	}
}
