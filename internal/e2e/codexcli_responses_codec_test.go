package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// codecUpstream answers Codex straight from the Responses codec: each
// request is read with DecodeResponses and answered with the events of its
// turn through NewResponsesStreamWriter, as the relay does for a Codex CLI
// served by a Claude account.
type codecUpstream struct {
	turns [][]convert.Event

	mu       sync.Mutex
	requests []*convert.Request
	errs     []error
}

func (u *codecUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/responses") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, err := convert.DecodeResponses(body)
	u.mu.Lock()
	n := len(u.requests)
	u.requests = append(u.requests, req)
	if err != nil {
		u.errs = append(u.errs, err)
	}
	u.mu.Unlock()
	evs := u.turns[min(n, len(u.turns)-1)]
	sw := convert.NewResponsesStreamWriter("gpt-relay")
	var out []byte
	for i := range evs {
		out = sw.Write(out, &evs[i])
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Write(sw.Finish(out))
}

// runCodexModel runs `codex exec` with model against a custom provider at
// base (no relay in between), every outside host unreachable.
func runCodexModel(t *testing.T, bin, base, model, prompt string) string {
	t.Helper()
	home := newCodexHome(t)
	cfg := "model = \"" + model + "\"\nmodel_provider = \"codec\"\n[model_providers.codec]\nname = \"codec\"\nbase_url = \"" + base +
		"/v1\"\nenv_key = \"CODEC_KEY\"\nwire_api = \"responses\"\n"
	if err := os.WriteFile(filepath.Join(home, ".codex", "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _ := runCodexExec(t, bin, codexRun{home: home, env: []string{"CODEC_KEY=k"}}, prompt)
	return stdout
}

// toolTurn is a Claude-served turn: signed thinking, text, one call.
func toolTurn(call convert.Part, args string) []convert.Event {
	return []convert.Event{
		{Kind: convert.EventStart, ID: "msg_01Codec", Usage: provider.Usage{InputTokens: 10, CacheReadTokens: 90}},
		{Kind: convert.EventPartStart, Index: 0, Part: convert.Part{Kind: convert.PartThinking}},
		{Kind: convert.EventDelta, Index: 0, Delta: "I should run it."},
		{Kind: convert.EventSignature, Index: 0, Sig: convert.Signature{Origin: convert.OriginAnthropic, Value: "EqQBCodecSig"}},
		{Kind: convert.EventPartStop, Index: 0},
		{Kind: convert.EventPartStart, Index: 1, Part: convert.Part{Kind: convert.PartText}},
		{Kind: convert.EventDelta, Index: 1, Delta: "Running it."},
		{Kind: convert.EventPartStop, Index: 1},
		{Kind: convert.EventPartStart, Index: 2, Part: call},
		{Kind: convert.EventDelta, Index: 2, Delta: args},
		{Kind: convert.EventPartStop, Index: 2},
		{Kind: convert.EventFinish, Stop: convert.StopTool, Usage: provider.Usage{OutputTokens: 30}},
	}
}

var codecDone = []convert.Event{
	{Kind: convert.EventStart, ID: "msg_02Codec"},
	{Kind: convert.EventPartStart, Index: 0, Part: convert.Part{Kind: convert.PartText}},
	{Kind: convert.EventDelta, Index: 0, Delta: "All done through the codec."},
	{Kind: convert.EventPartStop, Index: 0},
	{Kind: convert.EventFinish, Stop: convert.StopEnd, Usage: provider.Usage{OutputTokens: 6}},
}

// TestCodexCLIReadsTheResponsesCodec runs the pinned Codex CLI against
// answers written by the Responses codec: Codex shows the text, runs the
// tool the answer calls (a function tool; a custom tool in Codex's
// "functions" namespace, which Codex routes only with the namespace the
// writer splits back out of the neutral name), and its next request, read
// by DecodeResponses, carries the Claude thinking back exactly, with the
// tool's output.
func TestCodexCLIReadsTheResponsesCodec(t *testing.T) {
	bin := codexCLI(t)
	tests := []struct {
		name, model string
		call        convert.Part
		args, saw   string
	}{
		{"function tool", "gpt-fake-1", convert.Part{Kind: convert.PartToolCall, CallID: "toolu_01Fn", Name: "exec_command"}, `{"cmd":"echo hi-from-codec-tool"}`, "hi-from-codec-tool"},
		{"namespaced custom tool", "gpt-6.1-sol", convert.Part{Kind: convert.PartToolCall, CallID: "toolu_01Cu", Name: "functions___exec", Custom: true}, `text("hi-from-codec-exec")`, "hi-from-codec-exec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &codecUpstream{turns: [][]convert.Event{toolTurn(tt.call, tt.args), codecDone}}
			srv := upstream(t, up)
			stdout := runCodexModel(t, bin, srv.URL, tt.model, "run the tool please")
			if !strings.Contains(stdout, "All done through the codec.") {
				t.Fatalf("codex output lacks the answer:\n%s", stdout)
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			if len(up.errs) > 0 || len(up.requests) != 2 {
				t.Fatalf("%d requests, decode errors %v", len(up.requests), up.errs)
			}
			msgs := up.requests[1].Messages
			var thinking, call, result *convert.Part
			for i := range msgs {
				for j := range msgs[i].Parts {
					switch p := &msgs[i].Parts[j]; {
					case p.Kind == convert.PartThinking:
						thinking = p
					case p.Kind == convert.PartToolCall && p.CallID == tt.call.CallID:
						call = p
					case p.Kind == convert.PartToolResult && p.CallID == tt.call.CallID:
						result = p
					}
				}
			}
			if thinking == nil || thinking.Text != "I should run it." || thinking.Sig != (convert.Signature{Origin: convert.OriginAnthropic, Value: "EqQBCodecSig"}) {
				t.Fatalf("thinking sent back: %+v", thinking)
			}
			if call == nil || call.Name != tt.call.Name || call.Custom != tt.call.Custom || call.Args != tt.args {
				t.Fatalf("call sent back: %+v", call)
			}
			var out strings.Builder
			if result != nil {
				for _, r := range result.Result {
					out.WriteString(r.Text)
				}
			}
			if !strings.Contains(out.String(), tt.saw) {
				t.Fatalf("tool result %q lacks %q", out.String(), tt.saw)
			}
		})
	}
}
