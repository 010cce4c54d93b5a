package fakeupstream

import (
	"fmt"
	"strconv"
	"time"
)

// withHeaders returns rep with the extra headers added (the script's own
// Reply is not changed; its own headers win).
func withHeaders(rep *Reply, extra map[string]string) *Reply {
	if len(extra) == 0 {
		return rep
	}
	c := *rep
	c.Header = make(map[string]string, len(rep.Header)+len(extra))
	for k, v := range extra {
		c.Header[k] = v
	}
	for k, v := range rep.Header {
		c.Header[k] = v
	}
	return &c
}

// ClaudeWindow is one subscription window a fake reports.
type ClaudeWindow struct {
	Name        string // "5h", "7d", "7d_oi", ...
	Utilization float64
	Reset       time.Time
	Status      string // "" = allowed
}

// ClaudeQuota is what Claude's unified rate-limit headers say about an account.
type ClaudeQuota struct {
	Windows []ClaudeWindow
	// Overage is the overage status (allowed|rejected); "" leaves it out.
	Overage        string
	DisabledReason string
}

// Headers are the anthropic-ratelimit-unified-* headers of q, as Claude
// sends them on every answer of a subscription account.
func (q ClaudeQuota) Headers() map[string]string {
	const p = "anthropic-ratelimit-unified-"
	h := map[string]string{p + "status": "allowed"}
	for i, w := range q.Windows {
		st := w.Status
		if st == "" {
			st = "allowed"
		}
		h[p+w.Name+"-utilization"] = strconv.FormatFloat(w.Utilization, 'f', -1, 64)
		h[p+w.Name+"-reset"] = strconv.FormatInt(w.Reset.Unix(), 10)
		h[p+w.Name+"-status"] = st
		if st == "rejected" {
			h[p+"status"] = "rejected"
		}
		if i == 0 {
			h[p+"representative-claim"] = "five_hour"
			h[p+"reset"] = strconv.FormatInt(w.Reset.Unix(), 10)
		}
	}
	if q.Overage != "" {
		h[p+"overage-status"] = q.Overage
	}
	if q.DisabledReason != "" {
		h[p+"overage-disabled-reason"] = q.DisabledReason
	}
	return h
}

// CodexWindow is one Codex window a fake reports.
type CodexWindow struct {
	UsedPercent float64
	Minutes     int
	Reset       time.Time
}

// CodexHeaders are the x-codex-* rate-limit headers of a ChatGPT account.
func CodexHeaders(primary, secondary CodexWindow, hasCredits bool) map[string]string {
	h := map[string]string{"x-codex-credits-has-credits": strconv.FormatBool(hasCredits)}
	for name, w := range map[string]CodexWindow{"primary": primary, "secondary": secondary} {
		h["x-codex-"+name+"-used-percent"] = strconv.FormatFloat(w.UsedPercent, 'f', -1, 64)
		h["x-codex-"+name+"-window-minutes"] = strconv.Itoa(w.Minutes)
		h["x-codex-"+name+"-reset-at"] = strconv.FormatInt(w.Reset.Unix(), 10)
	}
	return h
}

// CodexRateLimitsEvent is the codex.rate_limits event Codex's backend sends
// inside a Responses stream.
func CodexRateLimitsEvent(primary, secondary CodexWindow) Event {
	win := func(w CodexWindow) string {
		return fmt.Sprintf(`{"used_percent":%s,"window_minutes":%d,"reset_at":%d}`, strconv.FormatFloat(w.UsedPercent, 'f', -1, 64), w.Minutes, w.Reset.Unix())
	}
	return Event{Name: "codex.rate_limits", Data: `{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"primary":` + win(primary) +
		`,"secondary":` + win(secondary) + `},"credits":{"has_credits":false,"unlimited":false}}`}
}
