package relay

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/policy"
	"github.com/ccrelay/ccrelay/internal/provider"
)

// intake authenticates the request and reads its body (bounded). It writes
// the error itself and returns nil when the request must stop here.
func (r *Relay) intake(w http.ResponseWriter, req *http.Request, ad adapter, allowQueryKey, needBody bool) *call {
	d := ad.dialect()
	auth := r.authenticate(req, allowQueryKey)
	switch auth.status {
	case 0:
	case http.StatusUnauthorized:
		how := "x-api-key or Authorization: Bearer"
		if allowQueryKey {
			how = "x-goog-api-key, ?key= or Authorization: Bearer"
		}
		d.writeError(w, http.StatusUnauthorized, "invalid or missing relay API key (send it as "+how+")")
		return nil
	default:
		writeRefusalTo(w, d, auth.status, policy.RateLimited, auth.msg, auth.retry)
		return nil
	}
	c := &call{w: w, req: req, ad: ad, keyHash: auth.keyHash, key: auth.key, start: time.Now()}
	// Parse the query only when it may hold a key (most requests have none).
	if !allowQueryKey && strings.Contains(req.URL.RawQuery, "key=") && req.URL.Query().Has("key") {
		// A key in a URL ends up in logs and histories; only Gemini clients need it.
		d.writeError(w, http.StatusBadRequest, "a relay key in the query string (?key=) is only accepted on /gemini routes; send it as a header")
		return nil
	}
	if !needBody {
		return c
	}
	max := r.opts.MaxBodyBytes
	if req.ContentLength > max {
		d.writeError(w, http.StatusRequestEntityTooLarge, "request body is "+strconv.FormatInt(req.ContentLength, 10)+" bytes; the limit is "+strconv.FormatInt(max, 10))
		return nil
	}
	body, buf, err := readRequestBody(req, max)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			d.writeError(w, http.StatusRequestEntityTooLarge, "request body exceeds the limit of "+strconv.FormatInt(max, 10)+" bytes")
			return nil
		}
		d.writeError(w, http.StatusBadRequest, "could not read the request body: "+err.Error())
		return nil
	}
	if !provider.LooksLikeJSONObject(body) {
		if buf != nil {
			putBodyBuf(buf)
		}
		d.writeError(w, http.StatusBadRequest, "request body is not a JSON object")
		return nil
	}
	c.body, c.bodyBuf = body, buf
	return c
}
