package gemini

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCall(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		want    Call
		wantErr bool
	}{
		{name: "stream v1beta", path: "/v1beta/models/gemini-2.5-pro:streamGenerateContent", want: Call{"v1beta", "gemini-2.5-pro", MethodStream}},
		{name: "generate v1", path: "/v1/models/gemini-2.5-flash-lite:generateContent", want: Call{"v1", "gemini-2.5-flash-lite", MethodGenerate}},
		{name: "count tokens", path: "/v1beta/models/gemini-2.5-flash:countTokens", want: Call{"v1beta", "gemini-2.5-flash", MethodCountTokens}},
		{name: "no leading slash", path: "v1beta/models/gemini-2.5-pro:generateContent", want: Call{"v1beta", "gemini-2.5-pro", MethodGenerate}},
		{name: "dotted tuned name", path: "/v1beta/models/my-tuned.model_v2.001:generateContent", want: Call{"v1beta", "my-tuned.model_v2.001", MethodGenerate}},
		{name: "preview name", path: "/v1beta/models/gemini-3.1-pro-preview:streamGenerateContent", want: Call{"v1beta", "gemini-3.1-pro-preview", MethodStream}},
		{name: "max length model", path: "/v1beta/models/" + strings.Repeat("a", 128) + ":generateContent", want: Call{"v1beta", strings.Repeat("a", 128), MethodGenerate}},

		{name: "empty", path: "", wantErr: true},
		{name: "slash only", path: "/", wantErr: true},
		{name: "dot dot slash", path: "/v1beta/models/../../etc/passwd:generateContent", wantErr: true},
		{name: "dot dot in name", path: "/v1beta/models/gemini..pro:generateContent", wantErr: true},
		{name: "dot dot alone", path: "/v1beta/models/..:generateContent", wantErr: true},
		{name: "leading dot", path: "/v1beta/models/.hidden:generateContent", wantErr: true},
		{name: "leading dash", path: "/v1beta/models/-x:generateContent", wantErr: true},
		{name: "escaped dot dot", path: "/v1beta/models/%2e%2e:generateContent", wantErr: true},
		{name: "escaped slash", path: "/v1beta/models/a%2Fb:generateContent", wantErr: true},
		{name: "slash in model", path: "/v1beta/models/a/b:generateContent", wantErr: true},
		{name: "models twice", path: "/v1beta/models/models/gemini-2.5-pro:generateContent", wantErr: true},
		{name: "query in model", path: "/v1beta/models/x?alt=:generateContent", wantErr: true},
		{name: "query after method", path: "/v1beta/models/x:streamGenerateContent?alt=sse", wantErr: true},
		{name: "fragment", path: "/v1beta/models/x#y:generateContent", wantErr: true},
		{name: "backslash", path: "/v1beta/models/a\\b:generateContent", wantErr: true},
		{name: "space", path: "/v1beta/models/a b:generateContent", wantErr: true},
		{name: "unicode", path: "/v1beta/models/gémini:generateContent", wantErr: true},
		{name: "overlong model", path: "/v1beta/models/" + strings.Repeat("a", 129) + ":generateContent", wantErr: true},
		{name: "overlong path", path: "/v1beta/models/x:generateContent" + strings.Repeat("a", 600), wantErr: true},
		{name: "empty model", path: "/v1beta/models/:generateContent", wantErr: true},
		{name: "no method", path: "/v1beta/models/gemini-2.5-pro", wantErr: true},
		{name: "empty method", path: "/v1beta/models/gemini-2.5-pro:", wantErr: true},
		{name: "unknown method", path: "/v1beta/models/gemini-2.5-pro:embedContent", wantErr: true},
		{name: "double colon", path: "/v1beta/models/gemini-2.5-pro::generateContent", wantErr: true},
		{name: "method trailing slash", path: "/v1beta/models/gemini-2.5-pro:generateContent/", wantErr: true},
		{name: "unknown version", path: "/v1alpha/models/gemini-2.5-pro:generateContent", wantErr: true},
		{name: "internal", path: "/v1internal:generateContent", wantErr: true},
		{name: "no models segment", path: "/v1beta/gemini-2.5-pro:generateContent", wantErr: true},
		{name: "tuned models collection", path: "/v1beta/tunedModels/x:generateContent", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCall(tt.path)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseCall(%q) = %+v, want error", tt.path, got)
				}
				if !errors.Is(err, ErrInvalidPath) {
					t.Errorf("error %v does not wrap ErrInvalidPath", err)
				}
				// The message is shown to clients: it must not echo input.
				if len(tt.path) > 3 && strings.Contains(err.Error(), tt.path) {
					t.Errorf("error %q echoes the path", err)
				}
				if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
					t.Errorf("error %q does not start lowercase", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCall(%q): %v", tt.path, err)
			}
			if got != tt.want {
				t.Errorf("ParseCall(%q) = %+v, want %+v", tt.path, got, tt.want)
			}
		})
	}
}

func TestValidModel(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"gemini-2.5-pro", true},
		{"gemini-2.5-flash-lite", true},
		{"a", true},
		{"9x", true},
		{"tuned.model-1_a", true},
		{"", false},
		{"models/gemini-2.5-pro", false},
		{"a..b", false},
		{".a", false},
		{"_a", false},
		{"a:b", false},
		{strings.Repeat("x", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidModel(tt.name); got != tt.want {
				t.Errorf("ValidModel(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestPublicURL(t *testing.T) {
	tests := []struct {
		name string
		base string
		call Call
		want string
	}{
		{"default base stream", "", Call{"v1beta", "gemini-2.5-pro", MethodStream}, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent"},
		{"default base unary", "", Call{"v1", "gemini-2.5-flash", MethodGenerate}, "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash:generateContent"},
		{"count tokens has no alt", "", Call{"v1beta", "gemini-2.5-flash", MethodCountTokens}, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:countTokens"},
		{"custom base trailing slashes", "http://127.0.0.1:9000//", Call{"v1beta", "m", MethodGenerate}, "http://127.0.0.1:9000/v1beta/models/m:generateContent"},
		{"custom base with path", "https://proxy.example/gemini/", Call{"v1beta", "m", MethodStream}, "https://proxy.example/gemini/v1beta/models/m:streamGenerateContent"},
		{"empty version", "", Call{"", "m", MethodGenerate}, "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PublicURL(tt.base, tt.call); got != tt.want {
				t.Errorf("PublicURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCodeAssistURL(t *testing.T) {
	tests := []struct {
		name string
		base string
		call Call
		want string
	}{
		{"default stream", "", Call{"v1beta", "gemini-2.5-pro", MethodStream}, "https://cloudcode-pa.googleapis.com/v1internal:streamGenerateContent"},
		{"default unary", "", Call{"v1beta", "gemini-2.5-pro", MethodGenerate}, "https://cloudcode-pa.googleapis.com/v1internal:generateContent"},
		{"count tokens", "", Call{"v1beta", "gemini-2.5-pro", MethodCountTokens}, "https://cloudcode-pa.googleapis.com/v1internal:countTokens"},
		{"trailing slash", "http://127.0.0.1:1/", Call{Method: MethodGenerate}, "http://127.0.0.1:1/v1internal:generateContent"},
		{"already versioned", "http://127.0.0.1:1/v1internal", Call{Method: MethodGenerate}, "http://127.0.0.1:1/v1internal:generateContent"},
		{"already versioned slash", "http://127.0.0.1:1/v1internal/", Call{Method: MethodStream}, "http://127.0.0.1:1/v1internal:streamGenerateContent"},
		{"relay prefix", "http://relay:3000/gemini", Call{Method: MethodGenerate}, "http://relay:3000/gemini/v1internal:generateContent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeAssistURL(tt.base, tt.call); got != tt.want {
				t.Errorf("CodeAssistURL = %q, want %q", got, tt.want)
			}
		})
	}
}
