package relay

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadlineWriter counts the write deadlines a response sets and lifts.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	set, lifted int
}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		d.lifted++
	} else {
		d.set++
	}
	return nil
}

// An answer net/http holds in memory until the handler returns gets no
// write deadline; a larger one is bounded, and the bound is lifted by done.
func TestWholeAnswerDeadlineOnlyWhenAWriteCanBlock(t *testing.T) {
	for _, tc := range []struct {
		size int
		want int
	}{{0, 0}, {100, 0}, {heldAnswer, 0}, {heldAnswer + 1, 1}, {64 << 10, 1}} {
		d := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
		rs := newResponse(d, time.Now(), time.Minute)
		rs.whole(200, make([]byte, tc.size))
		rs.done()
		if d.set != tc.want || d.lifted != tc.want {
			t.Errorf("%d bytes: deadline set %d times and lifted %d times, want %d", tc.size, d.set, d.lifted, tc.want)
		}
		if d.Body.Len() != tc.size {
			t.Errorf("%d bytes: wrote %d", tc.size, d.Body.Len())
		}
	}
}

// heldAnswer rests on net/http holding that many bytes until the handler
// returns: no byte of such an answer reaches the connection before then.
// A Go release that changes the buffering fails here, not in production.
func TestNetHTTPHoldsASmallAnswerUntilTheHandlerReturns(t *testing.T) {
	release := make(chan struct{})
	written := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rs := newResponse(w, time.Now(), time.Minute)
		rs.whole(200, []byte(strings.Repeat("x", heldAnswer)))
		close(written)
		<-release
	}))
	defer srv.Close()
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before srv.Close, which waits for the handler
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	<-written
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	if n, err := conn.Read(b[:]); n > 0 || err == nil {
		t.Fatalf("a %d-byte answer reached the connection before the handler returned", heldAnswer)
	}
	free()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != heldAnswer {
		t.Fatalf("content length %d", resp.ContentLength)
	}
}
