package env

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMergeGeminiSettings(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     string
		wantPrev string
		same     bool
	}{
		{
			name: "no file",
			in:   "",
			want: "{\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }\n}\n",
		},
		{
			name: "keeps unrelated keys in their order",
			in:   `{"theme":"GitHub","model":{"name":"gemini-3-pro","maxSessionTurns":-1.50e3},"mcpServers":{"x":{"command":"a<b>&c","args":["é",null,true]}}}`,
			want: "{\n  \"theme\": \"GitHub\",\n  \"model\": {\n    \"name\": \"gemini-3-pro\",\n    \"maxSessionTurns\": -1.50e3\n  },\n  \"mcpServers\": {\n    \"x\": {\n      \"command\": \"a<b>&c\",\n      \"args\": [\n        \"é\",\n        null,\n        true\n      ]\n    }\n  },\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }\n}\n",
		},
		{
			name:     "replaces another login, keeps its siblings",
			in:       "{\n  \"security\": {\n    \"folderTrust\": {\"enabled\": true},\n    \"auth\": {\"selectedType\": \"oauth-personal\", \"useExternal\": false}\n  },\n  \"ui\": {\"hideBanner\": true}\n}\n",
			want:     "{\n  \"security\": {\n    \"folderTrust\": {\n      \"enabled\": true\n    },\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\",\n      \"useExternal\": false\n    }\n  },\n  \"ui\": {\n    \"hideBanner\": true\n  }\n}\n",
			wantPrev: "oauth-personal",
		},
		{
			name: "null auth",
			in:   `{"security":{"auth":null}}`,
			want: "{\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }\n}\n",
		},
		{
			name:     "already selected",
			in:       `{"security": {"auth": {"selectedType": "gemini-api-key"}}, "x": 1}`,
			wantPrev: "gemini-api-key",
			same:     true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, prev, changed, err := mergeGeminiSettings([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if prev != tt.wantPrev {
				t.Errorf("prev = %q, want %q", prev, tt.wantPrev)
			}
			if changed == tt.same {
				t.Errorf("changed = %v", changed)
			}
			if !tt.same && string(out) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
}

func TestMergeGeminiSettingsRefuses(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"comments", "{\n  // my theme\n  \"theme\": \"GitHub\"\n}\n", "not valid JSON"},
		{"truncated", `{"theme": `, "not valid JSON"},
		{"trailing data", `{} {}`, "data after"},
		{"array", `[]`, "not a JSON object"},
		{"security is a string", `{"security": "high"}`, "not an object"},
		{"auth is a list", `{"security": {"auth": []}}`, "not an object"},
		{"security twice", `{"security": {}, "security": {"auth": {}}}`, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := mergeGeminiSettings([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGeminiSettingsPath(t *testing.T) {
	home := func() (string, error) { return "/home/u", nil }
	got, err := geminiSettingsPath(func(string) string { return "" }, home)
	if err != nil || got != "/home/u/.gemini/settings.json" {
		t.Errorf("default: %q, %v", got, err)
	}
	got, err = geminiSettingsPath(func(k string) string {
		if k == "GEMINI_CLI_HOME" {
			return "/srv/job"
		}
		return ""
	}, home)
	if err != nil || got != "/srv/job/.gemini/settings.json" {
		t.Errorf("GEMINI_CLI_HOME: %q, %v", got, err)
	}
}

func geminiHomeEnv(dir string) func(string) string {
	return func(k string) string {
		if k == "GEMINI_CLI_HOME" {
			return dir
		}
		return ""
	}
}

func TestEnvWriteGeminiSettings(t *testing.T) {
	home := filepath.Join(t.TempDir(), "gemini home")
	path := filepath.Join(home, ".gemini", "settings.json")
	cfg := testConfig("0.0.0.0", "k1")
	opts := Options{Client: "gemini", Shell: "sh", WriteGeminiSettings: true, Getenv: geminiHomeEnv(home)}

	out, errOut, err := runEnv(t, opts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, `set security.auth.selectedType = "gemini-api-key" in `+path) || strings.Contains(errOut, "hint") {
		t.Errorf("stderr = %q", errOut)
	}
	if !strings.Contains(out, "export GEMINI_API_KEY='k1'\n") || !strings.Contains(out, path) {
		t.Errorf("stdout = %q", out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }\n}\n"; string(data) != want {
		t.Errorf("settings.json =\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}

	// A second run changes nothing and says so.
	_, errOut, err = runEnv(t, opts, cfg)
	if err != nil || !strings.Contains(errOut, "left unchanged") {
		t.Errorf("second run: %q, %v", errOut, err)
	}

	// An existing file keeps its mode and its other settings.
	if err := os.WriteFile(path, []byte(`{"theme":"Dracula","security":{"auth":{"selectedType":"oauth-personal"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = runEnv(t, opts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, `it was "oauth-personal"`) {
		t.Errorf("stderr = %q", errOut)
	}
	data, _ = os.ReadFile(path)
	if want := "{\n  \"theme\": \"Dracula\",\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }\n}\n"; string(data) != want {
		t.Errorf("settings.json =\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 kept", fi.Mode().Perm())
	}
}

func TestEnvWriteGeminiSettingsBadFile(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
	}{
		{"invalid JSON", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("{\"theme\": \"x\",\n// comment\n}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not valid JSON"},
		{"unreadable", func(t *testing.T, path string) {
			// A directory where the file should be: unreadable even for root.
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "read Gemini CLI settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			path := filepath.Join(home, ".gemini", "settings.json")
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, path)
			before := snapshot(t, path)
			out, _, err := runEnv(t, Options{Client: "gemini", Shell: "sh", WriteGeminiSettings: true, Getenv: geminiHomeEnv(home)}, testConfig("127.0.0.1", "k"))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want %q and the path", err, tt.want)
			}
			if out != "" {
				t.Errorf("stdout on error: %q", out)
			}
			if after := snapshot(t, path); after != before {
				t.Errorf("the file was changed: %q -> %q", before, after)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("left files behind: %v", entries)
			}
		})
	}
}

// snapshot describes a path's content and mode.
func snapshot(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.IsDir() {
		return "dir " + fi.Mode().String()
	}
	data, _ := os.ReadFile(path)
	return fi.Mode().String() + " " + string(data)
}

func TestEnvGeminiHint(t *testing.T) {
	tests := []struct {
		name     string
		settings string // "" = no file
		want     string // "" = no hint
	}{
		{"no file", "", "(missing)"},
		{"other login", `{"security":{"auth":{"selectedType":"oauth-personal"}}}`, `(now "oauth-personal")`},
		{"no auth", `{"theme":"x"}`, "(now not set)"},
		{"invalid", `{`, "not valid JSON"},
		{"selected", `{"security":{"auth":{"selectedType":"gemini-api-key"}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			path := filepath.Join(home, ".gemini", "settings.json")
			if tt.settings != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.settings), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, errOut, err := runEnv(t, Options{Client: "gemini", Shell: "sh", HomeDir: func() (string, error) { return home, nil }}, testConfig("127.0.0.1", "k"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if errOut != "" {
					t.Errorf("stderr = %q, want nothing", errOut)
				}
			} else {
				if !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, path) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("stderr = %q, want one line with %q and the path", errOut, tt.want)
				}
				if tt.name != "invalid" && !strings.Contains(errOut, "--write-gemini-settings") {
					t.Errorf("the hint does not name the flag: %q", errOut)
				}
			}
			// stdout stays shell code: comments and assignments only.
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "export ") {
					t.Errorf("unexpected line %q", l)
				}
			}
			// The hint never writes.
			if tt.settings == "" {
				if _, err := os.Stat(path); err == nil {
					t.Error("the hint created the settings file")
				}
			}
		})
	}
}

// TestEnvGeminiWriteShEval: with --write-gemini-settings, hostile keys and a
// hostile GEMINI_CLI_HOME (it is named in the output's comments) still give
// output that bash evaluates to exactly the values, running nothing.
func TestEnvGeminiWriteShEval(t *testing.T) {
	for i, key := range hostile {
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(t.TempDir(), "evil\ntouch PWNED\n$(touch PWNED)"+strings.ReplaceAll(key, "/", "_"))
			host := "127.0.0.1"
			if i%2 == 1 {
				host = "evil\ntouch PWNED\n" + key
			}
			cfg := testConfig(host, key)
			out, errOut, err := runEnv(t, Options{Client: "gemini", Shell: "sh", WriteGeminiSettings: true, Getenv: geminiHomeEnv(home)}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(errOut, "set security.auth.selectedType") {
				t.Errorf("stderr = %q", errOut)
			}
			got := evalSh(t, dir, out, "GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY")
			if got["GEMINI_API_KEY"] != key || got["GOOGLE_GEMINI_BASE_URL"] != baseURL(cfg.Server)+"/gemini" {
				t.Errorf("got %q\noutput:\n%s", got, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
				t.Fatalf("evaluating the output ran an injected command:\n%s", out)
			}
		})
	}
}

// TestEnvGeminiNoHome: without a home directory env gemini still prints the
// variables (no hint), and --write-gemini-settings says what to set.
func TestEnvGeminiNoHome(t *testing.T) {
	noHome := func() (string, error) { return "", errors.New("no home") }
	out, errOut, err := runEnv(t, Options{Client: "gemini", Shell: "sh", HomeDir: noHome}, testConfig("127.0.0.1", "k"))
	if err != nil || !strings.Contains(out, "export GEMINI_API_KEY='k'") || errOut != "" {
		t.Errorf("without the flag: %v, stdout %q, stderr %q", err, out, errOut)
	}
	_, _, err = runEnv(t, Options{Client: "gemini", Shell: "sh", HomeDir: noHome, WriteGeminiSettings: true}, testConfig("127.0.0.1", "k"))
	if err == nil || !strings.Contains(err.Error(), "GEMINI_CLI_HOME") {
		t.Errorf("with the flag: err = %v", err)
	}
}
