package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// geminiCLI is the pinned Gemini CLI (internal/e2e/clients/package.json,
// installed by scripts/test.sh with npm ci together with Claude Code and
// the Codex CLI). The test skips, saying how to install it, when the
// binary is missing or does not run on this machine's node.
func geminiCLI(t *testing.T) string {
	t.Helper()
	bin := pinnedClient(t, "gemini", "Gemini CLI")
	geminiCLIProbe.require(t, bin, "Gemini CLI", "run 'npm ci --prefix internal/e2e/clients' on node 20 or later", time.Minute,
		func(version string) bool { return version != "" })
	return bin
}

// geminiCLIProbe is the pinned Gemini CLI's `--version`, read once per test
// binary.
var geminiCLIProbe clientProbe

// geminiCLIResult is what `gemini -p --output-format json` printed: the
// final response text, the error when the run failed, and the raw output.
type geminiCLIResult struct {
	// Response is the model's final text.
	Response string `json:"response"`
	// Error is set when the run ended with an error.
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	// Stdout and Stderr are the process's output, for failure messages.
	Stdout, Stderr string `json:"-"`
}

// runGeminiCLI runs the real Gemini CLI once, non-interactively (`gemini
// -p prompt --model model --output-format json --approval-mode yolo`, so
// its tools run without asking; no --model when model is "", so the CLI's
// own model router picks one), in dir, against the relay's Gemini route
// (relayURL + "/gemini") with key as its API key. HOME is a fresh temp dir
// holding only the settings that select API-key auth and turn usage
// statistics and telemetry off; every host but loopback goes to a closed
// port; the run is killed after deadline. An error means the process
// failed, timed out, or printed no JSON result.
func runGeminiCLI(t *testing.T, relayURL, key, model, dir, prompt string, deadline time.Duration, opts ...gcOption) (*geminiCLIResult, error) {
	t.Helper()
	bin := geminiCLI(t)
	var run geminiCLIRun
	for _, o := range opts {
		o(&run)
	}
	home := t.TempDir()
	if err := writeGeminiSettings(home); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", prompt, "--output-format", "json", "--approval-mode", "yolo", "--skip-trust"}
	if model != "" {
		args = append(args, "--model", model)
	}
	proxy := ""
	if run.egress != nil {
		proxy = run.egress.URL
	}
	out := runClient(clientCmd{bin: bin, args: args, dir: dir, env: geminiCLIEnv(home, proxy, relayURL+"/gemini", key), deadline: deadline})
	err := out.err
	res := &geminiCLIResult{Stdout: string(out.stdout), Stderr: string(out.stderr)}
	if out.timedOut {
		return res, fmt.Errorf("gemini -p: no result within %s", deadline)
	}
	// The JSON result goes to stdout; when the run fails, the CLI prints it
	// on stderr after its log lines, starting at a line of its own.
	body := bytes.TrimSpace(out.stdout)
	if len(body) == 0 {
		body = out.stderr
		if i := bytes.LastIndex(body, []byte("\n{\n")); i >= 0 {
			body = body[i+1:]
		}
	}
	if i := bytes.IndexByte(body, '{'); i > 0 {
		body = body[i:] // anything printed before the JSON result
	}
	if jerr := json.Unmarshal(body, res); jerr != nil {
		return res, fmt.Errorf("gemini -p: %v; output is not its JSON result: %w", err, jerr)
	}
	if res.Error != nil {
		return res, fmt.Errorf("gemini -p: error %s: %s", res.Error.Type, res.Error.Message)
	}
	if err != nil {
		return res, fmt.Errorf("gemini -p: %w", err)
	}
	return res, nil
}

// writeGeminiSettings writes home/.gemini/settings.json: API-key auth
// (with GOOGLE_GEMINI_BASE_URL alone the CLI takes the "gateway" auth type,
// which -p mode refuses), no usage statistics (they go to Google's
// Clearcut), no telemetry, no update check.
func writeGeminiSettings(home string) error {
	dir := filepath.Join(home, ".gemini")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("gemini settings: %w", err)
	}
	settings := `{"security":{"auth":{"selectedType":"gemini-api-key"}},` +
		`"privacy":{"usageStatisticsEnabled":false},"telemetry":{"enabled":false},` +
		`"general":{"disableAutoUpdate":true,"disableUpdateNag":true}}`
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(settings), 0o600); err != nil {
		return fmt.Errorf("gemini settings: %w", err)
	}
	return nil
}

// geminiCLIRun is one `gemini -p` invocation's options.
type geminiCLIRun struct{ egress *egressTrap }

// gcOption changes a Gemini CLI run (see runGeminiCLI).
type gcOption func(*geminiCLIRun)

// gcEgress sends every connection to a host other than loopback to trap,
// which records and refuses it (default: a closed port).
func gcEgress(trap *egressTrap) gcOption { return func(r *geminiCLIRun) { r.egress = trap } }

// geminiCLIEnv is the whole environment of a run (isolatedEnv with proxy:
// nothing is inherited but PATH, so no GEMINI_* / GOOGLE_* or proxy setting
// of the machine leaks in).
func geminiCLIEnv(home, proxy, baseURL, key string) []string {
	return isolatedEnv(home, proxy, "GEMINI_API_KEY="+key, "GOOGLE_GEMINI_BASE_URL="+baseURL,
		"GEMINI_TELEMETRY_ENABLED=false", "GEMINI_CLI_TRUST_WORKSPACE=true")
}
