package upstream

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

const hardPass = `p@ss:w/rd?#%&= "'\`

// Every account's traffic goes through its proxy, TLS (CONNECT) included,
// with credentials of any characters.
func TestClientThroughProxies(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	for _, kind := range []string{"socks5", "http"} {
		t.Run(kind, func(t *testing.T) {
			p := &fakeupstream.Proxy{User: "us:er@x", Pass: hardPass}
			var err error
			if kind == "socks5" {
				err = p.StartSOCKS5()
			} else {
				err = p.StartHTTP()
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, err := NewClient(&config.ProxyConfig{Type: kind, Host: "127.0.0.1", Port: p.Port(), Username: p.User, Password: p.Pass})
			if err != nil {
				t.Fatal(err)
			}
			c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			for i := 0; i < 3; i++ {
				req, _ := http.NewRequestWithContext(context.Background(), "GET", up.URL, nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					t.Fatalf("got %q", b)
				}
			}
			if p.Conns.Load() != 1 {
				t.Fatalf("want 1 pooled tunnel for 3 requests, proxy saw %d", p.Conns.Load())
			}
			// Wrong credentials fail (the proxy really checks them).
			bad, _ := NewClient(&config.ProxyConfig{Type: kind, Host: "127.0.0.1", Port: p.Port(), Username: "x", Password: "y"})
			if _, err := bad.Get(up.URL); err == nil {
				t.Fatal("wrong proxy credentials accepted")
			}
			if p.AuthFailures.Load() == 0 {
				t.Fatal("proxy saw no auth failure")
			}
		})
	}
}

func TestProxyURL(t *testing.T) {
	u, err := ProxyURL(&config.ProxyConfig{Type: "socks5", Host: "h", Port: 1, Username: "a", Password: "b:c@d"})
	if err != nil || u.String() != "socks5://a:b%3Ac%40d@h:1" {
		t.Fatalf("%v %v", u, err)
	}
	if u, _ := ProxyURL(&config.ProxyConfig{Type: "none"}); u != nil {
		t.Fatal("none must mean no proxy")
	}
	if u, _ := ProxyURL(nil); u != nil {
		t.Fatal("nil")
	}
	if _, err := ProxyURL(&config.ProxyConfig{Type: "ftp", Host: "h", Port: 1}); err == nil {
		t.Fatal("ftp accepted")
	}
}
