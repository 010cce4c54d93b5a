package relay

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
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
// no key configured, only loopback clients are served unless
// allow_unauthenticated is set. Failed attempts are braked per client address.
func (r *Relay) authenticate(req *http.Request, allowQueryKey bool) authResult {
	if r.policy.Open() {
		if r.allowUnauth.Load() || r.isLocal(req) {
			return authResult{keyHash: usage.Anonymous}
		}
		return authResult{status: http.StatusForbidden, msg: protectedMsg}
	}
	addr := r.clientAddr(req)
	if r.brake != nil {
		if wait := r.brake.Blocked(addr); wait > 0 {
			return authResult{status: http.StatusTooManyRequests, retry: wait,
				msg: "too many requests with a wrong relay key from this address; retry in " + strconv.Itoa(int(wait.Seconds()+0.999)) + "s"}
		}
	}
	key := presentedKey(req, allowQueryKey)
	k, ok := r.policy.Authenticate(key)
	if !ok {
		if r.brake != nil && key != "" {
			r.brake.Fail(addr)
		}
		return authResult{status: http.StatusUnauthorized}
	}
	return authResult{key: k, keyHash: k.ID}
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

// admit asks the policy whether the call's key may send its model now; on a
// refusal it writes the error (nothing goes upstream) and returns false.
// Accounts outside the key's groups are ruled out of the call.
func (r *Relay) admit(c *call) bool {
	if c.key == nil {
		return true
	}
	if ref := r.policy.Admit(c.req.Context(), c.key, c.model); ref != nil {
		r.writeRefusal(c, ref)
		return false
	}
	c.admitted = true
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
		model := c.model
		if m, ok := r.modelMap()[model]; ok {
			model = m
		}
		rec.CostMicros, rec.CostKnown = r.prices.Cost(model, c.usage)
		if !rec.CostKnown {
			rec.CostMicros = 0 // unknown, not free: CostKnown says so
		}
	}
	if c.admitted {
		c.admitted = false
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
	c.resp.whole(ref.Status, refusalBody(c.ad.dialect(), ref.Status, ref.Reason, ref.Message))
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

// refusalBody is a policy refusal in d's shape; OpenAI's names the code
// clients branch on (rate_limit_exceeded, insufficient_quota, permission_denied).
func refusalBody(d dialect, status int, reason policy.Reason, msg string) []byte {
	switch d.(type) {
	case openaiDialect, responsesDialect: // the Responses route (Codex) is OpenAI's too
		typ, code := "rate_limit_exceeded", "rate_limit_exceeded"
		switch {
		case status == http.StatusForbidden:
			typ, code = "permission_error", "permission_denied"
		case reason == policy.OverBudget:
			typ, code = "insufficient_quota", "insufficient_quota"
		}
		return openai.CodedErrorBody(typ, code, msg)
	}
	return d.errorBody(status, msg)
}
