package relay

import (
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// The request log's hooks: each attempt's account, status and reason go on
// the call as the failover loop learns them (noteAttempt), the rest at the
// end (describe), all into the usage record the store writes off the
// request path. A capture copies the bodies of the requests it takes
// (startCapture, then the response's tap).

// maxAttemptMessage bounds an upstream message kept per attempt.
const maxAttemptMessage = 1024

// SetCaptures installs the body captures in force (nil or empty: none).
func (r *Relay) SetCaptures(s *reqlog.Set) { r.captures.Store(s) }

// noteAttempt records the attempt that just ended on acct.
func (r *Relay) noteAttempt(c *call, acct string, res *attemptResult) {
	a := usage.Attempt{Account: acct, Verdict: res.verdict.Kind.String(), End: time.Since(c.start)}
	switch {
	case res.answer != nil:
		a.Status = res.answer.status
	case res.outcome == done || res.outcome == final:
		a.Status = c.resp.recordedStatus()
	}
	if res.outcome == clientGone {
		a.Verdict, a.Reason = "client_gone", "client closed the request"
	}
	if res.verdict.Reason != "" {
		a.Reason = res.verdict.Reason // serve redacted it already
	}
	if res.answer != nil {
		a.Message = r.table.Load().redact.text(upstreamMessage(res.answer.body))
	}
	if len(c.targets) > 0 {
		a.Target, a.Fallback = c.target, c.fallback
		c.fallback = ""
	}
	c.trail.Add(c.attempts-1, a)
}

// upstreamMessage is an upstream error body's message: error.message in the
// Anthropic, OpenAI and Google shapes, else the body's start.
func upstreamMessage(body []byte) string {
	for _, p := range []string{"error.message", "message", "detail", "error.status", "error"} {
		if v := gjson.GetBytes(body, p); v.Type == gjson.String && v.Str != "" {
			return bound(v.Str, maxAttemptMessage)
		}
	}
	return bound(string(body), maxAttemptMessage)
}

// bound cuts s to at most n bytes, at a rune boundary.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// describe fills the request log's part of the record.
func (r *Relay) describe(c *call, rec *usage.Record) {
	rec.Request = c.trail
	if c.req != nil {
		rec.UserAgent = c.req.UserAgent()
		rec.Route = c.req.URL.Path
		if info := InfoFrom(c.req.Context()); info != nil {
			rec.ClientAddr = info.ClientAddr
		}
	}
	if c.ad != nil {
		rec.Dialect = c.dialect.name()
	}
	if c.capt != nil {
		rec.Bodies = r.takeCapture(c, rec)
	}
}

// capturing is a call some capture may take: its request body copied, its
// answer tapped.
type capturing struct {
	cands []*reqlog.Capture
	req   []byte
	// reqCut: the request body was longer than the cap.
	reqCut bool
	tap    tap
}

// tap keeps a copy of what the client receives, up to max bytes.
type tap struct {
	buf []byte
	max int
	cut bool
}

func (t *tap) add(b []byte) {
	room := t.max - len(t.buf)
	if len(b) > room {
		t.cut = true
		b = b[:max(room, 0)]
	}
	t.buf = append(t.buf, b...)
}

// startCapture, when a capture may take this call, copies its body and taps
// its answer. Without captures it is one atomic load.
func (r *Relay) startCapture(c *call) {
	set := r.captures.Load()
	if set.Empty() {
		return
	}
	key := ""
	if c.key != nil {
		key = c.key.Name
	}
	cands := set.Candidates(key, time.Now())
	if len(cands) == 0 {
		return
	}
	limit := 0
	for _, k := range cands {
		limit = max(limit, k.BodyCap())
	}
	cp := &capturing{cands: cands, tap: tap{max: limit}}
	n := min(len(c.body), limit)
	cp.req = append([]byte(nil), c.body[:n]...)
	cp.reqCut = n < len(c.body)
	c.capt = cp
	c.resp.tap = &cp.tap
}

// takeCapture decides, at the end of the call, whether a candidate capture
// takes it, and returns its bodies with every secret removed: the relay key
// the client presented, the accounts' credentials, anything shaped like a
// provider key or token, and credential-looking JSON members.
func (r *Relay) takeCapture(c *call, rec *usage.Record) *usage.Bodies {
	tried := make([]string, 0, 1+len(c.trail.More))
	for _, a := range c.trail.Attempts(c.attempts) {
		tried = append(tried, a.Account)
	}
	k := reqlog.Take(c.capt.cands, tried, rec.Status)
	if k == nil {
		return nil
	}
	secrets := presentedKeys(c.req)
	rd := r.table.Load().redact
	clean := func(b []byte, limit int) []byte {
		b = rd.body(reqlog.Fields(reqlog.Exact(b, secrets)))
		if len(b) > limit {
			b = b[:limit]
		}
		return b
	}
	b := &usage.Bodies{CaptureID: k.ID, Expires: k.Expires(),
		Request: clean(c.capt.req, k.BodyCap()), Response: clean(c.capt.tap.buf, k.BodyCap()),
		RequestTruncated: c.capt.reqCut || len(c.capt.req) > k.BodyCap(), ResponseTruncated: c.capt.tap.cut || len(c.capt.tap.buf) > k.BodyCap()}
	if c.req != nil {
		b.RequestHeader = rd.text(string(reqlog.Exact([]byte(reqlog.Header(c.req.Header)), secrets)))
	}
	return b
}

// presentedKeys are the credentials the client sent (its relay key, in any
// of the places the relay reads one).
func presentedKeys(req *http.Request) []string {
	if req == nil {
		return nil
	}
	var out []string
	for _, h := range []string{"X-Api-Key", "X-Goog-Api-Key", "Authorization"} {
		for _, v := range req.Header.Values(h) {
			out = append(out, v)
			if len(v) > 7 && (v[:7] == "Bearer " || v[:7] == "bearer ") {
				out = append(out, v[7:])
			}
		}
	}
	if req.URL != nil && req.URL.RawQuery != "" {
		if k := req.URL.Query().Get("key"); k != "" {
			out = append(out, k)
		}
	}
	return out
}
