package cmdutil

import "testing"

func TestDashboardURL(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"127.0.0.1", 3000, "http://127.0.0.1:3000/dashboard"},
		{"0.0.0.0", 3000, "http://127.0.0.1:3000/dashboard"},
		{"", 8080, "http://127.0.0.1:8080/dashboard"},
		{"::", 3000, "http://127.0.0.1:3000/dashboard"},
		{"[::]", 3000, "http://127.0.0.1:3000/dashboard"},
		{"::1", 3000, "http://[::1]:3000/dashboard"},
		{"relay.example.com", 443, "http://relay.example.com:443/dashboard"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := DashboardURL(tt.host, tt.port); got != tt.want {
				t.Errorf("DashboardURL(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
			}
		})
	}
}
