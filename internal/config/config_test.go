package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// originalConfig is the original relay's config.example.toml shape.
const originalConfig = `# Claude Relay RS
api_keys = ["key-1", "key-2"]

[server]
host = "0.0.0.0"
port = 3000
database_path = "data/relay.db"
log_level = "info"

[session]
sticky_ttl_seconds = 3600
renewal_threshold_seconds = 300
unavailable_cooldown_seconds = 3600

[[accounts]]
type = "claude-oauth"
id = "claude-1"
name = "Claude OAuth Account"
priority = 100
enabled = true
refresh_token = "your-refresh-token"

[accounts.proxy]
type = "socks5"
host = "127.0.0.1"
port = 1080
username = "user"
password = "pass"

[[accounts]]
type = "claude-api"
id = "claude-api-1"
name = "Claude API Account"
priority = 50
api_key = "sk-ant-xxx"
api_url = "https://api.anthropic.com"

[[accounts]]
type = "gemini"
id = "gemini-1"
name = "Gemini Account"
refresh_token = "your-gemini-refresh-token"

[[accounts]]
type = "openai-responses"
id = "codex-1"
name = "Codex Account"
api_key = "sk-xxx"
api_url = "https://api.openai.com/v1"
`

func TestParseOriginalConfig(t *testing.T) {
	cfg, err := Parse([]byte(originalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.APIKeys) != 2 || cfg.Server.Host != "0.0.0.0" || cfg.Server.Port != 3000 {
		t.Fatalf("server: %+v keys %v", cfg.Server, cfg.APIKeys)
	}
	if len(cfg.Accounts) != 4 {
		t.Fatalf("accounts: %d", len(cfg.Accounts))
	}
	a := cfg.Accounts[0]
	if a.Proxy == nil || a.Proxy.Type != "socks5" || a.Proxy.Port != 1080 || a.Proxy.Password != "pass" {
		t.Fatalf("proxy: %+v", a.Proxy)
	}
	if g := cfg.Accounts[2]; g.Priority != 100 || !g.Enabled {
		t.Fatalf("defaults not applied: %+v", g)
	}
	if cfg.Accounts[1].Priority != 50 || cfg.Accounts[1].Platform() != "claude" || cfg.Accounts[3].Platform() != "openai" {
		t.Fatal("priority/platform")
	}
	if cfg.Server.MaxAttempts != 3 || cfg.Server.MaxBodyBytes != 32<<20 || cfg.Session.OverloadCooldownSeconds != 300 {
		t.Fatalf("new defaults: %+v %+v", cfg.Server, cfg.Session)
	}
}

func TestEnabledFalseKept(t *testing.T) {
	cfg, err := Parse([]byte("[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\nenabled = false\npriority = 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Accounts[0].Enabled || cfg.Accounts[0].Priority != 0 {
		t.Fatalf("explicit values lost: %+v", cfg.Accounts[0])
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadFile(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != len(AccountTypes) { // one example per type
		t.Fatalf("example accounts: %d", len(cfg.Accounts))
	}
	seen := map[string]bool{}
	for _, a := range cfg.Accounts {
		seen[a.Type] = true
	}
	for _, ty := range AccountTypes {
		if !seen[ty] {
			t.Errorf("config.example.toml has no %s account", ty)
		}
	}
}

// Every key of the Config struct (found by reflection, so a new field cannot
// be forgotten) must appear in config.example.toml.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for i := 0; i < rt.NumField(); i++ {
			tag := strings.Split(rt.Field(i).Tag.Get("toml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			ft := rt.Field(i).Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, path+tag+".")
				continue
			}
			if !strings.Contains(text, "\n"+tag+" =") && !strings.Contains(text, "# "+tag+" =") && !strings.Contains(text, "["+tag+"]") {
				t.Errorf("config.example.toml does not document %s%s", path, tag)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings, all must appear
	}{
		{"api_keys at the top and under server", "api_keys = [\"a\"]\n[server]\nport = 3000\napi_keys = [\"k\"]\n", []string{"line 4", "server.api_keys", "both at the top level and inside [server]"}},
		{"api_keys under server not strings", "[server]\napi_keys = [1]\n", []string{"line 2", "server.api_keys[0]", "must be a string"}},
		{"unknown top key", "api_key = [\"k\"]\n", []string{"line 1", "api_key", "unknown key"}},
		{"unknown account key", "[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\nprioritty = 3\n", []string{"line 5", "accounts[0].prioritty", "unknown key"}},
		{"wrong type", "[server]\nport = \"3000\"\n", []string{"line 2", "server.port", "must be an integer, not a string"}},
		{"syntax", "[server\nport = 1\n", []string{"line ", "table name"}},
		{"missing token", "[[accounts]]\ntype = \"claude-oauth\"\nid = \"c1\"\n", []string{"line 1", "refresh_token", "ccrelay login claude --account c1"}},
		{"bad type", "[[accounts]]\ntype = \"claude\"\nid = \"c1\"\n", []string{"line 2", "unknown account type"}},
		{"duplicate ids", "[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n", []string{"line 7", "duplicate account id"}},
		{"bad proxy", "[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n[accounts.proxy]\ntype = \"ftp\"\nhost = \"h\"\nport = 1\n", []string{"line 6", "socks5 or http"}},
		{"header injection", "[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\\r\\nX-Evil: 1\"\n", []string{"line 4", "line breaks"}},
		{"bad port", "[server]\nport = 70000\n", []string{"line 2", "between 1 and 65535"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The original relay's README example puts api_keys inside [server], where
// the original ignored it; ccrelay takes the keys as the relay keys and
// warns, naming the line and where it belongs (issue 31, item 15).
func TestServerAPIKeysAreTheRelayKeys(t *testing.T) {
	src := "[server]\nhost = \"0.0.0.0\"\nport = 3000\napi_keys = [\"key-1\", \"key-2\"]\n\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\n"
	cfg, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.APIKeys, []string{"key-1", "key-2"}) || cfg.Server.Port != 3000 {
		t.Fatalf("api keys %v, server %+v", cfg.APIKeys, cfg.Server)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("warnings %v", cfg.Warnings)
	}
	w := cfg.Warnings[0].String()
	for _, want := range []string{"line 4", "server.api_keys", "belongs at the top level", "move the line to the top of the file"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q lacks %q", w, want)
		}
	}
	if strings.Contains(w, "key-1") {
		t.Error("the warning shows a key")
	}
	// In its right place the line gives no warning.
	cfg, err = Parse([]byte("api_keys = [\"key-1\"]\n[server]\nport = 3000\n"))
	if err != nil || len(cfg.Warnings) != 0 {
		t.Fatalf("%v %v", err, cfg.Warnings)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	src := "[server]\nport = \"x\"\nlog_level = 3\nadmin_keys = []\n[[accounts]]\ntype = \"nope\"\nid = \"a\"\nbogus = 1\n"
	_, err := Parse([]byte(src))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	if len(ce.Problems) != 4 {
		t.Fatalf("want 4 problems (2 types, 2 unknown keys), got %d: %v", len(ce.Problems), err)
	}
	// Value problems are reported together too.
	_, err = Parse([]byte("[server]\nport = -1\nlog_level = \"loud\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\n"))
	if !errors.As(err, &ce) || len(ce.Problems) < 3 {
		t.Fatalf("want >=3 problems, got %v", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir}
	getenv := func(k string) string { return env[k] }
	t.Chdir(dir)
	if _, err := Find("", getenv); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	xdg := filepath.Join(dir, ".config", "ccrelay", "config.toml")
	os.MkdirAll(filepath.Dir(xdg), 0o700)
	os.WriteFile(xdg, []byte(""), 0o600)
	if p, _ := Find("", getenv); p != xdg {
		t.Fatalf("xdg: %s", p)
	}
	os.WriteFile("config.toml", []byte(""), 0o600)
	if p, _ := Find("", getenv); p != "config.toml" {
		t.Fatalf("cwd: %s", p)
	}
	env["CCRELAY_CONFIG"] = filepath.Join(dir, "missing.toml")
	if _, err := Find("", getenv); err == nil || !strings.Contains(err.Error(), "CCRELAY_CONFIG") {
		t.Fatalf("missing $CCRELAY_CONFIG must be an error, got %v", err)
	}
	if _, err := Find(filepath.Join(dir, "nope.toml"), getenv); err == nil {
		t.Fatal("missing --config must be an error")
	}
}

func TestOverrides(t *testing.T) {
	cfg := Default()
	t.Setenv("CCRELAY_PORT", "4000")
	t.Setenv("CCRELAY_API_KEYS", "a, b")
	v := NewViper()
	if err := cfg.ApplyOverrides(v); err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Port != 4000 || len(cfg.APIKeys) != 2 || cfg.APIKeys[1] != "b" {
		t.Fatalf("env not applied: %+v %v", cfg.Server, cfg.APIKeys)
	}
	v.Set("server.port", 5000) // what a bound flag does
	cfg.ApplyOverrides(v)
	if cfg.Server.Port != 5000 {
		t.Fatal("flag must win over env")
	}
	t.Setenv("CCRELAY_LOG_LEVEL", "loud")
	if err := cfg.ApplyOverrides(NewViper()); err == nil {
		t.Fatal("invalid override must fail validation")
	}
}

func TestAdminKeys(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr string
	}{
		{"ok", "api_keys = [\"relay-key-1\"]\nadmin_keys = [\"admin-key-0123456789\"]\n", ""},
		{"short", "admin_keys = [\"short\"]\n", "admin_keys[0]"},
		{"same as a relay key", "api_keys = [\"same-key-0123456789\"]\nadmin_keys = [\"same-key-0123456789\"]\n", "differ from every relay key"},
		{"under a table", "[server]\nadmin_keys = [\"admin-key-0123456789\"]\n", "Move the admin_keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.src))
			if tt.wantErr == "" {
				if err != nil || len(cfg.AdminKeys) != 1 {
					t.Fatalf("err %v cfg %+v", err, cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "0123456789") {
				t.Fatalf("error shows the key: %v", err)
			}
		})
	}
}

// A seconds setting too large for a Duration saturates; it never wraps into a
// negative or short one.
func TestSecondsSaturates(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 90: 90 * time.Second, math.MaxInt64: math.MaxInt64, 1 << 40: math.MaxInt64} {
		if got := Seconds(n); got != want {
			t.Errorf("Seconds(%d) = %v, want %v", n, got, want)
		}
	}
}

// openai-compatible accounts: api_url and models are required, the key is
// optional, model_map, stream_usage and json_schema are read; other types refuse those
// keys.
func TestOpenAICompatibleAccount(t *testing.T) {
	const ok = "[[accounts]]\ntype = \"openai-compatible\"\nid = \"ollama\"\napi_url = \"http://localhost:11434/v1\"\nmodels = [\"llama3*\"]\n" +
		"stream_usage = false\njson_schema = false\nmodel_map = { \"llama3\" = \"llama3.2:3b\" }\n"
	cfg, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	a := &cfg.Accounts[0]
	if a.Platform() != "compat" || a.AsksStreamUsage() || a.TakesJSONSchema() || a.SendModel("llama3") != "llama3.2:3b" || a.SendModel("llama3.1") != "llama3.1" {
		t.Fatalf("account %+v", a)
	}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"no models", "[[accounts]]\ntype = \"openai-compatible\"\nid = \"d\"\napi_url = \"https://api.deepseek.com/v1\"\n", []string{"accounts[0].models", "is required"}},
		{"no api_url", "[[accounts]]\ntype = \"openai-compatible\"\nid = \"d\"\nmodels = [\"deepseek-*\"]\n", []string{"accounts[0].api_url", "is required"}},
		{"bad glob", "[[accounts]]\ntype = \"openai-compatible\"\nid = \"d\"\napi_url = \"http://h\"\nmodels = [\"[\"]\n", []string{"accounts[0].models", "not a valid glob"}},
		{"models on a claude account", "[[accounts]]\ntype = \"claude-api\"\nid = \"c\"\napi_key = \"k\"\nmodels = [\"x\"]\n", []string{"accounts[0].models", "only taken by openai-compatible"}},
		{"json_schema on an openai account", "[[accounts]]\ntype = \"openai-responses\"\nid = \"o\"\napi_key = \"k\"\njson_schema = false\n", []string{"accounts[0].json_schema", "only taken by openai-compatible"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
