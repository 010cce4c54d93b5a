// Package clustertest runs a real redis-server for tests, on a free loopback
// port, without persistence (a restart starts empty, as after a crash).
package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a redis-server child process.
type Redis struct {
	// Port is the loopback port; it stays the same across Restart.
	Port int
	// URL is redis://127.0.0.1:Port/0.
	URL string

	t   testing.TB
	dir string
	bin string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs redis-server and stops it at the end of the test. It skips the
// test when no redis-server is installed (scripts/test.sh installs it).
func Start(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server; scripts/test.sh does it): skipping the cluster test")
	}
	r := &Redis{t: t, dir: t.TempDir(), bin: bin}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r.Port, r.URL = port, fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		if err = r.start(); err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("start redis-server: %v", err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (r *Redis) start() error {
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--loglevel", "warning")
	logf, err := os.OpenFile(r.dir+"/redis.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(r.Port) {
			r.mu.Lock()
			r.cmd = cmd
			r.mu.Unlock()
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(r.dir + "/redis.log")
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(string(b)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("redis-server did not answer on port %d", r.Port)
		}
	}
}

// ping reports whether a Redis answers PING on port.
func ping(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Stop kills redis-server (as a crash would: nothing is saved) and waits
// until the port is closed. Stopping twice is fine.
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	for i := 0; i < 250 && ping(r.Port); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts redis-server again on the same port, empty.
func (r *Redis) Restart() {
	r.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly
	}
	r.t.Fatalf("restart redis-server: %v", err)
}

// Exists reports whether key is set (false when Redis is down).
func (r *Redis) Exists(key string) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$6\r\nEXISTS\r\n$%d\r\n%s\r\n", len(key), key); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, ":1")
}

// Dump returns every key Redis holds with its value (strings, hashes,
// lists, sets, sorted sets, streams), one key a line, for tests that check
// what Redis holds, e.g. that no token is stored in it.
func (r *Redis) Dump(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port), DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer c.Close()
	var b strings.Builder
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		var v any
		var err error
		switch typ, _ := c.Type(ctx, k).Result(); typ {
		case "string":
			v, err = c.Get(ctx, k).Result()
		case "hash":
			v, err = c.HGetAll(ctx, k).Result()
		case "list":
			v, err = c.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = c.SMembers(ctx, k).Result()
		case "zset":
			v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = c.XRange(ctx, k, "-", "+").Result()
		default:
			v = "(type " + typ + ")"
		}
		if err != nil {
			t.Fatalf("dump redis key %q: %v", k, err)
		}
		fmt.Fprintf(&b, "%s: %v\n", k, v)
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("dump redis: %v", err)
	}
	return b.String()
}
