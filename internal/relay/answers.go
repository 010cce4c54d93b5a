package relay

import (
	"bytes"
	"strconv"
)

// The errors a call ends with: a relay-made error in the client's dialect,
// or an upstream's error answer handed on (noaccount.go: no account to
// serve it).

// writeError writes a relay-made error in the route's shape, or as an error
// event when the stream has begun.
func (r *Relay) writeError(c *call, status int, msg string) {
	r.writeParamError(c, status, msg, "")
}

// writeParamError is writeError naming the request parameter at fault,
// for dialects whose error body has a field for it (OpenAI's param).
func (r *Relay) writeParamError(c *call, status int, msg, param string) {
	d := c.dialect
	if c.resp.started {
		c.resp.failed(status, msg)
		c.resp.flushWrite(d.streamError(status, msg))
		return
	}
	body := d.errorBody(status, msg)
	if pd, ok := d.(paramDialect); ok && param != "" {
		body = pd.paramErrorBody(status, msg, param)
	}
	c.resp.Header().Set("Content-Type", "application/json")
	c.resp.whole(status, body)
	c.resp.errMsg = msg
}

// writeAnswer hands an upstream error answer to the client with its wording
// intact (clients match on it) and every secret removed.
func (r *Relay) writeAnswer(c *call, a *upstreamAnswer) {
	body := r.table.Load().redact.body(a.body)
	if a.foreign {
		msg := upstreamMessage(body)
		if c.resp.started {
			c.resp.failed(a.status, "upstream "+strconv.Itoa(a.status))
			c.resp.flushWrite(c.dialect.streamError(a.status, msg))
			return
		}
		c.resp.Header().Set("Content-Type", "application/json")
		c.resp.whole(a.status, c.dialect.errorBody(a.status, msg))
		c.resp.errMsg = "upstream " + strconv.Itoa(a.status)
		return
	}
	if c.resp.started {
		c.resp.failed(a.status, "upstream "+strconv.Itoa(a.status))
		c.resp.flushWrite(c.dialect.streamError(a.status, string(bytes.TrimSpace(body))))
		return
	}
	copyResponseHeader(c.resp.Header(), a.header)
	c.resp.whole(a.status, body)
	c.resp.errMsg = "upstream " + strconv.Itoa(a.status)
}
