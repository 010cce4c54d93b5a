package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
	// newRequest builds one attempt's upstream request. An error that is a
	// Verdicter is the account's (a failed project lookup); any other is the
	// relay's own and ends the call with a 500, no account touched: what the
	// client sent was checked before an account was picked.
	newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error)
	// classify reads a non-2xx answer.
	classify(c *call, status int, h http.Header, body []byte) provider.Verdict
	// decode turns a complete 2xx body from up into what the client gets,
	// with usage. An error means the body is malformed (the attempt failed).
	decode(c *call, up *Upstream, body []byte) ([]byte, provider.Usage, error)
	// newStream starts the stream reader of one attempt on up.
	newStream(c *call, up *Upstream) streamer
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
	req *http.Request
	// dialect is the client's API (the route's): the shape of the errors
	// the relay writes.
	dialect dialect
	// ad serves the current target: native (the route's own adapter) or a
	// convAdapter (matrix.go) for a target of another API; nil until the
	// first target is prepared on a route without a passthrough.
	ad adapter
	// native is the route's passthrough adapter, nil for a route whose
	// dialect no account speaks (every target converts); home is the
	// route's own pool (routing's route platform), the platform recorded
	// for a call refused before any target.
	native adapter
	home   string
	// targets are the places the call may be served, in order (empty: the
	// route's own pool, native); conv is the client's side of a conversion
	// (nil on routes that cannot convert); served the model sent upstream.
	targets []target
	conv    *conversion
	served  string
	// count, set on a token count (count.go), writes the number in the
	// client's shape, without the closing brace.
	count func(n int64) []byte
	// scrubbed: the body was sent again without the relay's wrapped
	// thinking state (scrubNative), which happens at most once.
	scrubbed bool
	// target names the target being tried, fallback why earlier ones were
	// passed over (the request log's attempt entries).
	target, fallback string
	// resp is the client's side: the only writer of what the client gets.
	resp response

	body       []byte
	bodyBuf    *[]byte // c.body's pooled buffer (see body.go); nil if not pooled
	sent       sentBodies
	model      string
	sessionKey string
	stream     bool
	// maxTokens is the output allowance the body names (0: none), and
	// reserved what the call holds against its key's dollar budget
	// (reserve.go), both for budget reservations.
	maxTokens, reserved int64
	keyHash             string
	// key is the relay key's policy entry (nil when auth is off);
	// admitted: the policy admitted the call and awaits its Done.
	key      *policy.Key
	admitted bool
	start    time.Time
	// exclude rules accounts out from the start (they do not count as tried).
	exclude []string

	account  string
	attempts int
	usage    provider.Usage
	// usageUnknown: the serving upstream reported no usage at all (usage
	// is then zero, not a count).
	usageUnknown bool
	// trail is the request log's record of the call (reqlog.go); capt is
	// set when a body capture may take it.
	trail usage.Request
	capt  *capturing
}

type outcome int

const (
	done       outcome = iota // answered by this account
	failed                    // this account failed; try another
	final                     // an answer (an error the client must see) was written
	clientGone                // the client went away
	again                     // refused for the relay's wrapped thinking state: sent again without it
)

// upstreamAnswer is a non-2xx answer kept to hand to the client unmodified if
// no other account does better.
type upstreamAnswer struct {
	status int
	header http.Header
	body   []byte
	// foreign: the answer is in another API's shape than the client's (a
	// converted target's); its message is rewritten into the client's.
	foreign bool
}

type attemptResult struct {
	outcome outcome
	verdict provider.Verdict
	answer  *upstreamAnswer
}

// serve runs the failover loop and records usage.
func (r *Relay) serve(c *call) {
	r.startCapture(c)
	if len(c.model) > maxModelName {
		r.writeError(c, http.StatusBadRequest, "the model name is "+strconv.Itoa(len(c.model))+" bytes; the limit is "+strconv.Itoa(maxModelName))
		c.model = c.model[:maxModelName]
		r.finish(c)
		return
	}
	if !r.admit(c) {
		r.finish(c)
		return
	}
	c.sessionKey = boundSessionKey(c.sessionKey)
	var excludeBuf [4]string
	l := failover{exclude: append(excludeBuf[:0], c.exclude...), claim: r.syncSession(c),
		turn: scheduler.Turn{SessionKey: c.sessionKey, KeyHash: c.keyHash}}
	if c.key != nil {
		l.turn.KeyName = c.key.Name
	}
	var one [1]target
	targets := c.targets
	if len(targets) == 0 {
		c.ad = c.native
		one[0] = target{platform: c.ad.platform(), model: c.model}
		targets = one[:]
	}
	targets = r.targetOrder(c, targets)
	for i := range targets {
		if c.attempts >= r.opts.MaxAttempts {
			break
		}
		if r.serveTarget(c, &l, &targets[i], i+1 < len(targets)) {
			r.finish(c)
			return
		}
	}
	switch {
	case l.last != nil:
		r.writeAnswer(c, l.last)
	case c.attempts == 0 && l.noAcct != nil:
		r.writeNoAccount(c, l.noAcct)
	default:
		msg := "upstream request failed"
		if l.lastMsg != "" {
			msg += ": " + l.lastMsg
		}
		r.writeError(c, http.StatusBadGateway, msg)
	}
	r.finish(c)
}

// failover is the state of one call's failover loop across its targets.
type failover struct {
	// exclude are the accounts tried (and ruled out from the start).
	exclude []string
	// last is the last upstream error answer worth handing to the client
	// if no account does better; lastMsg the last failure's reason.
	last    *upstreamAnswer
	lastMsg string
	// noAcct is why the last Pick found no account.
	noAcct *scheduler.NoAccountError
	// claim: the session binding Pick makes is new and must be claimed in
	// the cluster.
	claim bool
	turn  scheduler.Turn
}

// serveTarget tries the accounts of target t until one answers, the
// target has no account left or the attempts run out. It reports whether
// the call is answered (by an account or with a refusal); more says a
// later target remains to fall back to.
func (r *Relay) serveTarget(c *call, l *failover, t *target, more bool) (answered bool) {
	if !r.enter(c, t) {
		return true
	}
	l.turn.Model = t.model
	groupOut := r.outside(c, t)
	for c.attempts < r.opts.MaxAttempts {
		acct, err := r.sched.PickTurn(t.platform, l.turn, append(l.exclude, groupOut...))
		if err != nil {
			// A local target for errors.As: the loop state stays on the stack.
			var noAcct *scheduler.NoAccountError
			if errors.As(err, &noAcct) {
				l.noAcct = noAcct
				if more {
					r.noteFallback(c, t, noAcct)
				}
			}
			return false
		}
		if l.claim {
			l.claim = false
			if b, ok := r.sched.Session(c.sessionKey); ok {
				r.shared.ClaimSession(c.req.Context(), b)
			}
		}
		c.attempts++
		c.account = acct.ID
		res := r.attempt(c, r.upstream(acct))
		r.sched.Release(acct)
		// The reason is logged, stored with a cooldown and may reach an
		// alert: the same redaction as the client's error body.
		if res.verdict.Reason != "" { // a success has none: nothing to do per request
			res.verdict.Reason = r.table.Load().redact.text(res.verdict.Reason)
		}
		r.noteAttempt(c, acct.ID, &res)
		switch res.outcome {
		case done:
			r.sched.Report(acct.ID, provider.Verdict{Kind: provider.OK})
			return true
		case final, clientGone:
			if res.verdict.Kind != provider.OK {
				r.sched.Report(acct.ID, res.verdict)
			}
			return true
		case again:
			continue // the same account may take the scrubbed body: not its fault
		}
		cd := r.sched.Report(acct.ID, res.verdict)
		r.log.Warn("upstream attempt failed", "account", acct.ID, "kind", res.verdict.Kind.String(), "reason", res.verdict.Reason,
			"cooldown_until", cd.Until.Format(time.RFC3339), "model_scope", cd.Model, "attempt", c.attempts)
		l.exclude = append(l.exclude, acct.ID)
		if res.answer != nil {
			l.last = res.answer
		}
		l.lastMsg = res.verdict.Reason
	}
	return false
}

// Bounds on client-controlled strings the relay keeps (memory, SQLite,
// Redis, the usage table).
const (
	maxModelName  = 256
	maxSessionKey = 128
)

// boundSessionKey keeps a session key of any length to at most
// maxSessionKey bytes: a longer one is replaced by its hash.
func boundSessionKey(k string) string {
	if len(k) <= maxSessionKey {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// kept marks a binding learned from the cluster that still holds.
const kept = false

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
		r.sched.ApplyRemoteBinding(b, kept)
		return false
	}
	return true
}

// platform is the pool of the target c is on, its route's own before one
// is prepared.
func (c *call) platform() string {
	if c.ad != nil {
		return c.ad.platform()
	}
	return c.home
}

// tokenUse says whether an attempt's token is the account's first or the
// one refreshed after the first was refused.
type tokenUse int

const (
	firstToken tokenUse = iota
	refreshedToken
)

// attempt sends the request to one account. When the account refreshes its
// token (OAuth) and the upstream refuses it (a 401, or a setup call's
// refusal), the token is refreshed once and the request sent again.
func (r *Relay) attempt(c *call, up *Upstream) attemptResult {
	use := firstToken
	for {
		res, stale := r.send(c, up, use)
		if stale == "" {
			return res
		}
		up.Token.Invalidate(stale)
		use = refreshedToken
	}
}

// send makes one request to up. It returns the token instead of a result
// when the upstream refused a token that a refresh may replace (only with
// the first token of an account that refreshes).
func (r *Relay) send(c *call, up *Upstream, use tokenUse) (res attemptResult, stale string) {
	mayRefresh := up.OAuth && use == firstToken
	ctx, cancel := context.WithCancel(c.req.Context())
	defer cancel()
	secret, err := up.Token.Token(ctx)
	if err != nil {
		return r.failedBeforeSending(c, err, provider.Network, "credential: "), ""
	}
	req, err := c.ad.newRequest(ctx, c, up, secret)
	if err != nil {
		var st staleTokener
		if errors.As(err, &st) && st.StaleToken() && mayRefresh {
			// A setup call (project lookup) refused the token.
			return attemptResult{}, secret
		}
		var vd Verdicter
		if c.req.Context().Err() != nil || errors.As(err, &vd) {
			return r.failedBeforeSending(c, err, provider.ServerError, "build request: "), ""
		}
		r.log.Error("could not build the upstream request", "account", up.Account.ID, "err", err)
		r.writeError(c, http.StatusInternalServerError, "the relay could not build the upstream request: "+err.Error())
		return attemptResult{outcome: final}, ""
	}
	wait := r.opts.ResponseTimeout
	if c.stream {
		wait = r.opts.FirstByteTimeout
	}
	wd := newWatchdog(wait, cancel)
	defer wd.stop()

	// RoundTrip, not Client.Do: Do clones every header for redirect handling
	// the relay never uses (an upstream's redirect goes to the client as is).
	rt := up.Client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		if c.req.Context().Err() != nil {
			return r.gone(c), ""
		}
		reason := "upstream connection failed: " + scrubNetErr(err)
		if wd.timedOut() {
			reason = "upstream sent no response within " + wait.String()
		}
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.Network, Reason: reason}}, ""
	}
	defer resp.Body.Close()
	r.observeHeaders(c, resp.Header)
	if resp.StatusCode == http.StatusUnauthorized && mayRefresh {
		// The token was believed valid: the caller refreshes it and retries.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return attemptResult{}, secret
	}
	return r.receive(c, up, resp, wd, wait), ""
}

// receive reads an upstream answer: an error status, a stream or a whole
// body.
func (r *Relay) receive(c *call, up *Upstream, resp *http.Response, wd *watchdog, wait time.Duration) attemptResult {
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
		_, ans.foreign = c.ad.(*convAdapter)
		if v.Kind.Failover() {
			return attemptResult{outcome: failed, verdict: v, answer: ans}
		}
		if resp.StatusCode == http.StatusBadRequest && !ans.foreign && r.scrubNative(c) {
			v.Reason = "refused with the relay's wrapped thinking state of another provider; sent again without it"
			return attemptResult{outcome: again, verdict: v, answer: ans}
		}
		r.writeAnswer(c, ans)
		return attemptResult{outcome: final, verdict: v}
	}

	if isEventStream(resp.Header) {
		wd.reset(r.opts.FirstByteTimeout)
		return r.pipeStream(c, up, resp, wd)
	}
	body, err := readBody(resp)
	if err != nil {
		if c.req.Context().Err() != nil {
			return r.gone(c)
		}
		reason := "reading upstream body: " + scrubNetErr(err)
		if wd.timedOut() {
			reason = "upstream body not complete within " + wait.String()
		}
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.Network, Reason: reason}}
	}
	out, u, err := c.ad.decode(c, up, body)
	if err != nil {
		return attemptResult{outcome: failed, verdict: provider.Verdict{Kind: provider.ServerError, Reason: "malformed upstream response: " + err.Error()}}
	}
	c.usage = u
	copyResponseHeader(c.resp.Header(), resp.Header)
	c.resp.whole(resp.StatusCode, out)
	return attemptResult{outcome: done}
}

// staleTokener is implemented by errors that say the account's access token
// was refused before the request could be built (a 401 from a setup call).
type staleTokener interface{ StaleToken() bool }

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
	c.resp.clientLeft()
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

// servedModel is the model the upstream was asked for, "" when it is the
// one the client asked: a route's target model, else the [models] alias.
func (r *Relay) servedModel(c *call) string {
	m := c.served
	if m == "" {
		m = c.model
	}
	if a, ok := r.modelMap()[m]; ok {
		m = a
	}
	if m == c.model {
		return ""
	}
	return m
}

// finish records usage and the access log line.
func (r *Relay) finish(c *call) {
	c.releaseBody()
	status := c.resp.recordedStatus()
	lat := time.Since(c.start)
	rec := usage.Record{
		Time: c.start, RequestID: requestID(c.req), KeyHash: c.keyHash, AccountID: c.account, Platform: c.platform(),
		Model: c.model, ServedModel: r.servedModel(c), Usage: c.usage, UsageUnknown: c.usageUnknown, Status: status, Latency: lat, TTFB: c.resp.ttfb, Stream: c.stream,
		Attempts: c.attempts, Error: c.resp.errMsg,
	}
	r.settle(c, &rec)
	r.describe(c, &rec)
	if r.rec != nil {
		r.rec.Record(rec)
	}
	if info := InfoFrom(c.req.Context()); info != nil {
		info.Account, info.Model, info.Usage, info.Attempts, info.Status = c.account, c.model, c.usage, c.attempts, status
	}
}
