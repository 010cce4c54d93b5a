package server

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ccrelay/ccrelay/internal/relay"
)

// X-Forwarded-For is believed only from trusted proxies, read from the
// right: the first address that is not a trusted proxy is the client.
func TestClientAddr(t *testing.T) {
	s := &Server{}
	s.SetTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")})
	tests := []struct {
		name, peer, xff string
		want            string
		via             bool
	}{
		{"no proxy", "203.0.113.5:1", "", "203.0.113.5", false},
		{"untrusted peer's header ignored", "203.0.113.5:1", "198.51.100.9", "203.0.113.5", false},
		{"trusted proxy", "10.0.0.2:1", "198.51.100.9", "198.51.100.9", true},
		{"spoofed left entry ignored", "10.0.0.2:1", "1.2.3.4, 198.51.100.9", "198.51.100.9", true},
		{"chain of trusted proxies", "127.0.0.1:1", "198.51.100.9, 10.0.0.3", "198.51.100.9", true},
		{"trusted proxy without header", "10.0.0.2:1", "", "10.0.0.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			got, via := s.clientAddr(r)
			if got.String() != tt.want || via != tt.via {
				t.Fatalf("clientAddr = %s, %v; want %s, %v", got, via, tt.want, tt.via)
			}
		})
	}
}

// The middleware marks a request that reached the relay over TLS: its own
// connection, or a trusted proxy's X-Forwarded-Proto: https (the first
// entry, the one the client-facing proxy set). An untrusted peer's header
// means nothing.
func TestClientTLS(t *testing.T) {
	tests := []struct {
		name, peer, xfp string
		tls             bool
		want            bool
	}{
		{"plain", "10.0.0.2:1", "", false, false},
		{"trusted proxy says https", "10.0.0.2:1", "https", false, true},
		{"trusted proxy says HTTPS", "10.0.0.2:1", "HTTPS", false, true},
		{"trusted proxy says http", "10.0.0.2:1", "http", false, false},
		{"chain: the first entry counts", "10.0.0.2:1", "https, http", false, true},
		{"untrusted peer says https", "203.0.113.5:1", "https", false, false},
		{"the relay's own TLS", "203.0.113.5:1", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *relay.Info
			s := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = relay.InfoFrom(r.Context()) }), nil, slog.New(slog.DiscardHandler))
			s.SetTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
			r := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
			r.RemoteAddr = tt.peer
			if tt.xfp != "" {
				r.Header.Set("X-Forwarded-Proto", tt.xfp)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			s.srv.Handler.ServeHTTP(httptest.NewRecorder(), r)
			if got == nil || got.ClientTLS != tt.want {
				t.Fatalf("ClientTLS = %v, want %v", got != nil && got.ClientTLS, tt.want)
			}
		})
	}
}
