package testutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// LoopbackClient is an HTTP client that refuses to dial anything but the
// loopback interface, so no test can reach the network by accident. Without
// followRedirects it hands redirects back to the caller.
func LoopbackClient(t *testing.T, followRedirects bool) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host != "localhost" && !net.ParseIP(host).IsLoopback() {
				return nil, fmt.Errorf("test dialed non-loopback address %s", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if !followRedirects {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}
