package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
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
