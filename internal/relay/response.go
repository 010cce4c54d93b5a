package relay

import (
	"net/http"
	"strconv"
	"time"
)

// response is the client's side of a call and its only writer: the status,
// headers and bytes the client gets go through it, so the usage record and
// the access log say what the client really received.
type response struct {
	w       http.ResponseWriter
	flusher http.Flusher
	start   time.Time

	// status is what the client got (0 until decided; 499 when it left first).
	status int
	// errMsg is a short reason for a failed request, without secrets.
	errMsg string
	// ttfb is the time from the request's arrival to the response header.
	ttfb time.Duration
	// started: the header is written; errors from now on are in-stream events.
	started bool
	// preamble: a stream's preamble (message_start, ...) reached the client,
	// so a later attempt must not send its own.
	preamble bool
	// gone: a write failed, the client went away.
	gone bool
	// tap copies what the client gets for a body capture; nil without one.
	tap *tap
}

// newResponse wraps w. Every write to the client is bounded by the server's
// write timeout, on the connection (server.SetWriteTimeout): a client that
// stops reading makes a write fail, and the call ends as gone.
func newResponse(w http.ResponseWriter, start time.Time) response {
	f, _ := w.(http.Flusher)
	return response{w: w, flusher: f, start: start}
}

// Header is the header map to fill before the first write.
func (rs *response) Header() http.Header { return rs.w.Header() }

// begin writes the response header once.
func (rs *response) begin(status int) {
	if rs.started {
		return
	}
	rs.w.WriteHeader(status)
	rs.started = true
	rs.status = status
	rs.ttfb = time.Since(rs.start)
}

// flushWrite writes b and flushes it at once (streams); false when the
// client is gone.
func (rs *response) flushWrite(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if rs.tap != nil {
		rs.tap.add(b)
	}
	if _, err := rs.w.Write(b); err != nil {
		rs.gone = true
		return false
	}
	if rs.flusher != nil {
		rs.flusher.Flush()
	}
	return true
}

// whole writes a complete answer: header with its length, then the body.
func (rs *response) whole(status int, body []byte) {
	rs.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rs.begin(status)
	if rs.tap != nil {
		rs.tap.add(body)
	}
	if _, err := rs.w.Write(body); err != nil {
		rs.clientLeft() // the record says the client did not get it
	}
}

// failed records why the request failed; the status the client saw stays
// unless the answer has not started (then it is the status to record).
func (rs *response) failed(status int, msg string) {
	rs.status = status
	rs.errMsg = msg
}

// clientLeft records a client that went away before its answer was complete.
func (rs *response) clientLeft() {
	rs.gone = true
	rs.status = 499
	rs.errMsg = "client closed the request"
}

// recordedStatus is the status to record: 200 when nothing else was decided.
func (rs *response) recordedStatus() int {
	if rs.status == 0 {
		return http.StatusOK
	}
	return rs.status
}
