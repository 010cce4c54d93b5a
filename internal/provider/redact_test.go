package provider

import (
	"strings"
	"testing"
)

func TestRedactSecrets(t *testing.T) {
	// An OpenAI (Codex sign-in) access token: a JSON Web Token.
	const jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOlsiaHR0cHM6Ly9hcGkub3BlbmFpLmNvbS92MSJdLCJjbGllbnRfaWQiOiJhcHBfWCJ9.c2lnbmF0dXJlLXBhcnQtMDEyMzQ1Njc4OQ"
	tests := []struct{ in, want string }{
		{"token " + jwt + " expired", "token [redacted] expired"},
		{"Bearer " + jwt, "Bearer [redacted]"},
		{`{"detail":"bad token ` + jwt + `"}`, `{"detail":"bad token [redacted]"}`},
		{"unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. here", "unsigned [redacted] here"},
		{"Consumer 'api_key:AIzaSyA-0123456789abcdefghijklmnopqrstu' suspended", "Consumer 'api_key:[redacted]' suspended"},
		{"bad sk-ant-oat01-abcdefghijklmnop here", "bad [redacted] here"},
		{"bad sk-proj-abcdefghijklmnopqrstuvwxyz0123", "bad [redacted]"},
		{"Bearer ya29.a0AfB_byC-abcdefghijklmnopqrstuv", "Bearer [redacted]"},
		{"refresh 1//0gabcdefghijklmnopqrstuvwxyz", "refresh [redacted]"},
		{"secret GOCSPX-abcdefghijklmnop", "secret [redacted]"},
		{"nothing secret: sk-short, model claude-sonnet-4-5, eyJ alone, a.b.c", "nothing secret: sk-short, model claude-sonnet-4-5, eyJ alone, a.b.c"},
	}
	for _, tt := range tests {
		if got := RedactSecrets(tt.in); got != tt.want {
			t.Errorf("RedactSecrets(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := RedactSecrets(jwt); strings.Contains(got, "eyJ") {
		t.Errorf("a bare JWT survived: %q", got)
	}
}
