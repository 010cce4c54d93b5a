package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recordingConn records the write deadlines set on it.
type recordingConn struct {
	net.Conn
	deadlines []time.Time
}

func (c *recordingConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// The deadline follows the writes but moves at most once per quarter of the
// timeout; net/http's lift after each request does not remove it; an idle
// connection's is moved again at its next write; a timeout
// changed while the connection is open applies from its next writes, and 0
// lifts the deadline once; a deadline set explicitly holds until lifted.
func TestWriteDeadlineMovesOncePerQuarterOfTheTimeout(t *testing.T) {
	var timeout atomic.Int64
	timeout.Store(int64(40 * time.Second))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	l := newDeadlineListener(nil, &timeout, func() time.Time { return now })
	rc := &recordingConn{}
	c := &deadlineConn{Conn: rc, l: l}
	var want []time.Time
	step := func(at time.Duration, moved bool, deadline time.Time) {
		t.Helper()
		now = t0.Add(at)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if moved {
			want = append(want, deadline)
		}
		if len(rc.deadlines) != len(want) || len(want) > 0 && !rc.deadlines[len(want)-1].Equal(want[len(want)-1]) {
			t.Fatalf("at %s: deadlines %v, want %v", at, rc.deadlines, want)
		}
	}
	step(0, true, t0.Add(40*time.Second))
	step(time.Second, false, time.Time{})
	step(9*time.Second, false, time.Time{})
	step(10*time.Second, true, t0.Add(50*time.Second))
	// net/http lifts the write deadline after every request: the bound stays.
	if err := c.SetWriteDeadline(time.Time{}); err != nil || len(rc.deadlines) != len(want) {
		t.Fatalf("a lift reached the connection: %v %v", rc.deadlines, err)
	}
	step(19*time.Second, false, time.Time{})
	step(5*time.Minute, true, t0.Add(5*time.Minute+40*time.Second)) // idle, expired: moved first
	timeout.Store(int64(4 * time.Second))
	step(5*time.Minute+500*time.Millisecond, false, time.Time{}) // within a quarter of the new timeout
	step(5*time.Minute+time.Second, true, t0.Add(5*time.Minute+5*time.Second))
	timeout.Store(0)
	step(5*time.Minute+2*time.Second, true, time.Time{}) // lifted
	step(6*time.Minute, false, time.Time{})
	timeout.Store(int64(time.Second))
	step(7*time.Minute, true, t0.Add(7*time.Minute+time.Second))
	// A deadline set explicitly holds, however many writes pass, until it
	// is lifted; then the next write sets the bound again.
	explicitAt := t0.Add(8*time.Minute + 10*time.Second)
	if err := c.SetWriteDeadline(explicitAt); err != nil {
		t.Fatal(err)
	}
	want = append(want, explicitAt)
	step(8*time.Minute, false, time.Time{})
	step(9*time.Minute, false, time.Time{})
	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	want = append(want, time.Time{})
	step(9*time.Minute, true, t0.Add(9*time.Minute+time.Second))
}

// startServer serves h on a loopback port with the given write timeout.
func startServer(t *testing.T, h http.Handler, writeTimeout time.Duration) (*Server, string) {
	t.Helper()
	s := New(h, nil, slog.New(slog.DiscardHandler))
	s.SetWriteTimeout(writeTimeout)
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

// dialSmallBuffer connects with a small receive buffer, so that a client
// which reads nothing blocks the server's writes early.
func dialSmallBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Answers small enough for net/http to send after the handler returns are
// bounded too: a client that pipelines many requests and reads none is
// dropped after the write timeout instead of holding its connection (and
// a goroutine) for as long as it likes.
func TestPipelinedAnswersToAClientThatDoesNotReadAreCut(t *testing.T) {
	answer := strings.Repeat("x", 2000) // held by net/http until the handler returns
	var served atomic.Int64
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		io.WriteString(w, answer)
	}), 300*time.Millisecond)
	conn := dialSmallBuffer(t, addr)
	const n = 20000 // 40 MB of answers, far past any socket buffer
	go func() {
		w := bufio.NewWriter(conn)
		for range n {
			if _, err := w.WriteString("GET /x HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return
			}
		}
		w.Flush()
	}()
	// Wait until the server stops answering (its write blocked), then for
	// longer than the write timeout.
	for last := int64(-1); served.Load() != last; {
		last = served.Load()
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	// A server that dropped the connection has closed it: reading finds
	// the end (or a reset) once the few buffered answers are read. One that
	// still holds it keeps sending answers, slowly (the client's window is
	// tiny), until the read deadline.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection was held for a client that read nothing")
	}
}

// A handler's write to a client that stopped reading fails after the write
// timeout (the relay then cancels the upstream call), and a timeout set
// while a connection is open applies to its next writes.
func TestBlockedWriteFailsAfterATimeoutSetWhileOpen(t *testing.T) {
	failed := make(chan error, 1)
	s, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/small" {
			io.WriteString(w, "ok")
			return
		}
		chunk := []byte(strings.Repeat("x", 64<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				failed <- err
				return
			}
			w.(http.Flusher).Flush()
		}
	}), time.Hour)
	conn := dialSmallBuffer(t, addr)
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	// The connection's deadline is an hour away; the new timeout moves it
	// at the first write a quarter of the new timeout later.
	s.SetWriteTimeout(300 * time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	io.WriteString(conn, "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("write failed with %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write to a client that reads nothing never failed")
	}
}
