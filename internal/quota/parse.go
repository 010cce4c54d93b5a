// Package quota keeps what upstream answers say about an account's rate-limit
// windows: Claude's subscription ("unified") windows, Codex's primary and
// secondary windows, and an API key's request and token buckets. It parses
// the headers (and Codex's in-stream codex.rate_limits event) of every
// answer, keeps the latest numbers per account behind one mutex, persists
// them off the request path, and tells the scheduler how much room each
// account has left.
//
// Decisions worth knowing:
//   - Parsers are pure and forgiving: a malformed value drops that one field,
//     never the answer, and never panics (they are fuzzed).
//   - An answer that carries no quota header costs a scan of its header keys
//     and no allocation.
//   - A window's numbers stand until its reset time; after it they are stale
//     (shown as such, and counted as empty by the scheduler).
package quota

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The window statuses Claude reports.
const (
	StatusAllowed        = "allowed"
	StatusAllowedWarning = "allowed_warning"
	StatusRejected       = "rejected"
)

// Source says where a snapshot's numbers came from.
const (
	SourceClaude  = "claude"  // anthropic-ratelimit-unified-* (subscription)
	SourceAPIKey  = "api_key" // anthropic-ratelimit-requests|tokens-* (API key)
	SourceCodex   = "codex"   // x-codex-* headers or the codex.rate_limits event
	SourceUsage   = "usage"   // an active probe of a usage endpoint
	maxWindowName = 32
)

// Window is one rate-limit window as last reported.
type Window struct {
	// Name is the window as the upstream names it: "5h", "7d", "7d_oi" (Claude),
	// "primary", "secondary" (Codex), "requests", "tokens", "input-tokens",
	// "output-tokens" (API key).
	Name string `json:"name"`
	// Utilization is the share used, 0..1 (it may pass 1 while extra usage is drawn).
	Utilization float64 `json:"utilization"`
	// Minutes is the window's length when known (0: unknown).
	Minutes int `json:"window_minutes,omitempty"`
	// ResetsAt is when the window starts over (zero: unknown).
	ResetsAt time.Time `json:"resets_at,omitzero"`
	// Status is allowed, allowed_warning or rejected (Claude; "" otherwise).
	Status string `json:"status,omitempty"`
	// Limit and Remaining are an API key's bucket (0 when not reported).
	Limit     int64 `json:"limit,omitempty"`
	Remaining int64 `json:"remaining,omitempty"`

	// has: a utilization (or an API key's limit) was read; a window seen
	// only in a reset or status header has nothing to weigh and is dropped.
	has bool
}

// Snapshot is what one answer (or a merge of answers) says about an account.
type Snapshot struct {
	Source  string   `json:"source"`
	Windows []Window `json:"windows"`
	// Status is Claude's overall unified status.
	Status string `json:"status,omitempty"`
	// ResetsAt is Claude's overall unified reset.
	ResetsAt time.Time `json:"resets_at,omitzero"`
	// RepresentativeClaim names the window that binds now (five_hour, seven_day, ...).
	RepresentativeClaim string `json:"representative_claim,omitempty"`
	// OverageStatus says whether paid extra usage may be drawn (allowed|rejected).
	OverageStatus string `json:"overage_status,omitempty"`
	// OverageDisabledReason explains a rejected overage (e.g. org_level_disabled).
	OverageDisabledReason string `json:"overage_disabled_reason,omitempty"`
	// HasCredits is Codex's x-codex-credits-has-credits (paid credits available).
	HasCredits bool `json:"has_credits,omitempty"`
	// PlanType is Codex's plan (from the in-stream event).
	PlanType string `json:"plan_type,omitempty"`
	// SeenAt is when the numbers were read.
	SeenAt time.Time `json:"seen_at"`
}

// Window returns the window named name, if present.
func (s *Snapshot) Window(name string) (Window, bool) {
	for _, w := range s.Windows {
		if w.Name == name {
			return w, true
		}
	}
	return Window{}, false
}

func (s *Snapshot) window(name string) *Window {
	for i := range s.Windows {
		if s.Windows[i].Name == name {
			return &s.Windows[i]
		}
	}
	s.Windows = append(s.Windows, Window{Name: name, Minutes: windowMinutes(name)})
	return &s.Windows[len(s.Windows)-1]
}

const (
	unifiedPrefix = "anthropic-ratelimit-unified-"
	stdPrefix     = "anthropic-ratelimit-"
	codexPrefix   = "x-codex-"
)

// HasHeaders reports whether h carries any quota header. It allocates nothing.
func HasHeaders(h http.Header) bool {
	for k := range h {
		if len(k) < len(codexPrefix) {
			continue
		}
		switch k[0] {
		case 'A', 'a':
			if hasPrefixFold(k, stdPrefix) {
				return true
			}
		case 'X', 'x':
			if hasPrefixFold(k, codexPrefix) {
				return true
			}
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// ParseHeaders reads the quota headers of one answer. ok is false when h has
// none. Values that do not parse are ignored one by one.
func ParseHeaders(h http.Header, now time.Time) (s Snapshot, ok bool) {
	if !HasHeaders(h) {
		return Snapshot{}, false
	}
	s.Windows = make([]Window, 0, 4) // one allocation for the usual two to four
	for k, vv := range h {
		if len(vv) == 0 {
			continue
		}
		// Names are compared without regard to case and not lowered (keys
		// are canonical, "Anthropic-Ratelimit-Unified-5h-Utilization"):
		// parsing allocates nothing but the snapshot's windows.
		switch {
		case hasPrefixFold(k, unifiedPrefix):
			s.Source = SourceClaude
			parseUnified(&s, k[len(unifiedPrefix):], strings.TrimSpace(vv[0]), now)
		case hasPrefixFold(k, stdPrefix):
			if s.Source == "" {
				s.Source = SourceAPIKey
			}
			parseStandard(&s, k[len(stdPrefix):], strings.TrimSpace(vv[0]), now)
		case hasPrefixFold(k, codexPrefix):
			s.Source = SourceCodex
			parseCodex(&s, k[len(codexPrefix):], strings.TrimSpace(vv[0]), now)
		}
	}
	s.finish()
	if len(s.Windows) == 0 && s.Status == "" && s.OverageStatus == "" {
		return Snapshot{}, false
	}
	s.SeenAt = now
	return s, true
}

// finish drops half-known windows, derives API-key utilization and sorts.
func (s *Snapshot) finish() {
	out := s.Windows[:0]
	for _, w := range s.Windows {
		if w.Limit > 0 {
			w.Utilization = clamp01(1 - float64(w.Remaining)/float64(w.Limit))
		}
		if !w.has && w.Status == StatusRejected {
			// A spent window named only by its status (a 429): full.
			w.Utilization, w.has = 1, true
		}
		if !w.has {
			continue
		}
		out = append(out, w)
	}
	s.Windows = out
	sortWindows(s.Windows)
}

func sortWindows(ws []Window) {
	// Insertion sort: a handful of windows; order by length, then name.
	for i := 1; i < len(ws); i++ {
		for j := i; j > 0 && windowLess(ws[j], ws[j-1]); j-- {
			ws[j], ws[j-1] = ws[j-1], ws[j]
		}
	}
}

func windowLess(a, b Window) bool {
	am, bm := a.Minutes, b.Minutes
	if am == 0 {
		am = math.MaxInt32
	}
	if bm == 0 {
		bm = math.MaxInt32
	}
	if am != bm {
		return am < bm
	}
	return a.Name < b.Name
}

func parseUnified(s *Snapshot, rest, v string, now time.Time) {
	switch {
	case strings.EqualFold(rest, "status"):
		s.Status = status(v)
		return
	case strings.EqualFold(rest, "reset"):
		s.ResetsAt = parseReset(v, now)
		return
	case strings.EqualFold(rest, "representative-claim"):
		s.RepresentativeClaim = token(v)
		return
	case strings.EqualFold(rest, "overage-status"):
		s.OverageStatus = status(v)
		return
	case strings.EqualFold(rest, "overage-disabled-reason"):
		s.OverageDisabledReason = token(v)
		return
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return
	}
	// Window names are lower case already in canonical keys ("5h",
	// "7d_oi"): ToLower then returns them without a copy.
	name, field := strings.ToLower(rest[:i]), rest[i+1:]
	if !validWindow(name) || strings.HasPrefix(name, "overage") || strings.HasPrefix(name, "fallback") {
		return
	}
	switch {
	case strings.EqualFold(field, "utilization"):
		u, ok := parseFraction(v)
		if !ok {
			return
		}
		w := s.window(name)
		w.Utilization, w.has = u, true
	case strings.EqualFold(field, "reset"):
		if t := parseReset(v, now); !t.IsZero() {
			s.window(name).ResetsAt = t
		}
	case strings.EqualFold(field, "status"):
		if st := status(v); st != "" {
			s.window(name).Status = st
		}
	}
}

// standardWindows are an API key's buckets, by the name in the header.
var standardWindows = []string{"requests", "tokens", "input-tokens", "output-tokens"}

func parseStandard(s *Snapshot, rest, v string, now time.Time) {
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return
	}
	name, field := "", rest[i+1:]
	for _, n := range standardWindows {
		if strings.EqualFold(rest[:i], n) {
			name = n
			break
		}
	}
	if name == "" {
		return
	}
	switch {
	case strings.EqualFold(field, "limit"):
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			w := s.window(name)
			w.Limit, w.has = n, true
		}
	case strings.EqualFold(field, "remaining"):
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w := s.window(name)
			w.Remaining = n
		}
	case strings.EqualFold(field, "reset"):
		if t := parseReset(v, now); !t.IsZero() {
			s.window(name).ResetsAt = t
		}
	}
}

func parseCodex(s *Snapshot, rest, v string, now time.Time) {
	if strings.EqualFold(rest, "credits-has-credits") {
		s.HasCredits = strings.EqualFold(v, "true")
		return
	}
	var name string
	switch {
	case hasPrefixFold(rest, "primary-"):
		name, rest = "primary", rest[len("primary-"):]
	case hasPrefixFold(rest, "secondary-"):
		name, rest = "secondary", rest[len("secondary-"):]
	default:
		return
	}
	switch {
	case strings.EqualFold(rest, "used-percent"):
		if p, ok := parsePercent(v); ok {
			w := s.window(name)
			w.Utilization, w.has = p, true
		}
	case strings.EqualFold(rest, "window-minutes"):
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 366*24*60 {
			s.window(name).Minutes = n
		}
	case strings.EqualFold(rest, "reset-at"):
		if t := parseReset(v, now); !t.IsZero() {
			s.window(name).ResetsAt = t
		}
	case strings.EqualFold(rest, "reset-after-seconds"):
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= 366*24*3600 {
			s.window(name).ResetsAt = now.Add(time.Duration(n) * time.Second)
		}
	}
}

// windowMinutes derives a Claude window's length from its name ("5h", "7d",
// "7d_oi", any "<n>h" or "<n>d"); 0 when the name says nothing.
func windowMinutes(name string) int {
	switch name {
	case "primary", "secondary":
		return 0
	case "requests", "tokens", "input-tokens", "output-tokens":
		return 1
	}
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int(c-'0')
			if n > 1000 {
				return 0
			}
		case c == 'h' && i > 0:
			return n * 60
		case c == 'd' && i > 0:
			return n * 24 * 60
		default:
			return 0
		}
	}
	return 0
}

func validWindow(name string) bool {
	if name == "" || len(name) > maxWindowName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseFraction reads a 0..1 decimal (values up to 10 are kept: usage past
// the plan's window, drawn as extra usage, reads above 1).
func parseFraction(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 10 {
		return 0, false
	}
	return f, true
}

func parsePercent(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, false
	}
	return percent(f)
}

func percent(f float64) (float64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1000 {
		return 0, false
	}
	return f / 100, true
}

func clamp01(f float64) float64 {
	return math.Min(1, math.Max(0, f))
}

// parseReset reads unix seconds (or milliseconds) or an RFC 3339 time.
// Times outside 2000..2200 are nonsense and ignored.
func parseReset(v string, now time.Time) time.Time {
	if v == "" {
		return time.Time{}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return unixTime(f)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}
	}
	return t
}

func unixTime(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return time.Time{}
	}
	if f > 1e12 { // milliseconds
		f /= 1000
	}
	if f < 946684800 || f > 7258118400 { // 2000..2200
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func status(v string) string {
	switch strings.ToLower(v) {
	case StatusAllowed:
		return StatusAllowed
	case StatusAllowedWarning:
		return StatusAllowedWarning
	case StatusRejected:
		return StatusRejected
	}
	return ""
}

// token keeps a short identifier-like value (claim names, reasons); anything
// else is dropped so a header cannot put arbitrary text in logs or output.
func token(v string) string {
	if len(v) == 0 || len(v) > 64 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return v
}
