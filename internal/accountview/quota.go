package accountview

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/quota"
)

// Quota is an account's latest rate-limit numbers: the snapshot as the
// upstream reported it (source, overall status and reset, the binding
// window, overage, plan), each window marked stale once its numbers no
// longer hold (past its reset, or older than the window).
type Quota struct {
	quota.Snapshot
	Windows []QuotaWindow `json:"windows"`
}

// QuotaWindow is one window with its staleness.
type QuotaWindow struct {
	quota.Window
	Stale bool `json:"stale"`
}

// NewQuota presents a snapshot at now, its times in UTC (in full: the
// snapshot is stored as it was seen, so it reads back exactly).
func NewQuota(s quota.Snapshot, now time.Time) *Quota {
	q := &Quota{Snapshot: s, Windows: make([]QuotaWindow, 0, len(s.Windows))}
	for _, w := range s.Windows {
		stale := !w.Live(s.SeenAt, now)
		if !w.ResetsAt.IsZero() {
			w.ResetsAt = w.ResetsAt.UTC()
		}
		q.Windows = append(q.Windows, QuotaWindow{Window: w, Stale: stale})
	}
	q.Snapshot.Windows = nil
	q.SeenAt = s.SeenAt.UTC()
	if !s.ResetsAt.IsZero() {
		q.ResetsAt = s.ResetsAt.UTC()
	}
	return q
}

// Line renders the windows for a table: "5h ######.... 62% resets 14:00";
// numbers that no longer hold say when they were seen instead.
func (q *Quota) Line(now time.Time) string {
	if q == nil || len(q.Windows) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, w := range q.Windows {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(w.Name)
		b.WriteByte(' ')
		if w.Stale {
			fmt.Fprintf(&b, "stale (%.0f%% seen %s)", w.Utilization*100, Ago(now.Sub(q.SeenAt)))
			continue
		}
		b.WriteString(Bar(w.Utilization, 10))
		fmt.Fprintf(&b, " %.0f%%", math.Floor(w.Utilization*100))
		if w.Status == quota.StatusRejected || w.Status == quota.StatusAllowedWarning {
			b.WriteString(" " + w.Status)
		}
		if !w.ResetsAt.IsZero() {
			b.WriteString(" resets " + resetTime(w.ResetsAt, now))
		}
	}
	if q.OverageStatus == quota.StatusAllowed {
		b.WriteString("  extra usage allowed")
	}
	return b.String()
}

// Bar draws share (0..1) as width cells of '#' and '.'.
func Bar(share float64, width int) string {
	n := int(math.Round(math.Min(1, math.Max(0, share)) * float64(width)))
	return strings.Repeat("#", n) + strings.Repeat(".", width-n)
}

func resetTime(t, now time.Time) string {
	t = t.In(now.Location())
	switch d := t.Sub(now); {
	case d < 20*time.Hour:
		return t.Format("15:04")
	case d < 6*24*time.Hour:
		return t.Format("Mon 15:04")
	}
	return t.Format("Jan 2 15:04")
}

// Ago says how long ago d was, coarsely ("42s ago", "5m ago", "3h ago", "2d ago").
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
