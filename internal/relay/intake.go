package relay

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// bodyRule is what a route requires of the request body.
type bodyRule int

const (
	// noBody: the route reads no body (GET routes, early rejections).
	noBody bodyRule = iota
	// jsonObject: a body that looks like a JSON object ({...}); the
	// upstream judges the rest (the Anthropic and OpenAI routes pass the
	// body through, and a full check would cost more than the relay's own
	// work on a 100 KB body).
	jsonObject
	// jsonValid: a body that is valid JSON and an object, for routes that
	// rewrite it (Code Assist wraps the body in an envelope).
	jsonValid
)

// intakeOpts says what a route's intake checks.
type intakeOpts struct {
	// queryKey: the relay key may come as ?key= (Gemini clients do that).
	queryKey bool
	body     bodyRule
	// home is the route's own pool, where a model whose name places it in
	// no pool goes; "" is the platform of the route's passthrough adapter.
	// A route whose passthrough serves another pool, or that has none
	// (Chat Completions: compat accounts, else conversion), names it.
	home string
}

// Limits on what a client controls (see RELIABILITY.md, hostile input).
const (
	// maxHeaderValue is the longest single header value accepted (real
	// clients send under 8 KiB in all); the server caps the whole block.
	maxHeaderValue = 16 << 10
	// MaxHeaderBytes is the whole request header block's cap, for the
	// server (Go answers 431 past it).
	MaxHeaderBytes = 64 << 10
	// firstBodyChunk is the buffer a body starts in; it grows as bytes
	// arrive, never to what Content-Length merely claims. Claude Code's
	// requests are 70-300 KB (its system prompt and tools alone are ~70
	// KB): at 128 KB most are read in one piece, with no regrowth copy.
	firstBodyChunk = 128 << 10
)

// closeUnread makes a refusal that leaves a declared body unread close the
// connection at once, whatever the body's size. Call it before the answer's
// header is written. "Connection: close" stops net/http reading the body
// before the answer, but after the handler returns net/http still reads up to
// 256 KiB of it (maxPostHandlerReadBytes, in the body's Close), closing or
// not, and with no deadline of its own: a client that declared a small body
// and sent nothing held its connection open for as long as it liked. A read
// deadline in the past ends that read with what is already buffered.
func closeUnread(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// refuseRepeated answers a body that has a top-level key the relay reads
// more than once (provider.PickMembers) with a 400 in the route's shape;
// nothing goes upstream.
func (r *Relay) refuseRepeated(c *call, key string) {
	r.writeError(c, http.StatusBadRequest, "the request body has the key "+strconv.Quote(truncateForError(key))+" more than once; send each key once (parsers disagree on which copy counts)")
	r.finish(c)
}

// intake authenticates the request, checks its headers and reads its body
// (bounded in size and time). It writes the error itself and returns nil
// when the request must stop here. A refusal that leaves a declared body
// unread closes the connection, so the client is answered at once instead of
// the server waiting for bytes it will discard.
func (r *Relay) intake(w http.ResponseWriter, req *http.Request, d dialect, ad adapter, o intakeOpts) *call {
	refuse := func(status int, msg string) *call {
		closeUnread(w, req)
		writeDialectError(w, d, status, msg)
		return nil
	}
	auth := r.authenticate(req, o.queryKey)
	switch auth.status {
	case 0:
	case http.StatusUnauthorized:
		how := "x-api-key or Authorization: Bearer"
		if o.queryKey {
			how = "x-goog-api-key, ?key= or Authorization: Bearer"
		}
		return refuse(http.StatusUnauthorized, "invalid or missing relay API key (send it as "+how+")")
	default:
		closeUnread(w, req)
		writeRefusalTo(w, d, auth.status, policy.RateLimited, auth.msg, auth.retry)
		return nil
	}
	// Parse the query only when it may hold a key (most requests have none).
	if !o.queryKey && strings.Contains(req.URL.RawQuery, "key=") && req.URL.Query().Has("key") {
		// A key in a URL ends up in logs and histories; only Gemini clients need it.
		return refuse(http.StatusBadRequest, "a relay key in the query string (?key=) is only accepted on /gemini routes; send it as a header")
	}
	for name, vv := range req.Header {
		for _, v := range vv {
			if len(v) > maxHeaderValue {
				return refuse(http.StatusRequestHeaderFieldsTooLarge, "header "+truncateForError(name)+" is "+strconv.Itoa(len(v))+" bytes; the limit is "+strconv.Itoa(maxHeaderValue))
			}
		}
	}
	start := time.Now()
	c := &call{req: req, native: ad, home: o.home, dialect: d, keyHash: auth.keyHash, key: auth.key, start: start, resp: newResponse(w, start)}
	if c.home == "" {
		c.ad, c.home = ad, ad.platform()
	}
	if o.body == noBody {
		return c
	}
	max := r.opts.MaxBodyBytes
	if req.ContentLength > max {
		return refuse(http.StatusRequestEntityTooLarge, "request body is "+strconv.FormatInt(req.ContentLength, 10)+" bytes; the limit is "+strconv.FormatInt(max, 10))
	}
	// A body must arrive within the body timeout, however slowly it
	// trickles; the deadline is lifted once it is in (streams run long).
	rc := http.NewResponseController(w)
	if r.opts.BodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(r.opts.BodyTimeout))
	}
	body, buf, err := readRequestBody(req, max)
	if r.opts.BodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return refuse(http.StatusRequestEntityTooLarge, "request body exceeds the limit of "+strconv.FormatInt(max, 10)+" bytes")
		case errors.Is(err, os.ErrDeadlineExceeded):
			return refuse(http.StatusRequestTimeout, "the request body did not arrive within "+r.opts.BodyTimeout.String())
		}
		return refuse(http.StatusBadRequest, "could not read the request body: "+err.Error())
	}
	valid := provider.LooksLikeJSONObject(body)
	if valid && o.body == jsonValid {
		valid = gjson.ValidBytes(body)
	}
	if !valid {
		if buf != nil {
			putBodyBuf(buf)
		}
		writeDialectError(w, d, http.StatusBadRequest, "request body is not a JSON object")
		return nil
	}
	c.body, c.bodyBuf = body, buf
	return c
}
