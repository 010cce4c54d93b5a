package relay

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
)

// A refusal of a request whose declared body was not sent closes the
// connection at once. net/http reads up to 256 KiB of an unread body after
// the handler returns, with no deadline, even on a connection it closes
// next: a keyless request declaring a small body held its connection open
// (issue 31, item 3). The e2e test TestRefusalDoesNotWaitForTheBody covers
// every kind of refusal on the real server.
func TestRefusalClosesWithoutReadingTheBody(t *testing.T) {
	srv := httptest.NewServer(accessRelay(t, false, config.KeyConfig{Name: "a", Key: "right-key"}).Handler())
	t.Cleanup(srv.Close)
	for _, size := range []string{"1", "100000", "262144", "10000000"} {
		t.Run(size, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: "+size+"\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != 401 || !resp.Close {
				t.Fatalf("%d close=%v", resp.StatusCode, resp.Close)
			}
			_, err = br.ReadByte()
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("the connection is still open: %v", err)
			}
		})
	}
}

// A body with a key the relay reads written twice is a 400 on every route,
// in the route's shape, before the policy or an account sees it (issue 31,
// item 4). The relay read the first "model" on the Responses route while
// the upstream served the last.
func TestRepeatedKeysAre400(t *testing.T) {
	r := accessRelay(t, false, config.KeyConfig{Name: "mini", Key: "mini-key", Models: []string{"gpt-5-mini", "claude-haiku-*", "gemini-*"}})
	tests := []struct{ path, body, shape string }{
		{"/v1/responses", `{"model":"gpt-5-mini","model":"gpt-5-pro"}`, `"type":"invalid_request_error"`},
		{"/openai/v1/responses", `{"model":"gpt-5-mini","stream":false,"stream":true}`, `"type":"invalid_request_error"`},
		{"/v1/messages", `{"model":"claude-haiku-4-5","model":"claude-opus-4-1"}`, `"type":"invalid_request_error"`},
		{"/v1/messages", `{"model":"claude-haiku-4-5","mod\u0065l":"claude-opus-4-1"}`, `"type":"invalid_request_error"`},
		{"/v1/messages/count_tokens", `{"model":"claude-haiku-4-5","messages":[],"messages":[]}`, `"type":"invalid_request_error"`},
		{"/v1/chat/completions", `{"model":"claude-haiku-4-5","messages":[],"model":"claude-opus-4-1"}`, `"type":"invalid_request_error"`},
		{"/gemini/v1beta/models/gemini-2.5-pro:generateContent", `{"contents":[],"contents":[]}`, `"status":"INVALID_ARGUMENT"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer mini-key")
			w := httptest.NewRecorder()
			r.Handler().ServeHTTP(w, req)
			if b := w.Body.String(); w.Code != 400 || !strings.Contains(b, "more than once") || !strings.Contains(b, tt.shape) {
				t.Fatalf("%d %s", w.Code, b)
			}
		})
	}
}
