package reqlog

import (
	"errors"
	"fmt"
	"time"
)

// Spec is a capture as an operator asks for it (CLI flags, admin API body).
type Spec struct {
	Key        string `json:"key,omitempty"`
	Account    string `json:"account,omitempty"`
	ErrorsOnly bool   `json:"errors_only,omitempty"`
	// SampleRate is the share of matching requests taken; 0 means 1.
	SampleRate float64 `json:"sample_rate,omitempty"`
	// For is how long it runs ("1h", "30m"); "" means DefaultFor.
	For string `json:"for,omitempty"`
	// Keep is how long its bodies stay after it ends; "" means DefaultKeep.
	Keep string `json:"keep,omitempty"`
	// MaxBodyBytes cuts each body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int `json:"max_body_bytes,omitempty"`
}

// DefaultFor is how long a capture runs when the operator names no length.
const DefaultFor = time.Hour

// Build checks s and returns the capture it asks for, starting at now.
// Every problem is reported at once.
func (s Spec) Build(now time.Time) (Capture, error) {
	var errs []error
	if s.Key == "" && s.Account == "" && !s.ErrorsOnly {
		errs = append(errs, errors.New("say whose requests to capture: a key, an account, or errors only"))
	}
	rate := s.SampleRate
	if rate == 0 {
		rate = 1
	}
	if rate < 0 || rate > 1 {
		errs = append(errs, fmt.Errorf("sample rate must be in (0, 1], got %g", s.SampleRate))
	}
	dur := func(name, v string, def, limit time.Duration) time.Duration {
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > limit {
			errs = append(errs, fmt.Errorf("%s must be a duration up to %s (like 30m, 1h), got %q", name, limit, v))
			return def
		}
		return d
	}
	forD := dur("for", s.For, DefaultFor, MaxFor)
	keep := dur("keep", s.Keep, DefaultKeep, 30*24*time.Hour)
	if s.MaxBodyBytes < 0 || s.MaxBodyBytes > MaxBodyBytesLimit {
		errs = append(errs, fmt.Errorf("max body bytes must be at most %d, got %d", MaxBodyBytesLimit, s.MaxBodyBytes))
	}
	if len(s.Key) > 256 || len(s.Account) > 256 {
		errs = append(errs, errors.New("key and account names are at most 256 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return Capture{}, err
	}
	now = now.UTC().Truncate(time.Millisecond)
	return Capture{Key: s.Key, Account: s.Account, ErrorsOnly: s.ErrorsOnly, SampleRate: rate, MaxBodyBytes: s.MaxBodyBytes,
		Created: now, Until: now.Add(forD), Keep: keep, KeepSeconds: int64(keep / time.Second)}, nil
}
