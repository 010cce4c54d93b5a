package app

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/scheduler"
)

// TestCodexUpstreamClosesIdleConnections: a codex-oauth upstream's client
// goes through openai.CodexTransport; closing its idle connections (what a
// reload that drops the account, and shutdown, do) must reach the pooled
// connections of the transport underneath.
func TestCodexUpstreamClosesIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"models":[]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()

	ac := config.AccountConfig{Type: config.TypeCodexOAuth, ID: "cx", Enabled: true, RefreshToken: "rt-test", APIURL: srv.URL}
	up, _, err := NewUpstream(&scheduler.Account{ID: "cx"}, ac, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := up.Client.Transport.(*http.Transport); ok {
		t.Fatal("the codex-oauth client is not wrapped: this test would prove nothing")
	}
	resp, err := up.Client.Get(srv.URL + "/models?client_version=1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // the connection goes back to the pool, idle

	up.Client.CloseIdleConnections()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle upstream connection was not closed through the codex transport")
	}
}
