package usage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSince turns a window start as `ccrelay stats --since` and the admin
// API's ?since= take it (a duration back from now: 90m, 24h, 7d; a date; an
// RFC 3339 time; or "all") into a time. The zero time means "all".
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "all", "0", "":
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.ParseFloat(n, 64); err == nil && d > 0 {
			return now.Add(-time.Duration(d * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: the duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a duration (24h, 7d), a date (2006-01-02), a time (RFC 3339) or \"all\"", s)
}

// KeyLabels returns how reports name a relay key by its hash: a key of
// api_keys by its position (api_keys[N]), never by its value; Anonymous as
// itself; a key no longer configured by the start of its SHA-256.
func KeyLabels(keys []string) func(hash string) string {
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		h := HashKey(k)
		if _, dup := m[h]; !dup {
			m[h] = fmt.Sprintf("api_keys[%d]", i)
		}
	}
	return func(hash string) string {
		if hash == Anonymous {
			return Anonymous
		}
		if l, ok := m[hash]; ok {
			return l
		}
		if len(hash) > 12 {
			return "sha256:" + hash[:12]
		}
		return hash
	}
}
