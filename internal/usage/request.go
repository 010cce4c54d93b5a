package usage

import (
	"net/netip"
	"time"
)

// Request is what the request log keeps of a request beyond its usage: who
// sent it, what route it took, each account that was tried and why it was
// left, and the bodies a capture took. The relay fills it at the end of the
// call (no database or lock on the way); the store writes it off the
// request path with the usage row.
type Request struct {
	// UserAgent is the client's User-Agent header, as sent (the store
	// bounds its length).
	UserAgent string
	// ClientAddr is the client's address (the server's view: the peer, or
	// a trusted proxy's X-Forwarded-For).
	ClientAddr netip.Addr
	// Route is the request path; Dialect the API shape the client speaks
	// ("anthropic", "openai", "google").
	Route   string
	Dialect string
	// QueueWait is how long the request waited for its key's concurrency
	// slot (and the rest of admission).
	QueueWait time.Duration
	// First is the first attempt (meaningful when Record.Attempts > 0);
	// More are the later ones, when the request failed over. Kept apart so
	// a request served by its first account records without allocating.
	First Attempt
	More  []Attempt
	// Bodies are the captured request and answer; nil unless a capture
	// ([capture on]) took this request.
	Bodies *Bodies
}

// Attempt is one account's try at a request.
type Attempt struct {
	Account string
	// Target is the route target the attempt served ("openai:gpt-5"), ""
	// on the route's own pool; Fallback says why the targets before it
	// were passed over (no account of theirs could serve).
	Target, Fallback string
	// Status is the upstream's HTTP status (0 when none arrived: a
	// connection failure, a timeout, a credential that could not be had).
	Status int
	// Verdict is what the answer meant for the account (provider.Kind's
	// name: ok, client_error, rate_limited, ...).
	Verdict string
	// Reason is the relay's reading of a failed attempt (the verdict's
	// reason: "unauthorized (401)", "upstream connection failed: ...");
	// Message the upstream's own error message. Both have secrets removed
	// and are "" on success.
	Reason  string
	Message string
	// End is when the attempt ended, from the request's arrival.
	End time.Duration
}

// Attempts returns the request's attempts in order; n is Record.Attempts.
func (r *Request) Attempts(n int) []Attempt {
	if n <= 0 {
		return nil
	}
	out := make([]Attempt, 0, 1+len(r.More))
	out = append(out, r.First)
	return append(out, r.More...)
}

// Add records an attempt; n is how many were recorded before it.
func (r *Request) Add(n int, a Attempt) {
	if n == 0 {
		r.First = a
		return
	}
	r.More = append(r.More, a)
}

// Bodies are what a capture took of one request, secrets already removed.
type Bodies struct {
	// CaptureID is the capture that took them.
	CaptureID int64
	// RequestHeader is the client's request header, credentials removed,
	// one "Name: value" per line.
	RequestHeader string
	// Request is the client's body, Response what the client received
	// (a stream as the events it got); each cut at the capture's size cap.
	Request, Response []byte
	// RequestTruncated and ResponseTruncated say a body was cut.
	RequestTruncated, ResponseTruncated bool
	// Expires is when the bodies are deleted (the capture's retention).
	Expires time.Time
}
