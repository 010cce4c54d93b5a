package quota

// The bodies that carry quota numbers: Codex's in-stream event and the
// usage endpoints of Claude and Codex.

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// CodexEventName is the in-stream event that carries Codex's windows.
const CodexEventName = "codex.rate_limits"

// ParseCodexEvent reads the data of a codex.rate_limits event:
// {plan_type, rate_limits:{primary:{used_percent,window_minutes,reset_at},
// secondary:{...}}, credits:{has_credits}}.
func ParseCodexEvent(data []byte, now time.Time) (Snapshot, bool) {
	if !gjson.ValidBytes(data) {
		return Snapshot{}, false
	}
	root := gjson.ParseBytes(data)
	s := Snapshot{Source: SourceCodex}
	if pt := root.Get("plan_type"); pt.Type == gjson.String {
		s.PlanType = token(pt.Str)
	}
	if hc := root.Get("credits.has_credits"); hc.IsBool() {
		s.HasCredits = hc.Bool()
	}
	rl := root.Get("rate_limits")
	for _, name := range [2]string{"primary", "secondary"} {
		w := rl.Get(name)
		win, ok := codexWindow(w, name, now)
		if !ok {
			continue
		}
		if m := w.Get("window_minutes"); m.Type == gjson.Number && m.Num > 0 && m.Num <= 366*24*60 {
			win.Minutes = int(m.Num)
		}
		s.Windows = append(s.Windows, win)
	}
	if len(s.Windows) == 0 {
		return Snapshot{}, false
	}
	sortWindows(s.Windows)
	s.SeenAt = now
	return s, true
}

// codexWindow reads what Codex's window objects share, in its rate_limits
// event and its usage endpoint alike: used_percent and the reset. ok is
// false when w is no object or has no usable percentage. Each caller reads
// the window's length, which the two spell differently.
func codexWindow(w gjson.Result, name string, now time.Time) (win Window, ok bool) {
	if !w.IsObject() {
		return Window{}, false
	}
	p := w.Get("used_percent")
	if p.Type != gjson.Number {
		return Window{}, false
	}
	u, ok := percent(p.Num)
	if !ok {
		return Window{}, false
	}
	return Window{Name: name, Utilization: u, ResetsAt: resetField(w, now), has: true}, true
}

func resetField(w gjson.Result, now time.Time) time.Time {
	for _, k := range [...]string{"reset_at", "resets_at"} {
		r := w.Get(k)
		switch r.Type {
		case gjson.Number:
			return unixTime(r.Num)
		case gjson.String:
			return parseReset(r.Str, now)
		}
	}
	for _, k := range [...]string{"reset_after_seconds", "resets_in_seconds"} {
		if r := w.Get(k); r.Type == gjson.Number && r.Num >= 0 && r.Num <= 366*24*3600 {
			return now.Add(time.Duration(r.Num) * time.Second)
		}
	}
	return time.Time{}
}

// ParseClaudeUsage reads the body of Claude's OAuth usage endpoint:
// {five_hour:{utilization,resets_at}, seven_day:{...}, seven_day_<x>:{...}}.
// Its utilization is a percentage (0..100), unlike the headers' fraction.
func ParseClaudeUsage(body []byte, now time.Time) (Snapshot, bool) {
	if !gjson.ValidBytes(body) {
		return Snapshot{}, false
	}
	s := Snapshot{Source: SourceUsage}
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if !v.IsObject() {
			return true
		}
		var name string
		switch {
		case k.Str == "five_hour":
			name = "5h"
		case k.Str == "seven_day":
			name = "7d"
		case strings.HasPrefix(k.Str, "seven_day_"):
			name = "7d_" + k.Str[len("seven_day_"):]
		default:
			return true
		}
		if !validWindow(name) {
			return true
		}
		u := v.Get("utilization")
		if u.Type != gjson.Number {
			return true
		}
		frac, ok := percent(u.Num)
		if !ok {
			return true
		}
		s.Windows = append(s.Windows, Window{Name: name, Utilization: frac, Minutes: windowMinutes(name), ResetsAt: resetField(v, now), has: true})
		return true
	})
	if len(s.Windows) == 0 {
		return Snapshot{}, false
	}
	sortWindows(s.Windows)
	s.SeenAt = now
	return s, true
}

// ParseCodexUsage reads the body of Codex's usage endpoint:
// {plan_type, rate_limit:{primary_window:{used_percent,limit_window_seconds,
// reset_at|reset_after_seconds}, secondary_window:{...}}}.
func ParseCodexUsage(body []byte, now time.Time) (Snapshot, bool) {
	if !gjson.ValidBytes(body) {
		return Snapshot{}, false
	}
	root := gjson.ParseBytes(body)
	s := Snapshot{Source: SourceUsage}
	if pt := root.Get("plan_type"); pt.Type == gjson.String {
		s.PlanType = token(pt.Str)
	}
	for _, name := range [2]string{"primary", "secondary"} {
		w := root.Get("rate_limit." + name + "_window")
		win, ok := codexWindow(w, name, now)
		if !ok {
			continue
		}
		if sec := w.Get("limit_window_seconds"); sec.Type == gjson.Number && sec.Num >= 60 && sec.Num <= 366*24*3600 {
			win.Minutes = int(sec.Num / 60)
		}
		s.Windows = append(s.Windows, win)
	}
	if len(s.Windows) == 0 {
		return Snapshot{}, false
	}
	sortWindows(s.Windows)
	s.SeenAt = now
	return s, true
}
