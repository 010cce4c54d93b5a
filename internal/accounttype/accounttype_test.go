package accounttype

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRegistryComplete checks that every registered type is fully described:
// a type that forgot a field would panic or misbehave in some layer far away.
func TestRegistryComplete(t *testing.T) {
	seen := map[string]bool{}
	logins := map[string]bool{}
	for _, s := range All() {
		t.Run(s.Type, func(t *testing.T) {
			if s.Type == "" || seen[s.Type] {
				t.Fatalf("empty or duplicate type %q", s.Type)
			}
			seen[s.Type] = true
			if s.Display == "" || s.BaseURL == nil || s.Authenticate == nil || s.Probe == nil {
				t.Fatalf("incomplete spec: %+v", s)
			}
			switch s.Platform {
			case PlatformClaude, PlatformGemini, PlatformOpenAI, PlatformCompat:
			default:
				t.Fatalf("platform %q", s.Platform)
			}
			want := map[Credential]string{APIKey: "api_key", OAuth: "refresh_token", Token: "token"}[s.Credential]
			if s.SecretKey != want {
				t.Fatalf("%s credential in %q, want %q", s.Credential, s.SecretKey, want)
			}
			if (s.Credential == OAuth) != (s.Refresh != nil) {
				t.Fatalf("Refresh must be set exactly for OAuth types")
			}
			if s.Login != nil {
				if s.Credential != OAuth || s.Login.Name == "" || logins[s.Login.Name] || s.Login.AuthURL == "" || s.Login.Short == "" || s.Login.Long == "" || s.Login.Note == "" {
					t.Fatalf("incomplete or duplicate login %+v", s.Login)
				}
				logins[s.Login.Name] = true
				if LoginFor(s.Login.Name) != s {
					t.Fatalf("LoginFor(%q) is not this spec", s.Login.Name)
				}
			}
			if (s.IDTokenAccount != nil) != (s.UpstreamAccountKey != "") {
				t.Fatalf("IDTokenAccount and UpstreamAccountKey go together")
			}
			if Lookup(s.Type) != s {
				t.Fatalf("Lookup(%q) is not this spec", s.Type)
			}
			if s.URLRequired != (s.BaseURL("") == "") || !s.URLRequired && !strings.HasPrefix(s.BaseURL(""), "https://") {
				t.Fatalf("default base URL %q (URLRequired %v)", s.BaseURL(""), s.URLRequired)
			}
			if s.SecretOptional && s.Credential != APIKey {
				t.Fatalf("only an API key may be optional")
			}
			if (s.Platform == PlatformCompat) != s.ListsModels {
				t.Fatalf("the compat pool is the accounts that list their models (ListsModels)")
			}
			if got := s.BaseURL("http://mirror.test/"); !strings.HasPrefix(got, "http://mirror.test") || strings.HasSuffix(got, "/") {
				t.Fatalf("BaseURL(override) = %q", got)
			}
		})
	}
	if Lookup("nope") != nil || LoginFor("nope") != nil {
		t.Fatal("unknown names must give nil")
	}
	if got := strings.Join(Names(), ","); !strings.HasPrefix(got, "claude-oauth,claude-api,gemini,gemini-api,openai-responses") {
		t.Fatalf("Names() = %s: the original's order comes first", got)
	}
}

// TestAuthenticate pins the headers each type puts on an upstream request.
func TestAuthenticate(t *testing.T) {
	tests := []struct {
		typ    string
		client http.Header // what the client sent
		want   map[string]string
		absent []string
	}{
		{"claude-oauth", http.Header{"Anthropic-Beta": {"claude-code-20250219"}},
			map[string]string{"Authorization": "Bearer s3cret", "Anthropic-Beta": "claude-code-20250219,oauth-2025-04-20", "Anthropic-Version": "2023-06-01"}, []string{"X-Api-Key"}},
		{"claude-oauth", http.Header{"Anthropic-Beta": {"oauth-2025-04-20"}, "Anthropic-Version": {"2099-01-01"}},
			map[string]string{"Anthropic-Beta": "oauth-2025-04-20", "Anthropic-Version": "2099-01-01"}, nil},
		{"claude-token", http.Header{}, map[string]string{"Authorization": "Bearer s3cret", "Anthropic-Beta": "oauth-2025-04-20", "Anthropic-Version": "2023-06-01"}, []string{"X-Api-Key"}},
		{"claude-api", http.Header{}, map[string]string{"X-Api-Key": "s3cret", "Anthropic-Version": "2023-06-01"}, []string{"Authorization", "Anthropic-Beta"}},
		{"gemini", http.Header{}, map[string]string{"Authorization": "Bearer s3cret"}, []string{"X-Goog-Api-Key"}},
		{"gemini-api", http.Header{}, map[string]string{"X-Goog-Api-Key": "s3cret"}, []string{"Authorization"}},
		{"openai-responses", http.Header{}, map[string]string{"Authorization": "Bearer s3cret"}, nil},
		{"codex-oauth", http.Header{}, map[string]string{"Authorization": "Bearer s3cret", "Chatgpt-Account-Id": "ws-9", "Originator": "codex_cli_rs"}, nil},
		{"codex-oauth", http.Header{"Originator": {"codex_exec"}}, map[string]string{"Originator": "codex_exec"}, nil},
		{"openai-compatible", http.Header{}, map[string]string{"Authorization": "Bearer s3cret"}, []string{"X-Api-Key"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			h := tt.client.Clone()
			Lookup(tt.typ).Authenticate(h, Account{ID: "a", UpstreamAccount: "ws-9"}, "s3cret")
			for k, v := range tt.want {
				if got := strings.Join(h.Values(k), ","); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.absent {
				if h.Get(k) != "" {
					t.Errorf("%s set: %q", k, h.Get(k))
				}
			}
		})
	}
}

// TestProbe pins each type's probe: method, URL (default and api_url) and auth.
func TestProbe(t *testing.T) {
	tests := []struct {
		typ, apiURL, method, url, body, authHeader string
	}{
		{"claude-oauth", "", "GET", "https://api.anthropic.com/v1/models", "", "Authorization"},
		{"claude-token", "", "GET", "https://api.anthropic.com/v1/models", "", "Authorization"},
		{"claude-api", "https://mirror.test/v1/", "GET", "https://mirror.test/v1/models", "", "X-Api-Key"},
		{"gemini", "", "POST", "https://cloudcode-pa.googleapis.com/v1internal:loadCodeAssist",
			`{"metadata":{"ideType":"IDE_UNSPECIFIED","platform":"PLATFORM_UNSPECIFIED","pluginType":"GEMINI"}}`, "Authorization"},
		{"gemini", "http://ca.test/v1internal/", "POST", "http://ca.test/v1internal:loadCodeAssist", "", "Authorization"},
		{"gemini-api", "", "GET", "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1", "", "X-Goog-Api-Key"},
		{"openai-responses", "http://oa.test/v1/", "GET", "http://oa.test/v1/models", "", "Authorization"},
		{"codex-oauth", "", "GET", "https://chatgpt.com/backend-api/codex/models?client_version=0.1.0", "", "Authorization"},
		{"openai-compatible", "https://api.deepseek.com/v1/", "GET", "https://api.deepseek.com/v1/models", "", "Authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.apiURL, func(t *testing.T) {
			req, err := Lookup(tt.typ).Probe(context.Background(), Account{ID: "a", APIURL: tt.apiURL}, "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != tt.method || req.URL.String() != tt.url {
				t.Fatalf("%s %s, want %s %s", req.Method, req.URL, tt.method, tt.url)
			}
			if !strings.Contains(req.Header.Get(tt.authHeader), "s3cret") {
				t.Fatalf("no credential in %s: %v", tt.authHeader, req.Header)
			}
			if tt.body != "" {
				b, _ := io.ReadAll(req.Body)
				if string(b) != tt.body {
					t.Fatalf("body %s, want %s", b, tt.body)
				}
			}
		})
	}
}

func TestRefreshClient(t *testing.T) {
	g := Lookup("gemini").Refresh
	tests := []struct {
		name               string
		url, id, secret    string
		wURL, wID, wSecret string
	}{
		{"defaults", "", "", "", GoogleTokenURL, GoogleClientID, GoogleClientSecret},
		{"default id written out", "", GoogleClientID, "", GoogleTokenURL, GoogleClientID, GoogleClientSecret},
		{"own client, no secret", "", "mine", "", GoogleTokenURL, "mine", ""},
		{"own client and secret", "https://t.test", "mine", "s", "https://t.test", "mine", "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, id, sec := g.Client(tt.url, tt.id, tt.secret)
			if u != tt.wURL || id != tt.wID || sec != tt.wSecret {
				t.Fatalf("Client = %q %q %q", u, id, sec)
			}
		})
	}
}

func TestRenew(t *testing.T) {
	if got := Lookup("claude-oauth").Renew("c1"); got != "ccrelay login claude --account c1" {
		t.Fatalf("claude-oauth: %q", got)
	}
	if got := Lookup("gemini").Renew("g"); got != "ccrelay login gemini --account g" {
		t.Fatalf("gemini: %q", got)
	}
	if got := Lookup("codex-oauth").Renew("cx"); got != "ccrelay login codex --account cx" {
		t.Fatalf("codex-oauth: %q", got)
	}
	if got := Lookup("claude-token").Renew("t"); !strings.HasPrefix(got, "claude setup-token") {
		t.Fatalf("claude-token: %q", got)
	}
	if got := Lookup("claude-api").Renew("k"); got != "" {
		t.Fatalf("claude-api: %q", got)
	}
}

// TestCodexIDTokenAccount: the ChatGPT account a login or refresh reads from
// OpenAI's id token, and the config key login writes it to.
func TestCodexIDTokenAccount(t *testing.T) {
	s := Lookup("codex-oauth")
	enc := base64.RawURLEncoding.EncodeToString
	idToken := enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"email":"a@b.c","https://api.openai.com/auth":{"chatgpt_account_id":"ws-7"}}`)) + ".sig"
	if got := s.IDTokenAccount(idToken); got != "ws-7" || s.UpstreamAccountKey != "chatgpt_account_id" {
		t.Fatalf("IDTokenAccount = %q, key %q", got, s.UpstreamAccountKey)
	}
	if !s.NoModelList || Lookup("openai-responses").NoModelList {
		t.Fatal("only codex-oauth lacks the public model list")
	}
	// Nor has the ChatGPT backend /responses/input_tokens; no Chat vendor
	// has a count method either.
	if !s.NoTokenCount || Lookup("openai-responses").NoTokenCount || !Lookup("openai-compatible").NoTokenCount {
		t.Fatal("codex-oauth and openai-compatible have no token count; openai-responses has")
	}
}

// A local server takes no key: an openai-compatible account without one
// sends no Authorization at all (not "Bearer ").
func TestCompatWithoutKey(t *testing.T) {
	s := Lookup("openai-compatible")
	h := http.Header{}
	s.Authenticate(h, Account{ID: "ollama"}, "")
	if _, ok := h["Authorization"]; ok {
		t.Fatalf("Authorization %q sent without a key", h.Get("Authorization"))
	}
	req, err := s.Probe(context.Background(), Account{ID: "ollama", APIURL: "http://localhost:11434/v1"}, "")
	if err != nil || req.URL.String() != "http://localhost:11434/v1/models" || req.Header.Get("Authorization") != "" {
		t.Fatalf("probe %v %v", req, err)
	}
}
