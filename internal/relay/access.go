package relay

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// This file is where the relay asks internal/policy its questions: who the
// client is (authenticate, in intake), and whether this key may send this
// model now (admit, first thing in serve), and what the request cost
// (settle, in finish). Each is one call; the rules live in policy.

// Coster prices a request's usage (internal/pricing implements it).
type Coster interface {
	Cost(model string, u provider.Usage) (int64, bool)
}

// protectedMsg tells a non-loopback client of a relay without keys how the
// operator fixes it.
const protectedMsg = "this relay has no relay key configured, so it serves only clients on this machine (protected mode). " +
	"To serve others, add a relay key: `ccrelay config init` writes a config with one (or `ccrelay keys add NAME`), and clients send it as x-api-key or Authorization: Bearer; " +
	"or set allow_unauthenticated = true at the top of the config to serve everyone without a key"

// authResult is who the client is, as intake needs it.
type authResult struct {
	key     *policy.Key
	keyHash string
	status  int // 0 = authenticated
	msg     string
	retry   time.Duration
}

// authenticate checks the relay key a request presents: one map lookup on
// the sha256 digest of the presented key, then one constant-time compare
// (policy.Authenticate says why that reveals nothing about any key). With
// no key configured, only loopback clients are served, and only requests a
// web page cannot make (protectedRefusal), unless allow_unauthenticated is
// set. Wrong keys are braked per client address: past the brake's limit a
// wrong key gets 429 instead of 401. A valid key is always served, braked
// address or not: the brake holds back guesses, not the people behind one
// NAT or proxy address whose neighbour guessed (the key is checked first,
// the same way either way).
func (r *Relay) authenticate(req *http.Request, allowQueryKey bool) authResult {
	if r.policy.Open() {
		if r.allowUnauth.Load() {
			return authResult{keyHash: usage.Anonymous}
		}
		if !r.isLocal(req) {
			return authResult{status: http.StatusForbidden, msg: protectedMsg}
		}
		if status, msg := protectedRefusal(req); status != 0 {
			return authResult{status: status, msg: msg}
		}
		return authResult{keyHash: usage.Anonymous}
	}
	key := presentedKey(req, allowQueryKey)
	if k, ok := r.policy.Authenticate(key); ok {
		return authResult{key: k, keyHash: k.ID}
	}
	if r.brake != nil && key != "" {
		addr := r.clientAddr(req)
		if wait := r.brake.Blocked(addr); wait > 0 {
			return authResult{status: http.StatusTooManyRequests, retry: wait,
				msg: "too many requests with a wrong relay key from this address; retry in " + strconv.Itoa(int(wait.Seconds()+0.999)) + "s"}
		}
		r.brake.Fail(addr)
	}
	return authResult{status: http.StatusUnauthorized}
}

func presentedKey(req *http.Request, allowQueryKey bool) string {
	key := req.Header.Get("X-Api-Key")
	if key == "" {
		if a := req.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			key = strings.TrimSpace(a[7:])
		}
	}
	if key == "" {
		key = req.Header.Get("X-Goog-Api-Key")
	}
	if key == "" && allowQueryKey {
		key = req.URL.Query().Get("key")
	}
	return key
}

// clientAddr is the client's address: what the server middleware resolved
// (X-Forwarded-For believed only from trusted proxies), else the TCP peer.
func (r *Relay) clientAddr(req *http.Request) netip.Addr {
	if info := InfoFrom(req.Context()); info != nil && info.ClientAddr.IsValid() {
		return info.ClientAddr
	}
	return PeerAddr(req)
}

// PeerAddr is the TCP peer's address of req (invalid if unparsable).
func PeerAddr(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// isLocal reports whether a client of a relay without keys may be served:
// its address is loopback, and it is not a request relayed by a local
// reverse proxy that is not a trusted proxy (that proxy's clients are
// anyone).
func (r *Relay) isLocal(req *http.Request) bool {
	info := InfoFrom(req.Context())
	if info != nil && info.ClientAddr.IsValid() && info.ViaTrustedProxy {
		return info.ClientAddr.IsLoopback()
	}
	if !PeerAddr(req).IsLoopback() {
		return false
	}
	return req.Header.Get("X-Forwarded-For") == "" && req.Header.Get("Forwarded") == ""
}

// protectedRefusal guards protected mode against web pages. A page open in
// the operator's browser can post to 127.0.0.1 blind (a text/plain body is
// a "simple" cross-origin request: no CORS preflight), and through DNS
// rebinding (its own host name made to resolve to 127.0.0.1) read the
// answers. So a request is served only when its Host names loopback
// (localhost, or a loopback address such as 127.0.0.1 or [::1], any port;
// a rebound name is not one), it carries no Origin (browsers send one with
// every cross-origin request and every POST; CLI and SDK clients send
// none), and a body comes as Content-Type: application/json (which a page
// cannot send to another origin without a preflight the relay never
// grants). Claude Code, Codex, Gemini CLI and the SDKs send exactly that.
// It returns 0 when req may be served, else the status and message.
func protectedRefusal(req *http.Request) (int, string) {
	const why = "this relay has no relay key configured (protected mode), so it serves only programs on this machine, not web pages: "
	const fix = "; to serve anything else, add a relay key (`ccrelay keys add NAME`)"
	if !loopbackHost(req.Host) {
		return http.StatusForbidden, why + "the request must be addressed to localhost, 127.0.0.1 or [::1], not " + strconv.Quote(truncateForError(req.Host)) + fix
	}
	if _, ok := req.Header["Origin"]; ok {
		return http.StatusForbidden, why + "a request with an Origin header (sent by browsers) is refused" + fix
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		ct := req.Header.Get("Content-Type")
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return http.StatusBadRequest, why + "the body must be sent as Content-Type: application/json, not " + strconv.Quote(truncateForError(ct)) + fix
		}
	}
	return 0, ""
}

// loopbackHost reports whether a Host header names this machine: localhost
// or a loopback address, with or without a port.
func loopbackHost(h string) bool {
	host := h
	if hp, _, err := net.SplitHostPort(h); err == nil {
		host = hp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		host = h[1 : len(h)-1]
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// admit asks the policy whether the call's key may send its model now; on a
// refusal it writes the error (nothing goes upstream) and returns false.
// Accounts outside the key's groups are ruled out of the call.
func (r *Relay) admit(c *call) bool {
	if c.key == nil {
		return true
	}
	t := time.Now()
	ref := r.policy.Admit(c.req.Context(), c.key, c.model)
	c.trail.QueueWait = time.Since(t)
	if ref != nil {
		r.writeRefusal(c, ref)
		return false
	}
	c.admitted = true
	if !r.reserve(c) {
		return false
	}
	if ex := r.table.Load().excludedBy(c.key); len(ex) > 0 {
		c.exclude = append(c.exclude, ex...)
	}
	return true
}

// settle prices the finished call (once, O(1)) and charges it to the key.
func (r *Relay) settle(c *call, rec *usage.Record) {
	if c.key != nil {
		rec.KeyName = c.key.Name
	}
	if r.prices != nil {
		// The served model's price: a route may send another model than
		// the one asked.
		rec.CostMicros, rec.CostKnown = r.prices.Cost(rec.Served(), c.usage)
		if rec.UsageUnknown {
			rec.CostKnown = false
		}
		if !rec.CostKnown {
			rec.CostMicros = 0 // unknown, not free: CostKnown says so
		}
	}
	if c.admitted {
		c.admitted = false
		r.policy.Release(c.key, c.reserved)
		c.reserved = 0
		u := c.usage
		r.policy.Done(c.key, rec.CostMicros, rec.CostKnown, u.InputTokens+u.OutputTokens+u.CacheCreationTokens+u.CacheReadTokens)
	}
}

// writeRefusal answers a refused request in the client's dialect:
// Anthropic rate_limit_error / permission_error, OpenAI rate_limit_exceeded /
// insufficient_quota / permission_error, Google RESOURCE_EXHAUSTED /
// PERMISSION_DENIED, with retry-after where waiting helps.
func (r *Relay) writeRefusal(c *call, ref *policy.Refusal) {
	setRetryAfter(c.resp.Header(), ref.RetryAfter)
	c.resp.Header().Set("Content-Type", "application/json")
	c.resp.whole(ref.Status, refusalBody(c.dialect, ref.Status, ref.Reason, ref.Message))
	c.resp.failed(ref.Status, ref.Message)
}

// writeRefusalTo answers a request refused before its call began.
func writeRefusalTo(w http.ResponseWriter, d dialect, status int, reason policy.Reason, msg string, retry time.Duration) {
	setRetryAfter(w.Header(), retry)
	writeJSON(w, status, refusalBody(d, status, reason, msg))
}

func setRetryAfter(h http.Header, retry time.Duration) {
	if retry > 0 {
		secs := int64((retry + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(retry.Milliseconds(), 10))
	}
}

// refusalBody is a policy refusal in d's shape: a spent budget as d names
// one, anything else by its status.
func refusalBody(d dialect, status int, reason policy.Reason, msg string) []byte {
	if reason == policy.OverBudget {
		return d.quotaBody(msg)
	}
	return d.errorBody(status, msg)
}
