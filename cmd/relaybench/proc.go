package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime/stime in /proc/<pid>/stat; Linux
// fixes it at 100 for user space whatever the kernel's HZ.
const clockTick = 10 * time.Millisecond

// proc is a child process whose CPU and memory the benchmark reads from /proc.
type proc struct {
	name string
	cmd  *exec.Cmd
	// addr is host:port it serves on.
	addr    string
	logPath string
	stdin   io.WriteCloser
	exited  chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// cpu is the process's user+system CPU time so far (all threads).
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0, fmt.Errorf("read %s stat: %w", p.name, err)
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s stat: short line", p.name)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s stat: %w", p.name, err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// syscalls is the number of read and write system calls the process has
// made so far (syscr + syscw of /proc/<pid>/io; 0 where that is not readable).
func (p *proc) syscalls() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.pid()))
	if err != nil {
		return 0
	}
	return sumFields(b, "syscr", "syscw")
}

// switches returns the context switches (voluntary and not) of the
// process's threads alive now. The difference over a run counts the run's
// switches (a thread that ends within the run takes its count with it; Go
// seldom ends threads): on a VM they are a large share of a relay's CPU at
// low concurrency, and they vary less than CPU time.
func (p *proc) switches() int64 {
	return taskSwitches(p.pid())
}

func taskSwitches(pid int) int64 {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if err != nil {
			continue // the thread ended meanwhile
		}
		n += sumFields(b, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
	}
	return n
}

// sumFields adds up the named integer fields of a /proc "key: value" file.
func sumFields(b []byte, keys ...string) int64 {
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && slices.Contains(keys, k) {
			c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += c
		}
	}
	return n
}

// mem returns the resident set size now and its high-water mark, in bytes.
func (p *proc) mem() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, 0, fmt.Errorf("read %s status: %w", p.name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("%s status %s: %w", p.name, k, perr)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// stop asks the process to end (SIGTERM), then kills it after a grace period.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	if p.stdin != nil {
		_ = p.stdin.Close() // our own roles exit when stdin closes
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) start() error {
	p.exited = make(chan struct{})
	// The child dies with us if the benchmark is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return nil
}

// childEnv is our environment without CCRELAY_* (which would override the
// generated config) and without RELAYBENCH_* (the role of a child).
// Profile ccrelay under load with CCRELAY_PPROF_ADDR=127.0.0.1:6060.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		// CCRELAY_PPROF_ADDR passes through: it only opens the profiler.
		if (strings.HasPrefix(kv, "CCRELAY_") && !strings.HasPrefix(kv, "CCRELAY_PPROF_ADDR=")) || strings.HasPrefix(kv, "RELAYBENCH_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startRole runs this program again in a helper role (upstream, baseline)
// and waits for the address it prints.
func startRole(name, role string, env ...string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = childEnv(append([]string{"RELAYBENCH_ROLE=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, stdin: in}
	if err := p.start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			p.stop()
			return nil, fmt.Errorf("%s did not report its address (got %q)", name, l)
		}
		p.addr = addr
		return p, nil
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not start within 15s", name)
	}
}

// relayConfig is the generated ccrelay config.
type relayConfig struct {
	port     int
	dbPath   string
	logLevel string
	// metricsListen, when set, turns Prometheus metrics on.
	metricsListen string
	accounts      int
	// openaiAccounts is the number of openai-responses accounts on the
	// same upstream (Fast answers the Responses API under /v1): the pool
	// that serves a Messages request for a gpt-* model, converted.
	openaiAccounts int
	// geminiAccounts is the number of gemini-api accounts on the same
	// upstream (Fast answers the Gemini API's streamGenerateContent): the
	// pool that serves a Messages request for a gemini-* model, converted.
	geminiAccounts int
	// namedKeys, when set, replaces api_keys with that many [[keys]], each
	// with rpm, concurrency and budgets high enough never to refuse; the
	// last one is the benchmark's key.
	namedKeys int
	upstream  string // http://host:port or https://host:port
	env       []string
}

func (c relayConfig) toml() string {
	var b strings.Builder
	if c.namedKeys == 0 {
		fmt.Fprintf(&b, "api_keys = [%q]\n", relayKey)
	}
	if c.metricsListen != "" {
		fmt.Fprintf(&b, "metrics_listen = %q\n", c.metricsListen)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[server]\nhost = \"127.0.0.1\"\nport = %d\ndatabase_path = %q\nlog_level = %q\n\n", c.port, c.dbPath, c.logLevel)
	b.WriteString("[session]\nsticky_ttl_seconds = 3600\n\n")
	for i := range c.namedKeys {
		key := fmt.Sprintf("rk-bench-%04d-0123456789abcdef", i)
		if i == c.namedKeys-1 {
			key = relayKey
		}
		fmt.Fprintf(&b, "[[keys]]\nname = \"bench-%04d\"\nkey = %q\nmodels = [\"claude-*\", \"gpt-*\"]\nrpm = 10000000\nconcurrency = 100000\ndaily_usd = 1000000\nweekly_usd = 1000000\nmonthly_usd = 1000000\ndaily_tokens = 1000000000000\n\n", i, key)
	}
	for i := range c.accounts {
		fmt.Fprintf(&b, "[[accounts]]\ntype = \"claude-api\"\nid = \"bench-%03d\"\napi_key = \"sk-ant-api03-bench-%03d\"\napi_url = %q\n\n", i+1, i+1, c.upstream)
	}
	for i := range c.openaiAccounts {
		fmt.Fprintf(&b, "[[accounts]]\ntype = \"openai-responses\"\nid = \"bench-openai-%03d\"\napi_key = \"sk-proj-bench-%03d\"\napi_url = %q\n\n", i+1, i+1, c.upstream+"/v1")
	}
	for i := range c.geminiAccounts {
		fmt.Fprintf(&b, "[[accounts]]\ntype = \"gemini-api\"\nid = \"bench-gemini-%03d\"\napi_key = \"AIza-bench-%03d\"\napi_url = %q\n\n", i+1, i+1, c.upstream)
	}
	return b.String()
}

// freePort finds a loopback port no one listens on (the config needs a number).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startRelay writes a config into dir and starts `ccrelay serve` on it. It
// returns once the process is started; waitHealthy tells when it serves.
func startRelay(bin, dir, name string, cfg relayConfig) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	cfg.port = port
	if cfg.dbPath == "" {
		cfg.dbPath = filepath.Join(dir, name+".db")
	}
	cfgPath := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.toml()), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Env = childEnv(append([]string{"HOME=" + dir}, cfg.env...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p := &proc{name: name, cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: logPath}
	err = p.start()
	logf.Close() // the child holds its own descriptor
	if err != nil {
		return nil, err
	}
	return p, nil
}

// waitHealthy polls GET /health every millisecond until it answers 200.
func waitHealthy(ctx context.Context, p *proc, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + p.addr + "/health"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was healthy; see %s", p.name, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s; see %s", p.name, limit, p.logPath)
		case <-time.After(time.Millisecond):
		}
	}
}

// buildRelay compiles ./cmd/ccrelay of the module we run in into dir.
func buildRelay(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the ccrelay module; run from the repository or pass --ccrelay PATH")
	}
	bin := filepath.Join(dir, "ccrelay")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ccrelay")
	cmd.Dir = filepath.Dir(mod)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ccrelay: %w", err)
	}
	return bin, nil
}

// cpuMark is the machine's busy CPU time and ours (this process and its
// reaped children) at one moment; two marks tell how much CPU other
// processes took in between, which makes a noisy run visible.
type cpuMark struct {
	at        time.Time
	busy, own time.Duration
}

func markCPU() cpuMark {
	m := cpuMark{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f {
			if i == 0 || i == 4 || i == 5 || i > 7 {
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			m.busy += time.Duration(n) * clockTick
		}
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			if i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				m.own += time.Duration(n) * clockTick
			}
		}
	}
	return m
}

// otherCores is the average number of cores other processes kept busy
// between m and a later mark (taken after our children were reaped).
func (m cpuMark) otherCores(later cpuMark) float64 {
	wall := later.at.Sub(m.at)
	if wall <= 0 {
		return 0
	}
	other := (later.busy - m.busy) - (later.own - m.own)
	return max(float64(other)/float64(wall), 0)
}

// selfCPU is this process's own user+system CPU time (all threads).
func selfCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}
