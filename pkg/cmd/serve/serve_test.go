package serve

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/gcfloor"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestFlagsBindToConfig(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Viper: config.NewViper(), Getenv: func(string) string { return "" }}
	path := ""
	f.ConfigPath = &path
	var got *Options
	cmd := NewCmdServe(f, func(o *Options) error { got = o; return nil })
	args := strings.Fields("--host 0.0.0.0 --port 4321 --log-level debug --log-format json --database-path /tmp/x.db")
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("runF not called")
	}
	cfg := config.Default()
	if err := cfg.ApplyOverrides(f.Viper); err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Host != "0.0.0.0" || cfg.Server.Port != 4321 || cfg.Server.LogLevel != "debug" || cfg.Server.LogFormat != "json" || cfg.Server.DatabasePath != "/tmp/x.db" {
		t.Fatalf("flags not applied: %+v", cfg.Server)
	}
	cmd = NewCmdServe(f, func(*Options) error { return nil })
	cmd.SetArgs([]string{"extra"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil {
		t.Fatal("positional argument accepted")
	}
}

// With no config file, serve starts on defaults, says how to add an account,
// answers API calls with 503 in Anthropic's shape, and stops cleanly on SIGTERM.
func TestServeWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	srv := startServe(t, config.Default(), dir)
	addr := srv.addr
	resp, err := http.Post("http://"+addr.String()+"/v1/messages", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !bytes.Contains(b, []byte(`"type":"error"`)) || !bytes.Contains(b, []byte("no claude accounts are configured")) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// Without a file to follow, adding an account takes a file and a restart.
	if !bytes.Contains(b, []byte("runs without a config file to follow")) || !bytes.Contains(b, []byte("restart ccrelay serve")) {
		t.Errorf("503 does not say how to add an account to a relay without a config file: %s", b)
	}
	srv.stop(t)
	log := srv.errOut.String()
	for _, want := range []string{"no config file found", "ccrelay config init", "[[accounts]]", "ccrelay listening", "shutting down"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// running is a serveRun in the background.
type running struct {
	addr   net.Addr
	sigs   chan os.Signal
	done   chan error
	errOut fmt.Stringer
}

// startServe runs serveRun on cfg (a free port and a database under dir)
// and waits until it listens.
func startServe(t *testing.T, cfg *config.Config, dir string) *running {
	t.Helper()
	ios, _, _, errOut := iostreams.Test()
	cfg.Server.Port = freePort(t)
	cfg.Server.DatabasePath = filepath.Join(dir, "data", "relay.db")
	r := &running{sigs: make(chan os.Signal, 2), done: make(chan error, 1), errOut: errOut}
	ready := make(chan net.Addr, 1)
	opts := &Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, Signals: r.sigs,
		Ready: func(a net.Addr) { ready <- a }, Version: "test", Exit: func(int) { t.Error("second-signal exit called") }}
	go func() { r.done <- serveRun(opts) }()
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		t.Fatalf("serve exited: %v\n%s", err, errOut)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	return r
}

// stop sends SIGTERM and waits for a clean exit.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.sigs <- syscall.SIGTERM
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A second signal during the drain exits at once.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	hang := make(chan struct{})
	up := newHangingUpstream(t, hang)
	defer close(hang)
	src := "[[accounts]]\ntype = \"claude-api\"\nid = \"a\"\napi_key = \"k\"\napi_url = \"" + up + "\"\n[server]\nhost = \"127.0.0.1\"\nshutdown_timeout_seconds = 30\n"
	cfg, err := config.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Port = freePort(t)
	cfg.Server.DatabasePath = filepath.Join(dir, "relay.db")
	ios, _, _, _ := iostreams.Test()
	sigs := make(chan os.Signal, 2)
	ready := make(chan net.Addr, 1)
	exited := make(chan int, 1)
	opts := &Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, Signals: sigs,
		Ready: func(a net.Addr) { ready <- a }, Version: "test", Exit: func(code int) { exited <- code }}
	go serveRun(opts)
	addr := <-ready
	go func() {
		resp, err := http.Post("http://"+addr.String()+"/v1/messages", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	time.Sleep(200 * time.Millisecond) // the stream is open and hangs
	sigs <- syscall.SIGTERM
	time.Sleep(100 * time.Millisecond)
	sigs <- syscall.SIGINT
	select {
	case code := <-exited:
		if code == 0 {
			t.Fatal("exit code 0 on a forced exit")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not exit")
	}
}

func newHangingUpstream(t *testing.T, hang chan struct{}) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serve warns when the config file, which holds secrets, is readable by others.
func TestWarnsAboutReadableConfig(t *testing.T) {
	path, errOut := serveOnce(t, "api_keys = [\"relay-key-123456\"]\n", 0o644)
	if !strings.Contains(errOut, "chmod 600 "+path) {
		t.Fatalf("no warning about the readable config:\n%s", errOut)
	}
	if strings.Contains(errOut, "relay-key-123456") {
		t.Fatal("relay key logged")
	}
}

// A config written for the original relay, with api_keys inside [server],
// starts with those keys and a warning that says where the line belongs.
func TestServeWarnsAboutAPIKeysInsideServer(t *testing.T) {
	path, errOut := serveOnce(t, "[server]\napi_keys = [\"relay-key-123456\"]\n", 0o600)
	for _, want := range []string{"relay_keys=1", path + ": line 2: server.api_keys: api_keys belongs at the top level"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("log lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "api_keys is empty") || strings.Contains(errOut, "relay-key-123456") {
		t.Fatalf("log:\n%s", errOut)
	}
}

// serveOnce starts serve on a config file holding content (with mode),
// stops it once it listens, and returns the file's path and the log.
func serveOnce(t *testing.T, content string, mode os.FileMode) (string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Port = freePort(t)
	cfg.Server.DatabasePath = filepath.Join(dir, "relay.db")
	ios, _, _, errOut := iostreams.Test()
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	opts := &Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, Signals: sigs,
		Ready: func(net.Addr) { sigs <- syscall.SIGTERM }, Version: "test", Exit: func(int) {}}
	go func() { done <- serveRun(opts) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	return path, errOut.String()
}

// CCRELAY_PPROF_ADDR opens Go's profiler on a listener of its own (logged
// as a warning); the relay's listener never serves it; shutdown closes it.
func TestPprofOnItsOwnListener(t *testing.T) {
	t.Setenv(pprofEnv, "127.0.0.1:0")
	srv := startServe(t, config.Default(), t.TempDir())
	addr, errOut := srv.addr, srv.errOut
	m := regexp.MustCompile(`profiler endpoints are on.*addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no profiler warning with its address:\n%s", errOut)
	}
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("goroutine profile")) {
		t.Fatalf("profiler: %d %.200s", resp.StatusCode, b)
	}
	resp, err = http.Get("http://" + addr.String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("the relay's own listener serves the profiler")
	}
	srv.stop(t)
	if _, err := http.Get("http://" + m[1] + "/debug/pprof/"); err == nil {
		t.Fatal("the profiler still answers after shutdown")
	}
}

// The heap floor is opt-in; a bad value stops serve with an error naming the
// variable, before anything listens.
func TestGCFloorFromTheEnvironment(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv(gcfloor.Env, "16")
	srv := startServe(t, config.Default(), t.TempDir())
	if !strings.Contains(srv.errOut.String(), "heap goal kept at the floor") || !strings.Contains(srv.errOut.String(), "floor_mb=16") {
		t.Fatalf("no log line for the floor:\n%s", srv.errOut)
	}
	srv.stop(t)

	t.Setenv(gcfloor.Env, "16MB")
	ios, _, _, _ := iostreams.Test()
	cfg := config.Default()
	err := serveRun(&Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }})
	if err == nil || !strings.Contains(err.Error(), gcfloor.Env) {
		t.Fatalf("serve with %s=16MB: %v, want an error naming it", gcfloor.Env, err)
	}
}

// The start log counts relay keys of both kinds (api_keys and [[keys]]),
// says protected mode only when there is no key at all, and names the
// dashboard's URL when admin keys turn it on, never the admin key.
func TestStartLogKeysAndDashboard(t *testing.T) {
	const admin = "ccr-admin-SECRETADMINKEY0123"
	named := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "[[keys]]\nname = \"k%d\"\nkey = \"named-relay-key-%04d\"\n", i, i)
		}
		return b.String()
	}
	tests := []struct {
		name      string
		toml      string
		want      []string
		forbidden []string
	}{
		{
			name:      "only [[keys]]",
			toml:      named(3),
			want:      []string{"relay_keys=3", "api_keys=0", "named_keys=3"},
			forbidden: []string{"protected mode", "accepts every client", "api_keys is empty", "dashboard"},
		},
		{
			name:      "only api_keys",
			toml:      "api_keys = [\"relay-key-123456\"]\n",
			want:      []string{"relay_keys=1", "api_keys=1", "named_keys=0"},
			forbidden: []string{"protected mode", "accepts every client", "dashboard"},
		},
		{
			name:      "both kinds",
			toml:      "api_keys = [\"relay-key-123456\"]\n" + named(2),
			want:      []string{"relay_keys=3"},
			forbidden: []string{"protected mode", "accepts every client"},
		},
		{
			name:      "no key",
			toml:      "[server]\n",
			want:      []string{"relay_keys=0", "protected mode: no relay key configured"},
			forbidden: []string{"accepts every client", "dashboard"},
		},
		{
			name:      "admin keys",
			toml:      "api_keys = [\"relay-key-123456\"]\nadmin_keys = [\"" + admin + "\"]\n",
			want:      []string{"dashboard on", "url=http://127.0.0.1:%d/dashboard"},
			forbidden: []string{admin},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(path, []byte(tt.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			srv := startServe(t, cfg, dir)
			srv.stop(t)
			log := srv.errOut.String()
			port := srv.addr.(*net.TCPAddr).Port
			for _, w := range tt.want {
				if strings.Contains(w, "%d") {
					w = fmt.Sprintf(w, port)
				}
				if !strings.Contains(log, w) {
					t.Errorf("log lacks %q:\n%s", w, log)
				}
			}
			for _, f := range tt.forbidden {
				if strings.Contains(log, f) {
					t.Errorf("log holds %q:\n%s", f, log)
				}
			}
		})
	}
}

// A relay that follows its config file and has no account answers 503
// saying that an account added to the file applies within seconds, not
// after a restart.
func TestNoAccount503WithConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("api_keys = [\"relay-key-123456\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Port = freePort(t)
	cfg.Server.DatabasePath = filepath.Join(dir, "relay.db")
	ios, _, _, errOut := iostreams.Test()
	sigs, done, ready := make(chan os.Signal, 1), make(chan error, 1), make(chan net.Addr, 1)
	opts := &Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, Signals: sigs,
		Ready: func(a net.Addr) { ready <- a }, Version: "test", Exit: func(int) {},
		Load: func(p string) (*config.Config, error) { return config.LoadFile(p) }, Reloads: make(chan os.Signal)}
	go func() { done <- serveRun(opts) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, errOut)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	req, _ := http.NewRequest("POST", "http://"+addr.String()+"/v1/messages", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("x-api-key", "relay-key-123456")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sigs <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || !bytes.Contains(b, []byte("this relay applies it within seconds")) || bytes.Contains(b, []byte("restart")) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if log := errOut.String(); !strings.Contains(log, "no [[accounts]] configured") || !strings.Contains(log, "applies the change within seconds") {
		t.Errorf("start log:\n%s", log)
	}
}
