package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/sse"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// adapter is what a route knows about its upstream API.
type adapter interface {
	platform() string
	dialect() dialect
	// newRequest builds one attempt's upstream request.
	newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error)
	// classify reads a non-2xx answer.
	classify(c *call, status int, h http.Header, body []byte) provider.Verdict
	// decode turns a complete 2xx body into what the client gets, with usage.
	// An error means the body is malformed (the attempt failed).
	decode(c *call, body []byte) ([]byte, provider.Usage, error)
	// newStream starts one attempt's stream reader.
	newStream(c *call) streamer
}

// streamer reads one upstream SSE stream.
type streamer interface {
	// observe classifies an event and accumulates its usage.
	observe(ev *sse.Event) provider.EventClass
	// transform appends what the client receives for ev.
	transform(dst []byte, ev *sse.Event) []byte
	// passthrough: the client receives the upstream bytes unchanged.
	passthrough() bool
	// errVerdict reads an error event.
	errVerdict(ev *sse.Event) provider.Verdict
	// end appends the bytes that close a complete stream (e.g. "data: [DONE]").
	end(dst []byte) []byte
	// needsTerminal: a stream that ends without a Terminal event is broken.
	needsTerminal() bool
	usage() provider.Usage
}

// call is one client request on its way through the failover loop.
type call struct {
	w   http.ResponseWriter
	req *http.Request
	ad  adapter

	body       []byte
	bodyBuf    *[]byte // c.body's pooled buffer (see body.go); nil if not pooled
	sent       sentBodies
	model      string
	sessionKey string
	stream     bool
	keyHash    string
	// key is the relay key's policy entry (nil when auth is off);
	// admitted: the policy admitted the call and awaits its Done.
	key      *policy.Key
	admitted bool
	start    time.Time
	// state is adapter-specific per-request data.
	state any
	// exclude rules accounts out from the start (they do not count as tried).
	exclude []string

	account       string
	attempts      int
	status        int
	usage         provider.Usage
	ttfb          time.Duration
	errMsg        string
	wroteHeader   bool
	wrotePreamble bool
	committed     bool
	clientGone    bool
}

type outcome int

const (
	done       outcome = iota // answered by this account
	failed                    // this account failed; try another
	final                     // an answer (an error the client must see) was written
	clientGone                // the client went away
)

// upstreamAnswer is a non-2xx answer kept to hand to the client unmodified if
// no other account does better.
type upstreamAnswer struct {
	status int
	header http.Header
	body   []byte
}

type attemptResult struct {
	outcome outcome
	verdict provider.Verdict
	answer  *upstreamAnswer
}

// serve runs the failover loop and records usage.
func (r *Relay) serve(c *call) {
	if !r.admit(c) {
		r.finish(c)
		return
	}
	var excludeBuf [4]string
	exclude := append(excludeBuf[:0], c.exclude...)
	var last *upstreamAnswer
	var lastMsg string
	var noAcct *scheduler.NoAccountError
	platform := c.ad.platform()
	claim := r.syncSession(c)
	for c.attempts < r.opts.MaxAttempts {
		acct, err := r.sched.Pick(platform, c.model, c.sessionKey, exclude)
		if err != nil {
			errors.As(err, &noAcct)
			break
		}
		if claim {
			claim = false
			if b, ok := r.sched.Session(c.sessionKey); ok {
				r.shared.ClaimSession(c.req.Context(), b)
			}
		}
		c.attempts++
		c.account = acct.ID
		res := r.attempt(c, r.upstream(acct), false)
		r.sched.Release(acct)
		switch res.outcome {
		case done:
			r.sched.Report(acct.ID, provider.Verdict{Kind: provider.OK})
			r.finish(c)
			return
		case final, clientGone:
			if res.verdict.Kind != provider.OK {
				r.sched.Report(acct.ID, res.verdict)
			}
			r.finish(c)
			return
		}
		cd := r.sched.Report(acct.ID, res.verdict)
		r.log.Warn("upstream attempt failed", "account", acct.ID, "kind", res.verdict.Kind.String(), "reason", res.verdict.Reason,
			"cooldown_until", cd.Until.Format(time.RFC3339), "model_scope", cd.Model, "attempt", c.attempts)
		exclude = append(exclude, acct.ID)
		if res.answer != nil {
			last = res.answer
		}
		lastMsg = res.verdict.Reason
	}
	switch {
	case last != nil:
		r.writeAnswer(c, last)
	case c.attempts == 0 && noAcct != nil:
		r.writeNoAccount(c, noAcct)
	default:
		msg := "upstream request failed"
		if lastMsg != "" {
			msg += ": " + lastMsg
		}
		r.writeError(c, http.StatusBadGateway, msg)
	}
	r.finish(c)
}

// syncSession, in a cluster, makes a conversation this relay has no binding
// for consult the shared one first. It reports whether the binding Pick is
// about to make is new and must be claimed in the cluster at once.
func (r *Relay) syncSession(c *call) bool {
	if r.shared == nil || c.sessionKey == "" {
		return false
	}
	if _, ok := r.sched.Session(c.sessionKey); ok {
		return false
	}
	if b, ok := r.shared.LookupSession(c.req.Context(), c.sessionKey); ok {
		r.sched.ApplyRemote(nil, false, &b, false)
		return false
	}
	return true
}

func (r *Relay) writeNoAccount(c *call, e *scheduler.NoAccountError) {
	msg := e.Error()
	if e.Configured == 0 {
		msg += "; add an [[accounts]] entry to the config (see config.example.toml) and restart ccrelay serve"
	}
	if !e.RetryAt.IsZero() {
		secs := int(time.Until(e.RetryAt).Seconds()) + 1
		if secs < 1 {
			secs = 1
		}
		c.w.Header().Set("Retry-After", strconv.Itoa(secs))
		msg += fmt.Sprintf("; the first one comes back at %s", e.RetryAt.UTC().Format(time.RFC3339))
	}
	r.writeError(c, http.StatusServiceUnavailable, msg)
}

// writeError writes a relay-made error in the route's shape, or as an error
// event when the stream has begun.
func (r *Relay) writeError(c *call, status int, msg string) {
	c.status = status
	c.errMsg = msg
	if c.wroteHeader {
		r.writeStreamBytes(c, c.ad.dialect().streamError(status, msg))
		return
	}
	c.ad.dialect().writeError(c.w, status, msg)
	c.wroteHeader = true
}

// writeAnswer hands an upstream error answer to the client unmodified.
func (r *Relay) writeAnswer(c *call, a *upstreamAnswer) {
	c.status = a.status
	c.errMsg = "upstream " + strconv.Itoa(a.status)
	if c.wroteHeader {
		r.writeStreamBytes(c, c.ad.dialect().streamError(a.status, string(bytes.TrimSpace(a.body))))
		return
	}
	copyResponseHeader(c.w.Header(), a.header)
	c.w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	c.w.WriteHeader(a.status)
	_, _ = c.w.Write(a.body)
	c.wroteHeader = true
}

func (r *Relay) writeStreamBytes(c *call, b []byte) {
	if _, err := c.w.Write(b); err == nil {
		if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// attempt sends the request to one account.
func (r *Relay) attempt(c *call, up *Upstream, retried401 bool) attemptResult {
	ctx, cancel := context.WithCancel(c.req.Context())
	defer cancel()
	secret, err := up.Token.Token(ctx)
	if err != nil {
		return r.failedBeforeSending(c, err, provider.Network, "credential: ")
	}
	req, err := c.ad.newRequest(ctx, c, up, secret)
	if err != nil {
		return r.failedBeforeSending(c, err, provider.ServerError, "build request: ")
	}
	var timedOut atomic.Bool
	wait := r.opts.ResponseTimeout
	if c.stream {
		wait = r.opts.FirstByteTimeout
	}
	timer := time.AfterFunc(wait, func() { timedOut.Store(true); cancel() })
	defer timer.Stop()

	// RoundTrip, not Client.Do: Do clones every header for redirect handling
	// the relay never uses (an upstream's redirect goes to the client as is).
	rt := up.Client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		if c.req.Context().Err() != nil {
			return r.gone(c)
		}
		reason := "upstream connection failed: " + scrubNetErr(err)
		if timedOut.Load() {
			reason = "upstream sent no response within " + wait.String()
		}
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.Network, Reason: reason}}
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusUnauthorized && up.OAuth && !retried401 {
		// The token was believed valid: refresh once and retry this account.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		up.Token.Invalidate(secret)
		timer.Stop()
		return r.attempt(c, up, true)
	}

	if resp.StatusCode == http.StatusProxyAuthRequired {
		// Only the account's own proxy asks this (a plain-http upstream
		// through an HTTP proxy; over https it is a CONNECT error above):
		// the client has no proxy here to fix, the next account may serve.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.Network, Reason: "the account's proxy refused its credentials (407)"}}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		if rerr != nil && c.req.Context().Err() != nil {
			return r.gone(c)
		}
		v := c.ad.classify(c, resp.StatusCode, resp.Header, body)
		ans := &upstreamAnswer{status: resp.StatusCode, header: resp.Header, body: body}
		if v.Kind.Failover() {
			return attemptResult{outcome: failed, verdict: v, answer: ans}
		}
		r.writeAnswer(c, ans)
		return attemptResult{outcome: final, verdict: v}
	}

	if isEventStream(resp.Header) {
		timer.Reset(r.opts.FirstByteTimeout)
		return r.pipeStream(c, resp, timer, &timedOut)
	}
	body, err := readBody(resp)
	if err != nil {
		if c.req.Context().Err() != nil {
			return r.gone(c)
		}
		reason := "reading upstream body: " + scrubNetErr(err)
		if timedOut.Load() {
			reason = "upstream body not complete within " + wait.String()
		}
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.Network, Reason: reason}}
	}
	out, u, err := c.ad.decode(c, body)
	if err != nil {
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.ServerError, Reason: "malformed upstream response: " + err.Error()}}
	}
	c.usage = u
	c.status = resp.StatusCode
	c.ttfb = time.Since(c.start)
	h := c.w.Header()
	copyResponseHeader(h, resp.Header)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	c.w.WriteHeader(resp.StatusCode)
	c.wroteHeader = true
	if _, err := c.w.Write(out); err != nil {
		c.clientGone = true
	}
	return attemptResult{outcome: done}
}

// failedBeforeSending is an attempt that ended before its request left: the
// client went away, or err's own verdict (a Verdicter), or kind.
func (r *Relay) failedBeforeSending(c *call, err error, kind provider.Kind, prefix string) attemptResult {
	if c.req.Context().Err() != nil {
		return r.gone(c)
	}
	var vd Verdicter
	if errors.As(err, &vd) {
		return attemptResult{outcome: failed, verdict: vd.Verdict()}
	}
	return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: kind, Reason: prefix + err.Error()}}
}

func (r *Relay) gone(c *call) attemptResult {
	c.clientGone = true
	c.status = 499
	c.errMsg = "client closed the request"
	return attemptResult{outcome: clientGone}
}

// readBody reads a whole non-stream body, sized by Content-Length when known.
func readBody(resp *http.Response) ([]byte, error) {
	const max = 256 << 20
	if n := resp.ContentLength; n >= 0 && n <= max {
		buf := make([]byte, n)
		_, err := io.ReadFull(resp.Body, buf)
		return buf, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, max))
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(ct, "text/event-stream")
}

// scrubNetErr shortens a transport error for logs and clients. The URL that
// *url.Error carries may hold a query string, so only the cause is kept.
func scrubNetErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op + ": " + op.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// hopHeaders are never forwarded in either direction.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// requestDropHeaders are client headers that never reach the upstream: hop
// headers, the client's credentials (the account sets its own), and what the
// transport sets itself.
var requestDropHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Authorization": true, "X-Api-Key": true, "X-Goog-Api-Key": true,
	"Accept-Encoding": true, "Cookie": true, "Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, "X-Real-Ip": true,
}

// copyRequestHeader copies the client's headers that may go upstream.
func copyRequestHeader(dst, src http.Header) {
	conn := src["Connection"]
	for k, vv := range src {
		if hopHeaders[k] || requestDropHeaders[k] {
			continue
		}
		if len(conn) > 0 && listed(conn, k) {
			continue
		}
		dst[k] = vv
	}
}

func listed(conn []string, k string) bool {
	for _, v := range conn {
		for _, f := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}

// copyResponseHeader copies the upstream's headers that go to the client.
func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		if hopHeaders[k] || k == "Content-Length" || k == "Set-Cookie" || k == "Alt-Svc" {
			continue
		}
		dst[k] = vv
	}
}

// finish records usage and the access log line.
func (r *Relay) finish(c *call) {
	c.releaseBody()
	if c.status == 0 {
		c.status = http.StatusOK
	}
	lat := time.Since(c.start)
	rec := usage.Record{
		Time: c.start, RequestID: requestID(c.req), KeyHash: c.keyHash, AccountID: c.account, Platform: c.ad.platform(),
		Model: c.model, Usage: c.usage, Status: c.status, Latency: lat, TTFB: c.ttfb, Stream: c.stream,
		Attempts: c.attempts, Error: c.errMsg,
	}
	r.settle(c, &rec)
	if r.rec != nil {
		r.rec.Record(rec)
	}
	if info := InfoFrom(c.req.Context()); info != nil {
		info.Account, info.Model, info.Usage, info.Attempts, info.Status = c.account, c.model, c.usage, c.attempts, c.status
	}
}
