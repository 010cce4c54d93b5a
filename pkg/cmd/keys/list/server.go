package list

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
)

// Notes on the scope of the in-flight and queued counts.
const (
	noteLoadCluster = "In flight and queued: every relay of the cluster (the other relays' as of about a second ago)."
	noteLoadLocal   = "In flight and queued: this relay's own (not in a cluster, or the cluster's redis is unreachable)."
)

// serverRun lists the keys as the relay at --server's admin API shows them,
// with their requests in flight and queued and the scope of those counts.
func serverRun(opts *Options, adm *cmdutil.AdminClient) error {
	var resp admin.KeysResponse
	if err := adm.Do(context.Background(), "GET", "keys", nil, &resp); err != nil {
		return err
	}
	if resp.Keys == nil {
		resp.Keys = []admin.Key{}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, resp)
	}
	if len(resp.Keys) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "The relay has no relay key configured; add a named one with 'ccrelay keys add NAME'.")
		return nil
	}
	tw := cmdutil.NewTable(opts.IO.Out)
	fmt.Fprintln(tw, "NAME\tSTATE\tRPM\tCONC\tIN FLIGHT\tQUEUED\tTODAY\tTOKENS TODAY\tLAST USED")
	now := opts.Now()
	scopes := map[string]bool{}
	for _, k := range resp.Keys {
		state := "enabled"
		switch {
		case !k.Enabled:
			state = "disabled"
		case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
			state = "expired"
		}
		inFlight, queued := "-", "-"
		if k.LoadScope != "" {
			inFlight, queued = strconv.Itoa(k.InFlight), strconv.Itoa(k.Queued)
			scopes[k.LoadScope] = true
		}
		last := "never"
		if k.LastUsed != nil {
			last = k.LastUsed.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, state, limit(k.RPM), limit(k.Concurrency), inFlight, queued,
			today(k), tokensToday(k), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if scopes[admin.LoadCluster] {
		fmt.Fprintln(opts.IO.ErrOut, noteLoadCluster)
	}
	if scopes[admin.LoadLocal] {
		fmt.Fprintln(opts.IO.ErrOut, noteLoadLocal)
	}
	return nil
}

// today is a key's cost today, against its daily budget when it has one.
func today(k admin.Key) string {
	w := Window{}
	if k.CostTodayMicros != nil {
		w.SpentUSD = float64(*k.CostTodayMicros) / 1e6
	}
	for _, b := range k.Budgets {
		if b.Window == "daily" && b.Unit == "usd" {
			w.SpentUSD = b.Used
			v := b.Limit
			w.BudgetUSD = &v
		}
	}
	if k.CostTodayMicros == nil && w.BudgetUSD == nil {
		return "-"
	}
	return money(w)
}

// tokensToday is a key's tokens today, against its daily token budget.
func tokensToday(k admin.Key) string {
	t := k.Today
	s := strconv.FormatInt(t.InputTokens+t.OutputTokens+t.CacheCreationTokens+t.CacheReadTokens, 10)
	for _, b := range k.Budgets {
		if b.Window == "daily" && b.Unit == "tokens" {
			s = strconv.FormatFloat(b.Used, 'f', 0, 64) + "/" + strconv.FormatFloat(b.Limit, 'f', 0, 64)
		}
	}
	return s
}
