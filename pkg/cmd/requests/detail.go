package requests

import (
	"fmt"
	"io"
	"strings"

	"github.com/ccrelay/ccrelay/internal/admin"
)

// writeDetail prints one request: its fields, the attempt timeline, and
// the captured bodies.
func writeDetail(w io.Writer, d admin.RequestDetailResponse) error {
	r := d.RequestRow
	cost := "unknown"
	if r.CostUSD != nil {
		cost = fmt.Sprintf("$%.6f", *r.CostUSD)
	}
	model := r.Model
	if r.ServedModel != "" && r.ServedModel != r.Model {
		model += " (model served: " + r.ServedModel + ", on " + dash(r.Platform) + ")"
	}
	stream := "no"
	if r.Stream {
		stream = "yes"
	}
	lines := [][2]string{
		{"Request", r.ID}, {"Time", r.Time.Local().Format("2006-01-02 15:04:05.000 MST")}, {"Key", dash(r.Key)},
		{"Client", dash(r.Client) + "  " + r.UserAgent}, {"Route", r.Route + " (" + r.Dialect + ")"}, {"Model", model},
		{"Account", dash(r.Account)}, {"Status", fmt.Sprint(r.Status)}, {"Error", dash(r.Error)}, {"Stream", stream},
		{"Tokens", fmt.Sprintf("%d in, %d out, %d cache write, %d cache read", r.InputTokens, r.OutputTokens, r.CacheCreationTokens, r.CacheReadTokens)},
		{"Cost", cost}, {"Timing", fmt.Sprintf("queue %s, first byte %s, total %s", ms(r.QueueMs), ms(r.TTFBMs), ms(r.LatencyMs))},
	}
	if r.Relay != "" {
		lines = append(lines, [2]string{"Relay", r.Relay})
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%-9s %s\n", l[0]+":", l[1])
	}
	fmt.Fprintf(w, "\nAttempts:\n")
	if len(r.Attempts) == 0 {
		fmt.Fprintln(w, "  none (answered by the relay before any account was tried)")
	}
	for i, a := range r.Attempts {
		fmt.Fprintf(w, "  %d. %-20s %-12s %-16s ended at %s\n", i+1, a.Account, statusText(a.Status), a.Verdict, ms(a.EndMs))
		if a.Fallback != "" {
			fmt.Fprintf(w, "     passed over: %s\n", a.Fallback)
		}
		if a.Target != "" {
			fmt.Fprintf(w, "     target:  %s\n", a.Target)
		}
		if a.Reason != "" {
			fmt.Fprintf(w, "     reason:  %s\n", a.Reason)
		}
		if a.Message != "" {
			fmt.Fprintf(w, "     message: %s\n", oneLine(a.Message, 300))
		}
	}
	if d.ScopeReason != "" && d.ScopeReason != admin.ReasonNoCluster {
		fmt.Fprintf(w, "\nNote: %s.\n", d.ScopeReason)
	}
	b := d.Bodies
	if b == nil {
		switch {
		case r.Captured && d.BodiesOn != "":
			fmt.Fprintf(w, "\nBodies: captured and kept on relay %s (bodies never leave the relay that took them): ask that relay with --server.\n", d.BodiesOn)
		case r.Captured:
			fmt.Fprintln(w, "\nBodies: captured, since deleted (the capture's keep time ended).")
		}
		return nil
	}
	cut := func(t bool) string {
		if t {
			return " (cut at the capture's size cap)"
		}
		return ""
	}
	fmt.Fprintf(w, "\nCaptured by capture %d (deleted %s).\n\nRequest header:\n%s\nRequest body%s:\n%s\n\nResponse%s:\n%s\n",
		b.CaptureID, b.Expires.Local().Format("2006-01-02 15:04"), indent(b.RequestHeader), cut(b.RequestTruncated), b.Request,
		cut(b.ResponseTruncated), b.Response)
	return nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}
