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
	// writeTimeout bounds each write: a client that stops reading is
	// dropped (and its upstream call cancelled) instead of holding both.
	writeTimeout time.Duration
	rc           *http.ResponseController
	deadline     bool // a write deadline is set on the connection
	// armedAt is when the deadline was last moved (see armDeadline).
	armedAt time.Time

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
}

func newResponse(w http.ResponseWriter, start time.Time, writeTimeout time.Duration) response {
	f, _ := w.(http.Flusher)
	return response{w: w, flusher: f, start: start, writeTimeout: writeTimeout}
}

// armDeadline bounds the next write. Moving a connection's deadline costs
// a runtime timer update, so a stream's writes move it only once a quarter
// of the timeout has passed since the last move: a write that blocks is cut
// after between 3/4 of write_timeout and all of it.
func (rs *response) armDeadline() {
	if rs.writeTimeout <= 0 {
		return
	}
	now := time.Now()
	if rs.deadline && now.Sub(rs.armedAt) < rs.writeTimeout/4 {
		return
	}
	if rs.rc == nil {
		rs.rc = http.NewResponseController(rs.w)
	}
	if rs.rc.SetWriteDeadline(now.Add(rs.writeTimeout)) == nil {
		rs.deadline, rs.armedAt = true, now
	}
}

// done lifts the write deadline: the connection may serve another request.
func (rs *response) done() {
	if rs.deadline {
		_ = rs.rc.SetWriteDeadline(time.Time{})
		rs.deadline = false
	}
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
	rs.armDeadline()
	if _, err := rs.w.Write(b); err != nil {
		rs.gone = true
		return false
	}
	if rs.flusher != nil {
		rs.flusher.Flush()
	}
	return true
}

// heldAnswer is how much of an answer net/http holds in memory
// (bufferBeforeChunkingSize) and sends only after the handler returns. A
// write that fits cannot block on the client, so it needs no deadline; and
// the send after the handler returns is past done() anyway. Setting and
// lifting a deadline for it would cost two runtime timer updates (and often
// a wake-up of the thread in the network poller) per request for nothing.
const heldAnswer = 2048

// whole writes a complete answer: header with its length, then the body.
func (rs *response) whole(status int, body []byte) {
	rs.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rs.begin(status)
	if len(body) > heldAnswer {
		rs.armDeadline()
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
