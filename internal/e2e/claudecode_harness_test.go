package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// claudeCodeCLI is the pinned Claude Code (internal/e2e/clients/package.json),
// which scripts/test.sh installs with npm ci together with the Codex CLI.
// The test skips, saying how to install it, when the binary is missing or
// is the package's placeholder (its postinstall, which puts the native
// binary in place, did not run).
func claudeCodeCLI(t *testing.T) string {
	t.Helper()
	bin := pinnedClient(t, "claude", "Claude Code")
	claudeCodeProbe.require(t, bin, "Claude Code", "run 'npm ci --prefix internal/e2e/clients' with install scripts allowed", 30*time.Second,
		func(version string) bool { return strings.Contains(version, "(Claude Code)") })
	return bin
}

// claudeCodeProbe is the pinned Claude Code's `--version`, read once per
// test binary.
var claudeCodeProbe clientProbe

// claudeCodeRun is one `claude -p` invocation; ccOption values change it.
type claudeCodeRun struct {
	dir      string
	tools    []string
	extra    []string
	env      []string
	deadline time.Duration
	egress   *egressTrap
	tap      *clientTap
	bearer   bool
	conv     *claudeCodeConversation
	stream   bool
}

// ccOption changes a Claude Code run (see runClaudeCode).
type ccOption func(*claudeCodeRun)

// ccInDir runs Claude Code with dir as its working directory (the project
// it works on; its tools read and write there). Default: a fresh temp dir.
func ccInDir(dir string) ccOption { return func(r *claudeCodeRun) { r.dir = dir } }

// ccTools offers only these built-in tools (--tools), e.g. "Read", "Bash".
// Default: none, so a plain turn carries no tool definitions.
func ccTools(tools ...string) ccOption {
	return func(r *claudeCodeRun) { r.tools = append(r.tools, tools...) }
}

// ccArgs appends command-line arguments (e.g. "--effort", "high").
func ccArgs(args ...string) ccOption {
	return func(r *claudeCodeRun) { r.extra = append(r.extra, args...) }
}

// ccEnv adds environment variables ("NAME=value") to the run.
func ccEnv(kv ...string) ccOption { return func(r *claudeCodeRun) { r.env = append(r.env, kv...) } }

// ccDeadline bounds the run (default one minute): the process is killed then.
func ccDeadline(d time.Duration) ccOption { return func(r *claudeCodeRun) { r.deadline = d } }

// ccEgress sends every connection to a host other than loopback to trap,
// which records and refuses it (see egressTrap).
func ccEgress(trap *egressTrap) ccOption { return func(r *claudeCodeRun) { r.egress = trap } }

// ccTap sends Claude Code's requests through tap, which records them
// before the relay sees them (see clientTap).
func ccTap(tap *clientTap) ccOption { return func(r *claudeCodeRun) { r.tap = tap } }

// ccBearer gives the key as ANTHROPIC_AUTH_TOKEN (sent as Authorization:
// Bearer) instead of ANTHROPIC_API_KEY (sent as x-api-key).
func ccBearer() ccOption { return func(r *claudeCodeRun) { r.bearer = true } }

// ccConversation makes the run the next user turn of conv (see
// claudeCodeConversation).
func ccConversation(conv *claudeCodeConversation) ccOption {
	return func(r *claudeCodeRun) { r.conv = conv }
}

// claudeCodeConversation is one Claude Code conversation over several
// runs: the same HOME (where Claude Code keeps its transcript), working
// directory and session id; the first run starts the session
// (--session-id), each later one resumes it (--resume) with one more user
// turn, so Claude Code sends the whole history again, thinking included.
type claudeCodeConversation struct {
	home, dir, id string
	turns         int
}

// newClaudeCodeConversation is a conversation with no turn yet, in fresh
// temp directories.
func newClaudeCodeConversation(t *testing.T) *claudeCodeConversation {
	t.Helper()
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80 // a version 4 UUID, which --session-id requires
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return &claudeCodeConversation{home: t.TempDir(), dir: t.TempDir(), id: id}
}

// sessionArgs are the arguments that keep (or, outside a conversation,
// skip) Claude Code's transcript.
func (c *claudeCodeConversation) sessionArgs() []string {
	switch {
	case c == nil:
		return []string{"--no-session-persistence"}
	case c.turns == 0:
		return []string{"--session-id", c.id}
	}
	return []string{"--resume", c.id}
}

// ccStreamJSON runs with --output-format stream-json --verbose: Claude
// Code prints one JSON message a line (system init, each assistant and user
// message as it completes, the result), kept in claudeCodeResult.Messages.
func ccStreamJSON() ccOption { return func(r *claudeCodeRun) { r.stream = true } }

// claudeCodeResult is what `claude -p` printed: the result message's fields
// the tests read, and the raw output.
type claudeCodeResult struct {
	// Type is "result" in a result message.
	Type string `json:"type"`
	// Result is the final assistant text.
	Result   string `json:"result"`
	IsError  bool   `json:"is_error"`
	Subtype  string `json:"subtype"`
	NumTurns int    `json:"num_turns"`
	// APIErrorStatus and APIErrorType are the HTTP status and error type
	// of the API error that ended the run (0 and "" without one).
	APIErrorStatus int    `json:"api_error_status"`
	APIErrorType   string `json:"api_error_type"`
	// Messages are the stream-json lines before the result (ccStreamJSON).
	Messages []gjson.Result `json:"-"`
	// Stdout and Stderr are the process's output, for failure messages.
	Stdout, Stderr string `json:"-"`
}

// runClaudeCode runs the real Claude Code once, non-interactively
// (`claude -p prompt --output-format json --model model`), against the relay
// at relayURL with key as its API key. HOME and CLAUDE_CONFIG_DIR are fresh
// temp dirs (nothing of the machine is read or written), telemetry, update
// checks, retries and other non-essential traffic are off, and every host
// but loopback goes to a closed port or to the ccEgress trap. Only the
// tools named with ccTools are offered, and they run without asking
// (--allowedTools; anything else is denied, --permission-mode dontAsk). An
// error means the process failed, timed out, printed no result, or its
// result is an error; the result is returned whenever one was printed.
func runClaudeCode(t *testing.T, relayURL, key, model, prompt string, opts ...ccOption) (*claudeCodeResult, error) {
	t.Helper()
	bin := claudeCodeCLI(t)
	run := &claudeCodeRun{deadline: time.Minute}
	for _, o := range opts {
		o(run)
	}
	home := run.dirs(t)
	base := relayURL
	if run.tap != nil {
		base = run.tap.target(t, relayURL)
	}
	out := runClient(clientCmd{bin: bin, args: run.args(prompt, model), dir: run.dir, env: claudeCodeEnv(home, base, key, run), deadline: run.deadline})
	err := out.err
	res := &claudeCodeResult{Stdout: string(out.stdout), Stderr: string(out.stderr)}
	if out.timedOut {
		return res, fmt.Errorf("claude -p: no result within %s", run.deadline)
	}
	if perr := res.parse(out.stdout); perr != nil {
		return res, fmt.Errorf("claude -p: %v; %w", err, perr)
	}
	if run.conv != nil {
		run.conv.turns++
	}
	if err != nil {
		return res, fmt.Errorf("claude -p (%s): %w", res.Subtype, err)
	}
	if res.IsError {
		return res, fmt.Errorf("claude -p: result is an error (%s): %s", res.Subtype, res.Result)
	}
	return res, nil
}

// dirs settles the working directory and returns HOME: the conversation's,
// else fresh temp dirs.
func (r *claudeCodeRun) dirs(t *testing.T) (home string) {
	if r.conv != nil {
		home = r.conv.home
		if r.dir == "" {
			r.dir = r.conv.dir
		}
	}
	if r.dir == "" {
		r.dir = t.TempDir()
	}
	if home == "" {
		home = t.TempDir()
	}
	return home
}

// args is the command line of the run.
func (r *claudeCodeRun) args(prompt, model string) []string {
	format := []string{"--output-format", "json"}
	if r.stream {
		format = []string{"--output-format", "stream-json", "--verbose"}
	}
	args := append([]string{"-p", prompt, "--model", model}, format...)
	args = append(args, "--permission-mode", "dontAsk", "--strict-mcp-config",
		"--setting-sources", "", "--tools", strings.Join(r.tools, ","))
	if len(r.tools) > 0 {
		args = append(args, "--allowedTools", strings.Join(r.tools, ","))
	}
	args = append(args, r.conv.sessionArgs()...)
	return append(args, r.extra...)
}

// parse reads the output: one JSON result, or stream-json lines ending
// with the result.
func (res *claudeCodeResult) parse(out []byte) error {
	out = bytes.TrimSpace(out)
	last := out
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		for _, line := range bytes.Split(out[:i], []byte("\n")) {
			if gjson.ValidBytes(line) {
				res.Messages = append(res.Messages, gjson.ParseBytes(line))
			}
		}
		last = out[i+1:]
	}
	if err := json.Unmarshal(last, res); err != nil {
		return fmt.Errorf("output does not end with its JSON result: %w", err)
	}
	if res.Type != "result" {
		return fmt.Errorf("output ends with a %q message, not the result", res.Type)
	}
	return nil
}

// claudeCodeEnv is the whole environment of a run (isolatedEnv: nothing is
// inherited but PATH, so no ANTHROPIC_* or proxy setting of the machine
// leaks in), with the run's own variables last.
func claudeCodeEnv(home, relayURL, key string, run *claudeCodeRun) []string {
	proxy := ""
	if run.egress != nil {
		proxy = run.egress.URL
	}
	auth := "ANTHROPIC_API_KEY=" + key
	if run.bearer {
		auth = "ANTHROPIC_AUTH_TOKEN=" + key
	}
	env := isolatedEnv(home, proxy, "CLAUDE_CONFIG_DIR="+filepath.Join(home, ".claude"),
		"ANTHROPIC_BASE_URL="+relayURL, auth,
		// A relay error fails the run at once instead of after Claude
		// Code's backoff (ten retries by default).
		"CLAUDE_CODE_MAX_RETRIES=0",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1",
		"DISABLE_ERROR_REPORTING=1", "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY=1")
	return append(env, run.env...)
}

// egressTrap is an HTTP proxy on loopback that records every request and
// CONNECT a client sends it and refuses each with 403: a client pointed at
// it reaches no outside host, and the test sees what it tried to reach.
type egressTrap struct {
	URL string
	mu  sync.Mutex
	log []string
}

// newEgressTrap starts a trap for the test's lifetime.
func newEgressTrap(t *testing.T) *egressTrap {
	t.Helper()
	trap := &egressTrap{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trap.mu.Lock()
		trap.log = append(trap.log, r.Method+" "+r.Host+r.URL.Path)
		trap.mu.Unlock()
		http.Error(w, "no outside network in tests", http.StatusForbidden)
	}))
	t.Cleanup(s.Close)
	trap.URL = s.URL
	return trap
}

// Attempts are the requests and CONNECTs the trap refused so far.
func (e *egressTrap) Attempts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// clientTap is a reverse proxy on loopback between Claude Code and the
// relay that records each request as the client sent it: a test compares
// it with what the upstream received (passthrough keeps the body's bytes;
// a converted request is the client's request in another dialect).
type clientTap struct {
	mu   sync.Mutex
	reqs []*fakeupstream.Recorded
}

// Requests are the client's requests so far, in order.
func (c *clientTap) Requests() []*fakeupstream.Recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*fakeupstream.Recorded(nil), c.reqs...)
}

// target starts the tap's proxy to relayURL for the test's lifetime and
// returns its URL.
func (c *clientTap) target(t *testing.T, relayURL string) string {
	t.Helper()
	to, err := url.Parse(relayURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(to)
	rp.FlushInterval = -1
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.reqs = append(c.reqs, &fakeupstream.Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL
}
