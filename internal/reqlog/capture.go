// Package reqlog holds the request log's rules that are neither the relay's
// nor the store's: body captures (who they take, for how long, how much) and
// the redaction of what they store.
//
// A capture is opt-in, for debugging: it takes the request and answer bodies
// of one relay key's requests, one account's, or every request that ends in
// an error, for a while (Until), a share of them (SampleRate), each body cut
// at MaxBodyBytes; what it stored is deleted at Until + Keep.
package reqlog

import (
	"math/rand/v2"
	"time"
)

// Capture limits and defaults.
const (
	// DefaultMaxBodyBytes is a captured body's size cap when none is given.
	DefaultMaxBodyBytes = 256 << 10
	// MaxBodyBytesLimit is the largest cap a capture may ask for.
	MaxBodyBytesLimit = 4 << 20
	// DefaultKeep is how long captured bodies are kept after the capture ends.
	DefaultKeep = 24 * time.Hour
	// MaxFor is the longest a capture may run.
	MaxFor = 7 * 24 * time.Hour
)

// Capture is one body capture rule.
type Capture struct {
	ID int64 `json:"id"`
	// Key is the relay key name ([[keys]] name) whose requests it takes;
	// Account the account id; both "" with ErrorsOnly: every failed request.
	Key     string `json:"key,omitempty"`
	Account string `json:"account,omitempty"`
	// ErrorsOnly keeps only requests that ended with status 400 or more.
	ErrorsOnly bool `json:"errors_only"`
	// SampleRate is the share of matching requests taken, (0, 1].
	SampleRate float64 `json:"sample_rate"`
	// MaxBodyBytes cuts each stored body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int       `json:"max_body_bytes"`
	Created      time.Time `json:"created"`
	// Until is when it stops taking requests.
	Until time.Time `json:"until"`
	// Keep is how long its bodies stay after Until (seconds in JSON).
	Keep time.Duration `json:"-"`
	// KeepSeconds is Keep for JSON.
	KeepSeconds int64 `json:"keep_seconds"`
	// Stopped is set when it was turned off before Until.
	Stopped bool `json:"stopped"`
	// Captured is how many requests it stored (filled by readers); in a
	// cluster, every relay's.
	Captured int64 `json:"captured"`
	// CapturedBy is, in a cluster, how many requests each relay (by its id)
	// stored, as each last wrote it (every few seconds); nil otherwise.
	CapturedBy map[string]int64 `json:"captured_by,omitempty"`
	// LocalTo names the one relay a capture applies to when that relay is in
	// a cluster but the capture is in its own database only (`ccrelay
	// capture on` without --server, or started while Redis was
	// unreachable); "" for the cluster's captures and outside a cluster.
	LocalTo string `json:"local_to,omitempty"`
}

// Active reports whether c takes requests at now.
func (c *Capture) Active(now time.Time) bool { return !c.Stopped && now.Before(c.Until) }

// Expires is when the bodies c stored are deleted.
func (c *Capture) Expires() time.Time { return c.Until.Add(c.Keep) }

// BodyCap is the size cap of each stored body.
func (c *Capture) BodyCap() int {
	if c.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return min(c.MaxBodyBytes, MaxBodyBytesLimit)
}

// Set is the captures in force, as the relay reads them: immutable, swapped
// whole when captures change, so the request path reads it with one atomic
// load and no lock.
type Set struct {
	list []Capture
}

// NewSet keeps the captures of list active at now.
func NewSet(list []Capture, now time.Time) *Set {
	s := &Set{}
	for _, c := range list {
		if c.Active(now) {
			s.list = append(s.list, c)
		}
	}
	return s
}

// Empty reports whether no capture is active; nil is empty.
func (s *Set) Empty() bool { return s == nil || len(s.list) == 0 }

// List returns the captures of the set.
func (s *Set) List() []Capture {
	if s == nil {
		return nil
	}
	return s.list
}

// Candidates returns the captures that may take a request of relay key
// name key at now: those for this key, for an account, or for errors; each
// sampled by its rate. Whether an account or errors capture takes the
// request is known only at its end (Take).
func (s *Set) Candidates(key string, now time.Time) []*Capture {
	if s.Empty() {
		return nil
	}
	var out []*Capture
	for i := range s.list {
		c := &s.list[i]
		if !c.Active(now) || (c.Key != "" && c.Key != key) {
			continue
		}
		if c.SampleRate < 1 && rand.Float64() >= c.SampleRate {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Take returns the first candidate that takes a finished request: its
// account rule names one of the accounts tried, its errors rule sees a
// status of 400 or more. nil when none does.
func Take(cands []*Capture, accounts []string, status int) *Capture {
	for _, c := range cands {
		if c.ErrorsOnly && status < 400 {
			continue
		}
		if c.Account != "" && !contains(accounts, c.Account) {
			continue
		}
		return c
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
