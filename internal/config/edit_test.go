package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/BurntSushi/toml"
)

// editTestConfig has everything a naive line editor trips over: comments,
// two accounts, a proxy sub-table, a multi-line string and an array that
// contain fake [[accounts]] headers and ids, quoted keys and indentation.
const editTestConfig = `# ccrelay config — hand-written, comments must survive
api_keys = ["relay-key-1"]  # [[accounts]] in a comment

[server]
host = "127.0.0.1"
port = 3000

# The main subscription.
[[accounts]]
type = "claude-oauth"
id = "claude-1"   # keep this comment
name = "Main"
refresh_token = "sk-ant-ort01-old" # rotated by ccrelay login
priority = 100

[accounts.proxy]
type = "socks5"
host = "127.0.0.1"
port = 1080

[[ accounts ]]
  type = "gemini"
  "id" = 'gemini-1'
  name = """
[[accounts]]
id = "ghost"
refresh_token = "x"
"""
  priority = [
    1, # not an id = "ghost2"
    "]", '[[accounts]]',
  ]
  enabled = false

[session]
sticky_ttl_seconds = 3600
`

func editTestWrite(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // the umask may have narrowed it
		t.Fatal(err)
	}
	return path
}

func editTestRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func editTestMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode = %v, want %v", got, want)
	}
}

// editTestAccount decodes path and returns the account with id.
func editTestAccount(t *testing.T, path, id string) (map[string]any, map[string]any) {
	t.Helper()
	var doc map[string]any
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		t.Fatalf("result does not parse: %v", err)
	}
	accounts, _ := doc["accounts"].([]map[string]any)
	for _, a := range accounts {
		if a["id"] == id {
			return doc, a
		}
	}
	t.Fatalf("account %q not in result", id)
	return nil, nil
}

func TestSetAccountField(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		id        string
		key       string
		value     string
		want      string // the whole expected file
		wantError string
	}{
		{
			name:   "replace keeps comment",
			config: editTestConfig,
			id:     "claude-1", key: "refresh_token", value: "sk-ant-ort01-new",
			want: strings.Replace(editTestConfig,
				`refresh_token = "sk-ant-ort01-old" # rotated`,
				`refresh_token = "sk-ant-ort01-new" # rotated`, 1),
		},
		{
			name:   "insert after indented quoted id",
			config: editTestConfig,
			id:     "gemini-1", key: "refresh_token", value: "1//0g-token",
			want: strings.Replace(editTestConfig,
				"  \"id\" = 'gemini-1'\n",
				"  \"id\" = 'gemini-1'\n  refresh_token = \"1//0g-token\"\n", 1),
		},
		{
			name:   "replace non-string value",
			config: editTestConfig,
			id:     "gemini-1", key: "enabled", value: "yes",
			want: strings.Replace(editTestConfig, "enabled = false", `enabled = "yes"`, 1),
		},
		{
			name:   "replace multi-line value",
			config: "[[accounts]]\nid = \"a\"\nrefresh_token = '''\nold\n'''  # note\nname = \"n\"\n",
			id:     "a", key: "refresh_token", value: "new",
			want: "[[accounts]]\nid = \"a\"\nrefresh_token = \"new\"  # note\nname = \"n\"\n",
		},
		{
			name:   "crlf",
			config: "[[accounts]]\r\nid = \"a\"\r\n\r\n[[accounts]]\r\nid = \"b\"\r\n",
			id:     "b", key: "refresh_token", value: "t",
			want: "[[accounts]]\r\nid = \"a\"\r\n\r\n[[accounts]]\r\nid = \"b\"\r\nrefresh_token = \"t\"\r\n",
		},
		{
			name:   "id on last line without newline",
			config: "[[accounts]]\nid = \"a\"",
			id:     "a", key: "refresh_token", value: "t",
			want: "[[accounts]]\nid = \"a\"\nrefresh_token = \"t\"",
		},
		{
			name:   "escaping",
			config: "[[accounts]]\nid = \"a\"\n",
			id:     "a", key: "name", value: "q\"b\\s\tc\x01\x7fé",
			want: "[[accounts]]\nid = \"a\"\nname = \"q\\\"b\\\\s\\tc\\u0001\\u007Fé\"\n",
		},
		{
			name:   "ghost in multi-line string",
			config: editTestConfig, id: "ghost", key: "refresh_token", value: "x",
			wantError: `no account with id "ghost"`,
		},
		{
			name:   "ghost in array comment",
			config: editTestConfig, id: "ghost2", key: "refresh_token", value: "x",
			wantError: `no account with id "ghost2"`,
		},
		{
			name:   "missing account",
			config: editTestConfig, id: "nope", key: "refresh_token", value: "x",
			wantError: `no account with id "nope"`,
		},
		{
			name:   "inline accounts",
			config: "accounts = [{id = \"a\"}]\n", id: "a", key: "refresh_token", value: "x",
			wantError: "not written as an [[accounts]] table",
		},
		{
			name:   "key is a sub-table",
			config: editTestConfig, id: "claude-1", key: "proxy", value: "x",
			wantError: "nothing written",
		},
		{
			name:   "broken file",
			config: "[[accounts]\nid = 1\n", id: "a", key: "k", value: "x",
			wantError: "parse",
		},
		{
			name:   "invalid utf-8",
			config: editTestConfig, id: "claude-1", key: "name", value: "\xff",
			wantError: "not valid UTF-8",
		},
		{
			name:   "id",
			config: editTestConfig, id: "claude-1", key: "id", value: "other",
			wantError: "cannot be changed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := editTestWrite(t, tt.config, 0o600)
			err := SetAccountField(path, tt.id, tt.key, tt.value)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("SetAccountField error = %v, want one containing %q", err, tt.wantError)
				}
				if got := editTestRead(t, path); got != tt.config {
					t.Errorf("file changed despite the error:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetAccountField: %v", err)
			}
			if got := editTestRead(t, path); got != tt.want {
				t.Errorf("result differs.\ngot:\n%s\nwant:\n%s", got, tt.want)
			}
			if _, acct := editTestAccount(t, path, tt.id); acct[tt.key] != tt.value {
				t.Errorf("%s = %#v, want %q", tt.key, acct[tt.key], tt.value)
			}
			editTestMode(t, path, 0o600)
		})
	}
}

func TestEditInjectionStaysAString(t *testing.T) {
	const hostile = "\"\n[server]\nport = 1"
	tests := []struct {
		name string
		edit func(path string) error
		id   string
		key  string
	}{
		{
			name: "SetAccountField",
			edit: func(path string) error { return SetAccountField(path, "claude-1", "refresh_token", hostile) },
			id:   "claude-1", key: "refresh_token",
		},
		{
			name: "AppendAccount",
			edit: func(path string) error {
				return AppendAccount(path, []Field{{"id", "new"}, {"refresh_token", hostile}})
			},
			id: "new", key: "refresh_token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := editTestWrite(t, editTestConfig, 0o600)
			if err := tt.edit(path); err != nil {
				t.Fatalf("edit: %v", err)
			}
			doc, acct := editTestAccount(t, path, tt.id)
			if acct[tt.key] != hostile {
				t.Errorf("%s = %#v, want the hostile string verbatim", tt.key, acct[tt.key])
			}
			if port := doc["server"].(map[string]any)["port"]; port != int64(3000) {
				t.Errorf("server.port = %v, want 3000", port)
			}
			if n := strings.Count(editTestRead(t, path), "\n[server]"); n != 1 {
				t.Errorf("file has %d [server] headers, want 1", n)
			}
		})
	}
}

func TestAppendAccount(t *testing.T) {
	fields := []Field{
		{"type", "claude-oauth"},
		{"id", "claude-2"},
		{"name", "Second"},
		{"priority", 50},
		{"enabled", true},
		{"refresh_token", "sk-ant-ort01-x"},
	}
	block := "[[accounts]]\ntype = \"claude-oauth\"\nid = \"claude-2\"\nname = \"Second\"\npriority = 50\nenabled = true\nrefresh_token = \"sk-ant-ort01-x\"\n"
	tests := []struct {
		name      string
		config    *string // nil = no file
		perm      os.FileMode
		fields    []Field
		want      string
		wantError string
	}{
		{name: "after comments and sub-tables", config: editTestPtr(editTestConfig), perm: 0o600, fields: fields, want: editTestConfig + "\n" + block},
		{name: "tightens a readable file", config: editTestPtr(editTestConfig), perm: 0o644, fields: fields, want: editTestConfig + "\n" + block},
		{name: "no file", fields: fields, want: block},
		{name: "empty file", config: editTestPtr(""), perm: 0o600, fields: fields, want: block},
		{name: "no final newline", config: editTestPtr("api_keys = []"), perm: 0o600, fields: fields, want: "api_keys = []\n\n" + block},
		{name: "already ends with a blank line", config: editTestPtr("api_keys = []\n\n"), perm: 0o600, fields: fields, want: "api_keys = []\n\n" + block},
		{
			name: "crlf", config: editTestPtr("api_keys = []\r\n"), perm: 0o600, fields: fields,
			want: "api_keys = []\r\n\r\n" + strings.ReplaceAll(block, "\n", "\r\n"),
		},
		{
			name: "quoted key", config: editTestPtr(""), perm: 0o600,
			fields: []Field{{"id", "a"}, {"odd key", int64(-1)}},
			want:   "[[accounts]]\nid = \"a\"\n\"odd key\" = -1\n",
		},
		{name: "duplicate id", config: editTestPtr(editTestConfig), perm: 0o600, fields: []Field{{"id", "gemini-1"}}, wantError: `account "gemini-1" already exists`},
		{name: "no id", config: editTestPtr(editTestConfig), perm: 0o600, fields: []Field{{"name", "x"}}, wantError: `non-empty string "id"`},
		{name: "int id", config: editTestPtr(editTestConfig), perm: 0o600, fields: []Field{{"id", 7}}, wantError: `non-empty string "id"`},
		{name: "duplicate key", config: editTestPtr(editTestConfig), perm: 0o600, fields: []Field{{"id", "x"}, {"id", "y"}}, wantError: "given twice"},
		{name: "unsupported type", config: editTestPtr(editTestConfig), perm: 0o600, fields: []Field{{"id", "x"}, {"p", 1.5}}, wantError: "unsupported value type float64"},
		{name: "inline accounts", config: editTestPtr("accounts = [{id = \"a\"}]\n"), perm: 0o600, fields: fields, wantError: "not a list of [[accounts]] tables"},
		{name: "after a table", config: editTestPtr("[other]\n"), perm: 0o600, fields: []Field{{"id", "x"}, {"proxy", "p"}}, want: "[other]\n\n[[accounts]]\nid = \"x\"\nproxy = \"p\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if tt.config != nil {
				path = editTestWrite(t, *tt.config, tt.perm)
			}
			err := AppendAccount(path, tt.fields)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("AppendAccount error = %v, want one containing %q", err, tt.wantError)
				}
				if tt.config != nil {
					if got := editTestRead(t, path); got != *tt.config {
						t.Errorf("file changed despite the error:\n%s", got)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("AppendAccount: %v", err)
			}
			if got := editTestRead(t, path); got != tt.want {
				t.Errorf("result differs.\ngot:\n%q\nwant:\n%q", got, tt.want)
			}
			editTestMode(t, path, 0o600)
			id, _ := tt.fields[0].Value.(string)
			if tt.fields[0].Key != "id" {
				id = "claude-2"
			}
			editTestAccount(t, path, id)
		})
	}
}

// TestEditSequence runs the edits `ccrelay login` makes in a row and checks
// the file stays exactly what a person would have typed.
func TestEditSequence(t *testing.T) {
	path := editTestWrite(t, editTestConfig, 0o644)
	if err := AppendAccount(path, []Field{{"type", "gemini"}, {"id", "g2"}, {"refresh_token", "r1"}}); err != nil {
		t.Fatal(err)
	}
	if err := SetAccountField(path, "g2", "refresh_token", "r2"); err != nil {
		t.Fatal(err)
	}
	if err := SetAccountField(path, "claude-1", "refresh_token", "c2"); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(editTestConfig, `"sk-ant-ort01-old"`, `"c2"`, 1) +
		"\n[[accounts]]\ntype = \"gemini\"\nid = \"g2\"\nrefresh_token = \"r2\"\n"
	if got := editTestRead(t, path); got != want {
		t.Errorf("result differs.\ngot:\n%s\nwant:\n%s", got, want)
	}
	editTestMode(t, path, 0o600)
}

func editTestPtr[T any](v T) *T { return &v }

// TestEditConcurrent: edits that run at the same time (two logins, or a login
// and a key being added) all land: each one reads, edits and replaces the
// file under the edit lock, so none writes over another's result.
func TestEditConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(editTestConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 12
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- AppendAccount(path, []Field{{"type", "claude-oauth"}, {"id", fmt.Sprintf("new-%d", i)}, {"refresh_token", "r"}})
		}()
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("note_%d", i)
			errs <- SetAccountFields(path, "claude-1", []Field{{key, "x"}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var doc struct {
		Accounts []map[string]any `toml:"accounts"`
	}
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		t.Fatal(err)
	}
	ids := map[string]map[string]any{}
	for _, a := range doc.Accounts {
		ids[a["id"].(string)] = a
	}
	for i := range n {
		if ids[fmt.Sprintf("new-%d", i)] == nil {
			t.Errorf("account new-%d was lost", i)
		}
		if ids["claude-1"][fmt.Sprintf("note_%d", i)] != "x" {
			t.Errorf("field note_%d of claude-1 was lost", i)
		}
	}
	if len(doc.Accounts) != 2+n {
		t.Errorf("%d accounts, want %d", len(doc.Accounts), 2+n)
	}
}

func TestAppendAccountExistsError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	fields := []Field{{"type", "claude-oauth"}, {"id", "a"}, {"refresh_token", "r"}}
	if err := AppendAccount(path, fields); err != nil {
		t.Fatal(err)
	}
	err := AppendAccount(path, fields)
	if !errors.Is(err, ErrAccountExists) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrAccountExists naming the file", err)
	}
}

func TestSetAccountFieldsAllOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(editTestConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SetAccountFields(path, "claude-1", []Field{{"refresh_token", "new"}, {"client_id", "cid"}}); err != nil {
		t.Fatal(err)
	}
	got := editTestRead(t, path)
	if !strings.Contains(got, "refresh_token = \"new\" # rotated by ccrelay login") || !strings.Contains(got, "client_id = \"cid\"") {
		t.Errorf("edits missing:\n%s", got)
	}
	// A bad second field leaves the file as it was.
	if err := SetAccountFields(path, "claude-1", []Field{{"refresh_token", "newer"}, {"client_id", "a\xffb"}}); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	if editTestRead(t, path) != got {
		t.Error("a failed multi-field edit changed the file")
	}
}
