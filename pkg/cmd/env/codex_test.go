package env

import (
	"strings"
	"testing"
)

const testBase = "http://127.0.0.1:3000"

const ccrelayBlock = `[model_providers.ccrelay]
name = "ccrelay"
base_url = "http://127.0.0.1:3000/v1"
env_key = "CCRELAY_API_KEY"
wire_api = "responses"
`

func TestUpdateCodexConfig(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     string
		wantPrev string
	}{
		{
			name: "empty file",
			in:   "",
			want: "model_provider = \"ccrelay\"\n\n" + ccrelayBlock,
		},
		{
			name: "top-level keys only, no final newline",
			in:   "model = \"gpt-6\"\napproval_policy = \"never\"",
			want: "model = \"gpt-6\"\napproval_policy = \"never\"\nmodel_provider = \"ccrelay\"\n\n" + ccrelayBlock,
		},
		{
			name:     "replaces model_provider, keeps comments and tables",
			in:       "# my codex\nmodel = \"gpt-6\"\nmodel_provider = \"openai\" # was this\n\n# servers\n[mcp_servers.docs]\ncommand = \"npx\"\nargs = [\n  \"-y\",\n  \"docs\",\n]\n",
			want:     "# my codex\nmodel = \"gpt-6\"\nmodel_provider = \"ccrelay\"\n\n# servers\n[mcp_servers.docs]\ncommand = \"npx\"\nargs = [\n  \"-y\",\n  \"docs\",\n]\n\n" + ccrelayBlock,
			wantPrev: "openai",
		},
		{
			name: "no top-level key: inserted above the first table and its comment",
			in:   "# header comment\n\n# the docs server\n[mcp_servers.docs]\ncommand = \"npx\"\n",
			want: "# header comment\n\nmodel_provider = \"ccrelay\"\n\n# the docs server\n[mcp_servers.docs]\ncommand = \"npx\"\n\n" + ccrelayBlock,
		},
		{
			name: "file starting with a table",
			in:   "[tui]\nnotifications = true\n",
			want: "model_provider = \"ccrelay\"\n\n[tui]\nnotifications = true\n\n" + ccrelayBlock,
		},
		{
			name:     "existing ccrelay table: values updated, extra keys kept, missing keys added",
			in:       "model_provider = \"ccrelay\"\n\n[model_providers.ccrelay]\nname = \"old\"\nbase_url = 'http://10.0.0.1:3000/v1'\nrequest_max_retries = 2\n\n[model_providers.other]\nname = \"other\"\nbase_url = \"http://x/v1\"\n",
			want:     "model_provider = \"ccrelay\"\n\n[model_providers.ccrelay]\nenv_key = \"CCRELAY_API_KEY\"\nwire_api = \"responses\"\nname = \"ccrelay\"\nbase_url = \"http://127.0.0.1:3000/v1\"\nrequest_max_retries = 2\n\n[model_providers.other]\nname = \"other\"\nbase_url = \"http://x/v1\"\n",
			wantPrev: "ccrelay",
		},
		{
			name: "quoted header",
			in:   "[model_providers.\"ccrelay\"]\nname = \"x\"\n",
			want: "model_provider = \"ccrelay\"\n\n[model_providers.\"ccrelay\"]\nbase_url = \"http://127.0.0.1:3000/v1\"\nenv_key = \"CCRELAY_API_KEY\"\nwire_api = \"responses\"\nname = \"ccrelay\"\n",
		},
		{
			name: "a fake header and key inside a multi-line string are not touched",
			in:   "instructions = \"\"\"\nmodel_provider = \"evil\"\n[model_providers.ccrelay]\n\"\"\"\nlit = '''\n[x]\n'''\n",
			want: "instructions = \"\"\"\nmodel_provider = \"evil\"\n[model_providers.ccrelay]\n\"\"\"\nlit = '''\n[x]\n'''\nmodel_provider = \"ccrelay\"\n\n" + ccrelayBlock,
		},
		{
			name: "CRLF line endings kept",
			in:   "model = \"gpt-6\"\r\n\r\n[tui]\r\nx = 1\r\n",
			want: "model = \"gpt-6\"\r\nmodel_provider = \"ccrelay\"\r\n\r\n[tui]\r\nx = 1\r\n\r\n" + strings.ReplaceAll(ccrelayBlock, "\n", "\r\n"),
		},
		{
			name: "ccrelay table inside profiles is a different table",
			in:   "[profiles.ccrelay]\nmodel = \"x\"\n",
			want: "model_provider = \"ccrelay\"\n\n[profiles.ccrelay]\nmodel = \"x\"\n\n" + ccrelayBlock,
		},
		{
			name: "array of tables and an array spanning lines",
			in:   "env = [ \"A\",\n  \"]\" ]\n[[hooks]]\nrun = \"x\"\n",
			want: "env = [ \"A\",\n  \"]\" ]\nmodel_provider = \"ccrelay\"\n[[hooks]]\nrun = \"x\"\n\n" + ccrelayBlock,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, prev, err := updateCodexConfig(tt.in, testBase)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if prev != tt.wantPrev {
				t.Errorf("prev = %q, want %q", prev, tt.wantPrev)
			}
			// Idempotent: a second edit changes nothing.
			again, _, err := updateCodexConfig(got, testBase)
			if err != nil {
				t.Fatal(err)
			}
			if again != got {
				t.Errorf("second edit changed the file:\n%s", again)
			}
		})
	}
}

func TestUpdateCodexConfigRefuses(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "invalid TOML", in: "model = \n", wantErr: "not valid TOML"},
		{name: "dotted key form", in: "model_providers.ccrelay.name = \"x\"\n", wantErr: "cannot edit"},
		{name: "inline table form", in: "[model_providers]\nccrelay = { name = \"x\" }\n", wantErr: "cannot edit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := updateCodexConfig(tt.in, testBase)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCodexProfileOverride(t *testing.T) {
	if w := codexProfileOverride("profile = \"work\"\n[profiles.work]\nmodel_provider = \"openai\"\n"); !strings.Contains(w, `"work"`) {
		t.Errorf("no warning: %q", w)
	}
	if w := codexProfileOverride("profile = \"work\"\n[profiles.work]\nmodel = \"x\"\n"); w != "" {
		t.Errorf("unexpected warning: %q", w)
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		`http://h:1/v1`: `"http://h:1/v1"`,
		`a"b\c`:         `"a\"b\\c"`,
		"x\ny\x01":      `"x\ny\u0001"`,
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzUpdateCodexConfig: any Codex config is edited or refused, never
// mangled: an accepted edit keeps every other setting (updateCodexConfig
// verifies that itself) and a second edit changes nothing.
func FuzzUpdateCodexConfig(f *testing.F) {
	f.Add("")
	f.Add("# my codex\nmodel = \"gpt-6\"\nmodel_provider = \"openai\" # was this\n\n[mcp_servers.docs]\nargs = [\n  \"-y\",\n]\n")
	f.Add("\ufeff[model_providers.ccrelay]\r\nname = \"old\"\r\nextra = 1\r\n")
	f.Add("[[profiles]]\nx = '''\n[model_providers.ccrelay]\n'''\n")
	f.Fuzz(func(t *testing.T, src string) {
		out, _, err := updateCodexConfig(src, testBase)
		if err != nil {
			return
		}
		again, _, err := updateCodexConfig(out, testBase)
		if err != nil {
			t.Fatalf("the edited file is refused: %v\n%q", err, out)
		}
		if strings.TrimRight(again, "\r\n") != strings.TrimRight(out, "\r\n") {
			t.Fatalf("a second edit changed the file:\n%q\n%q", out, again)
		}
	})
}
