package relay

import (
	"context"
	"errors"
	"io"
	"math/bits"
	"net/http"
	"sync"
)

// Request bodies.
//
// The client's body is read into a pooled buffer (Claude Code sends ~100 KB
// per request; allocating and zeroing that for each one was a tenth of the
// relay's CPU at load). The buffer goes back to the pool when the call lets
// go of its body: when a stream commits (no other account can take over, and
// a stream may stay open for minutes) or when the call ends.
//
// The upstream transport reads the body from another goroutine and may still
// be reading when the call is over (an upstream that answered early). So the
// call never hands the buffer itself out: every upstream request gets a
// sentBody, which the call revokes under a lock before the buffer is reused.
// A revoked body reads as an error, so no byte of a reused buffer can reach
// an upstream.

// Pooled body buffers come in powers of two from 4 KB to 1 MB; larger bodies
// are allocated (and left to the garbage collector).
const (
	minPooledBody = 12 // 4 KB
	maxPooledBody = 20 // 1 MB
)

var bodyPools [maxPooledBody - minPooledBody + 1]sync.Pool

func bodyPoolIndex(n int) int {
	if n <= 1<<minPooledBody {
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledBody
}

// getBodyBuf returns a buffer of length n, pooled when n is at most 1 MB.
func getBodyBuf(n int) *[]byte {
	if n > 1<<maxPooledBody {
		b := make([]byte, n)
		return &b
	}
	i := bodyPoolIndex(n)
	if p, ok := bodyPools[i].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(i+minPooledBody))
	return &b
}

func putBodyBuf(p *[]byte) {
	c := cap(*p)
	if c > 1<<maxPooledBody || c&(c-1) != 0 || c < 1<<minPooledBody {
		return
	}
	*p = (*p)[:0]
	bodyPools[bodyPoolIndex(c)].Put(p)
}

// readRequestBody reads the client's body (at most max bytes) into a pooled
// buffer when its length is declared. The buffer starts at firstBodyChunk
// and doubles as bytes arrive, so memory follows what the client sent, not
// what its Content-Length claims.
func readRequestBody(req *http.Request, max int64) ([]byte, *[]byte, error) {
	rd := http.MaxBytesReader(nil, req.Body, max)
	n := int(req.ContentLength)
	if n < 0 {
		b, err := io.ReadAll(rd)
		return b, nil, err
	}
	p := getBodyBuf(min(n, firstBodyChunk))
	got := 0
	for {
		m, err := io.ReadFull(rd, (*p)[got:])
		got += m
		if err != nil {
			putBodyBuf(p)
			return nil, nil, err
		}
		if got == n {
			// Anything past Content-Length would be a protocol error; ignore it.
			return *p, p, nil
		}
		next := getBodyBuf(min(n, 2*len(*p)))
		copy(*next, (*p)[:got])
		putBodyBuf(p)
		p = next
	}
}

// sentBodies are the bodies a call handed to upstream requests.
type sentBodies struct {
	mu       sync.Mutex
	list     []*sentBody
	released bool
}

func (s *sentBodies) add(b *sentBody) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return false
	}
	s.list = append(s.list, b)
	return true
}

func (s *sentBodies) revokeAll() {
	s.mu.Lock()
	s.released = true
	list := s.list
	s.list = nil
	s.mu.Unlock()
	for _, b := range list {
		b.revoke()
	}
}

// sentBody is one upstream request's view of a request body.
type sentBody struct {
	mu      sync.Mutex
	b       []byte // what is left to read
	all     []byte // the whole body, for a replay
	sent    bool   // every byte was read
	revoked bool
}

var errBodyReleased = errors.New("request body already released")

func (r *sentBody) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A body sent in full stays at its end: the transport reads once more
	// after the last byte (to check the length), and that may come after
	// the upstream answered and the call let go of the body.
	if r.sent {
		return 0, io.EOF
	}
	if r.revoked {
		return 0, errBodyReleased
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		r.sent = true
		r.b = nil
	}
	return n, nil
}

func (r *sentBody) revoke() {
	r.mu.Lock()
	r.b, r.all, r.revoked = nil, nil, true
	r.mu.Unlock()
}

// replay is a fresh view of the whole body (nil once revoked).
func (r *sentBody) replay() *sentBody {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.revoked {
		return nil
	}
	return &sentBody{b: r.all, all: r.all}
}

// Close does nothing: the call decides when the bytes go (revoke).
func (*sentBody) Close() error { return nil }

// newUpstreamRequest builds an upstream request whose body the call can
// revoke. The transport's replay (GetBody, for a request that met a dead
// keep-alive connection) gets a revocable body too.
func newUpstreamRequest(ctx context.Context, c *call, method, url string, body []byte) (*http.Request, error) {
	if body == nil {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err == nil {
			req.Header = upstreamHeader(c)
		}
		return req, err
	}
	sb := &sentBody{b: body, all: body}
	if !c.sent.add(sb) {
		return nil, errBodyReleased
	}
	req, err := http.NewRequestWithContext(ctx, method, url, sb)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(body))
	req.Header = upstreamHeader(c)
	// The closure holds sb, not the bytes: the response keeps the request
	// (and so GetBody) alive for as long as a stream lasts.
	req.GetBody = func() (io.ReadCloser, error) {
		again := sb.replay()
		if again == nil || !c.sent.add(again) {
			return nil, errBodyReleased
		}
		return again, nil
	}
	return req, nil
}

// upstreamHeader is an upstream request's empty header, sized for the
// client's headers that pass plus the account's own (a map grown header by
// header rehashes several times per request).
func upstreamHeader(c *call) http.Header {
	if c.req == nil {
		return make(http.Header)
	}
	return make(http.Header, len(c.req.Header)+4)
}

// bodyReleaser is an adapter that keeps a request body of its own.
type bodyReleaser interface{ releaseBody() }

// releaseBody lets go of the request body once no attempt can follow:
// every upstream request's view of it is revoked, then its buffer goes back
// to the pool. Calling it again does nothing.
func (c *call) releaseBody() {
	c.sent.revokeAll()
	c.body = nil
	if br, ok := c.ad.(bodyReleaser); ok {
		br.releaseBody()
	}
	if c.bodyBuf != nil {
		putBodyBuf(c.bodyBuf)
		c.bodyBuf = nil
	}
}
