package relay

import (
	"bytes"
	"net/http"
)

// QuotaObserver learns the rate-limit numbers upstream answers carry: the
// headers of every answer (any status) and the in-stream events that hold
// them (Codex's codex.rate_limits). Both calls sit on the request path: they
// must return at once, and cost next to nothing when there is nothing to read.
type QuotaObserver interface {
	ObserveHeaders(accountID string, h http.Header)
	ObserveEvent(accountID, name string, data []byte)
}

// SetQuotaObserver attaches the quota tracker; call before serving.
func (r *Relay) SetQuotaObserver(q QuotaObserver) { r.quota = q }

// observeHeaders hands one upstream answer's headers to the quota observer.
func (r *Relay) observeHeaders(c *call, h http.Header) {
	if r.quota != nil {
		r.quota.ObserveHeaders(c.account, h)
	}
}

const codexRateLimits = "codex.rate_limits"

var codexRateLimitsData = []byte(`{"type":"codex.rate_limits"`)

// observeCodexEvent passes a codex.rate_limits event (named, or unnamed with
// the type first in its data, as Codex's backend writes it) to q.
func observeCodexEvent(q QuotaObserver, account string, name, data []byte) {
	if q == nil {
		return
	}
	if string(name) == codexRateLimits || (len(name) == 0 && bytes.HasPrefix(data, codexRateLimitsData)) {
		q.ObserveEvent(account, codexRateLimits, data)
	}
}
