package relay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// chunkedStream answers with an SSE body delivered in exactly the given
// pieces, one per Read.
type chunkedStream struct{ pieces []string }

func (c chunkedStream) RoundTrip(req *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, req.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: &pieceReader{pieces: c.pieces}, Request: req}, nil
}

type pieceReader struct{ pieces []string }

func (p *pieceReader) Read(b []byte) (int, error) {
	if len(p.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.pieces[0])
	p.pieces[0] = p.pieces[0][n:]
	if p.pieces[0] == "" {
		p.pieces = p.pieces[1:]
	}
	return n, nil
}
func (p *pieceReader) Close() error { return nil }

func serveOne(t *testing.T, rt http.RoundTripper, body string) string {
	t.Helper()
	acct := &scheduler.Account{ID: "a", Type: config.TypeClaudeAPI, Platform: "claude", Priority: 100, Enabled: true}
	ups := []*Upstream{{Account: acct, Config: config.AccountConfig{ID: "a", Type: config.TypeClaudeAPI, APIURL: "http://upstream.invalid"}, Client: &http.Client{Transport: rt}, Token: staticToken("k")}}
	sched := scheduler.New([]*scheduler.Account{acct}, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute}, nil, nil)
	t.Cleanup(sched.Close)
	// httptest.NewRequest comes from 192.0.2.1, not this machine.
	rl := New(Options{Policy: testPolicy(t), AllowUnauthenticated: true, FirstByteTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, sched, ups, &memRecorder{}, nil)
	w := httptest.NewRecorder()
	rl.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(body)))
	return w.Body.String()
}

// A passthrough stream commits at its first content event; an event that
// the same read left unfinished must reach the client whole, although its
// first bytes were read before the commit and its last ones after.
func TestStreamEventSplitAcrossTheCommit(t *testing.T) {
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
	all := strings.Join(events, "")
	// Cut the stream at every byte after the commit event begins.
	start := len(events[0]) + len(events[1]) - 5
	for cut := start; cut < len(all)-1; cut++ {
		got := serveOne(t, chunkedStream{pieces: []string{all[:cut], all[cut:]}}, `{"model":"m","stream":true,"messages":[]}`)
		if got != all {
			t.Fatalf("cut at %d: the client got\n%q\nwant\n%q", cut, got, all)
		}
	}
}

// An upstream error event in a committed passthrough stream reaches the
// client with its secrets redacted wherever the reads split it: the part
// read first must not go out before the event is complete and checked.
func TestStreamErrorEventRedactedAcrossReads(t *testing.T) {
	const secret = "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm-0123456789AA"
	head := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
	errEv := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"key " + secret + " is overloaded\"}}\n\n"
	all := head + errEv
	for cut := len(head); cut < len(all); cut++ {
		for _, pieces := range [][]string{{all[:cut], all[cut:]}, {head, errEv[:cut-len(head)], errEv[cut-len(head):]}} {
			got := serveOne(t, chunkedStream{pieces: pieces}, `{"model":"m","stream":true,"messages":[]}`)
			if strings.Contains(got, "Zx9Qw8Er7Ty6") {
				t.Fatalf("cut at %d (%d pieces): the secret reached the client:\n%q", cut, len(pieces), got)
			}
			if !strings.Contains(got, "is overloaded") || !strings.Contains(got, "Hi") {
				t.Fatalf("cut at %d (%d pieces): wording lost:\n%q", cut, len(pieces), got)
			}
		}
	}
}
