package provider

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The bounds of every time an upstream names (Retry-After, reset headers and
// fields, OAuth expires_in): a hint shorter than MinHint is taken as MinHint,
// one longer than MaxHint as MaxHint, so a garbled value can neither park an
// account for years nor make the relay retry in a tight loop.
const (
	MinHint = time.Second
	MaxHint = 31 * 24 * time.Hour
)

// HintDelay converts an upstream-given delay of v units (a Retry-After of
// seconds, a Retry-After-Ms, an expires_in) to a Duration within
// [MinHint, MaxHint]. ok is false for nonsense: a negative, NaN or infinite
// value, or one too large for a Duration (1e300 seconds); the caller then
// falls back to its default. The conversion never overflows.
func HintDelay(v float64, unit time.Duration) (d time.Duration, ok bool) {
	if math.IsNaN(v) || v < 0 || unit <= 0 {
		return 0, false
	}
	f := v * float64(unit)
	if math.IsInf(f, 0) || f >= math.MaxInt64 {
		return 0, false
	}
	return ClampHint(time.Duration(f)), true
}

// ClampHint bounds a delay that is already a Duration to [MinHint, MaxHint].
func ClampHint(d time.Duration) time.Duration { return min(max(d, MinHint), MaxHint) }

// HintTime bounds an upstream-given moment (a reset time, an HTTP date) to
// [now+MinHint, now+MaxHint]: a time already past becomes MinHint from now.
// A zero t (no hint) stays zero.
func HintTime(t, now time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	// Time.Sub saturates instead of overflowing, so a year-9999 reset is just
	// long. A time within bounds is returned as it is (not rebuilt from now,
	// which may differ from it by wall-clock versus monotonic drift).
	switch d := t.Sub(now); {
	case d < MinHint:
		return now.Add(MinHint)
	case d > MaxHint:
		return now.Add(MaxHint)
	}
	return t
}

// maxBadHint bounds the upstream value quoted in Verdict.BadHint.
const maxBadHint = 40

// BadHint describes an unusable hint for Verdict.BadHint: the header or field
// name and its value, cut to a few dozen bytes.
func BadHint(name, value string) string {
	if len(value) > maxBadHint {
		value = strings.ToValidUTF8(value[:maxBadHint], "") + "..."
	}
	return name + "=" + value
}

// ParseRetryAfter reads a Retry-After value, delay seconds or an HTTP date,
// as a moment within [now+MinHint, now+MaxHint]. An absent value gives a zero
// time and ok; a present one that is negative, NaN, infinite, too large or
// not a date gives a zero time and !ok (name it in Verdict.BadHint).
func ParseRetryAfter(v string, now time.Time) (until time.Time, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, true
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		d, ok := HintDelay(secs, time.Second)
		if !ok {
			return time.Time{}, false
		}
		return now.Add(d), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return HintTime(t, now), true
	}
	return time.Time{}, false
}
