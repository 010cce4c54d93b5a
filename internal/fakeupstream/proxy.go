package fakeupstream

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Proxy is a real SOCKS5 (RFC 1928/1929) or HTTP proxy (CONNECT and
// absolute-form requests) on loopback, for tests that must prove traffic
// went through it. It checks credentials when User is set.
type Proxy struct {
	User, Pass string
	// Conns counts tunnelled or forwarded connections.
	Conns atomic.Int64
	// AuthFailures counts rejected credentials.
	AuthFailures atomic.Int64

	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// StartSOCKS5 starts a SOCKS5 proxy; Port tells where.
func (p *Proxy) StartSOCKS5() error { return p.start(p.serveSOCKS) }

// StartHTTP starts an HTTP proxy.
func (p *Proxy) StartHTTP() error { return p.start(p.serveHTTP) }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) start(serve func(net.Conn)) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.ln, p.open = ln, map[net.Conn]struct{}{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c, true)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.track(c, false)
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return nil
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.open[c] = struct{}{}
	} else {
		delete(p.open, c)
	}
}

func (p *Proxy) pipe(client net.Conn, target string, first []byte) {
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	defer up.Close()
	p.Conns.Add(1)
	if len(first) > 0 {
		up.Write(first)
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, client); done <- struct{}{} }()
	go func() { io.Copy(client, up); done <- struct{}{} }()
	<-done
}

func (p *Proxy) serveSOCKS(c net.Conn) {
	r := bufio.NewReader(c)
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	io.ReadFull(r, methods)
	want := byte(0)
	if p.User != "" {
		want = 2
	}
	ok := false
	for _, m := range methods {
		ok = ok || m == want
	}
	if !ok {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		ver, _ := r.ReadByte()
		if ver != 1 {
			return
		}
		ul, _ := r.ReadByte()
		u := make([]byte, ul)
		io.ReadFull(r, u)
		pl, _ := r.ReadByte()
		pw := make([]byte, pl)
		io.ReadFull(r, pw)
		if string(u) != p.User || string(pw) != p.Pass {
			p.AuthFailures.Add(1)
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(r, req); err != nil || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(r, ip)
		host = net.IP(ip).String()
	case 3:
		l, _ := r.ReadByte()
		h := make([]byte, l)
		io.ReadFull(r, h)
		host = string(h)
	case 4:
		ip := make([]byte, 16)
		io.ReadFull(r, ip)
		host = net.IP(ip).String()
	default:
		return
	}
	pb := make([]byte, 2)
	io.ReadFull(r, pb)
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb))))
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	var buffered []byte
	if n := r.Buffered(); n > 0 {
		buffered, _ = r.Peek(n)
	}
	p.pipe(c, target, buffered)
}

func (p *Proxy) authOK(h http.Header) bool {
	if p.User == "" {
		return true
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.User+":"+p.Pass))
	if h.Get("Proxy-Authorization") == want {
		return true
	}
	p.AuthFailures.Add(1)
	return false
}

func (p *Proxy) serveHTTP(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		if !p.authOK(req.Header) {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
			return
		}
		if req.Method == http.MethodConnect {
			io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			var buffered []byte
			if n := r.Buffered(); n > 0 {
				buffered, _ = r.Peek(n)
			}
			p.pipe(c, req.Host, buffered)
			return
		}
		// Absolute-form request for a plain-HTTP target.
		req.RequestURI = ""
		req.Header.Del("Proxy-Authorization")
		req.Header.Del("Proxy-Connection")
		p.Conns.Add(1)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		err = resp.Write(flushWriter{c})
		resp.Body.Close()
		if err != nil {
			return
		}
	}
}

type flushWriter struct{ w io.Writer }

func (f flushWriter) Write(b []byte) (int, error) { return f.w.Write(b) }

var errUnused = errors.New("unused")
