package provider

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHintDelay(t *testing.T) {
	tests := []struct {
		name string
		v    float64
		unit time.Duration
		want time.Duration
		ok   bool
	}{
		{"seconds", 30, time.Second, 30 * time.Second, true},
		{"milliseconds", 1500, time.Millisecond, 1500 * time.Millisecond, true},
		{"zero is the minimum", 0, time.Second, MinHint, true},
		{"sub-second is the minimum", 0.2, time.Second, MinHint, true},
		{"40 days is the maximum", 40 * 24 * 3600, time.Second, MaxHint, true},
		{"the largest Duration's worth is the maximum", 9e9, time.Second, MaxHint, true},
		{"negative", -1, time.Second, 0, false},
		{"NaN", math.NaN(), time.Second, 0, false},
		{"+Inf", math.Inf(1), time.Second, 0, false},
		{"-Inf", math.Inf(-1), time.Second, 0, false},
		{"1e300 overflows a Duration", 1e300, time.Second, 0, false},
		{"just past a Duration", 9.3e9, time.Second, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := HintDelay(tt.v, tt.unit)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("HintDelay(%v, %v) = %v, %v; want %v, %v", tt.v, tt.unit, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"30", now.Add(30 * time.Second), true},
		{" 2.5 ", now.Add(2500 * time.Millisecond), true},
		{"0", now.Add(MinHint), true},
		{"99999999", now.Add(MaxHint), true},
		{now.Add(time.Minute).Format(http.TimeFormat), now.Add(time.Minute), true},
		{now.Add(-time.Hour).Format(http.TimeFormat), now.Add(MinHint), true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", now.Add(MaxHint), true},
		{"-5", time.Time{}, false},
		{"NaN", time.Time{}, false},
		{"+Inf", time.Time{}, false},
		{"Infinity", time.Time{}, false},
		{"1e300", time.Time{}, false},
		{"soon", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.v, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.v, now)
			if !got.Equal(tt.want) || ok != tt.ok {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHintTimeAndBadHint(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ in, want time.Time }{
		{time.Time{}, time.Time{}},
		{now.Add(time.Hour), now.Add(time.Hour)},
		{now.Add(-time.Hour), now.Add(MinHint)},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(MaxHint)},
		{time.Unix(math.MaxInt64/2, 0), now.Add(MaxHint)},
	} {
		if got := HintTime(tt.in, now); !got.Equal(tt.want) {
			t.Errorf("HintTime(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	long := BadHint("retry-after", strings.Repeat("9", 500)+"\xff")
	if len(long) > 64 || !strings.HasPrefix(long, "retry-after=999") {
		t.Errorf("BadHint not bounded: %q", long)
	}
}
