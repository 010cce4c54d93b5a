package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/accountview"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Account states, as internal/accountview names them.
const (
	StateReady        = accountview.StateReady
	StateCoolingDown  = accountview.StateCoolingDown
	StateDisabled     = accountview.StateDisabled
	StateTokenInvalid = accountview.StateTokenInvalid
)

// Cooldown is one cooldown in force.
type Cooldown = accountview.Cooldown

// LastError is an account's newest failed upstream outcome.
type LastError struct {
	Kind   string    `json:"kind"`
	Model  string    `json:"model,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Account is one account as GET /admin/v1/accounts shows it: what
// `ccrelay accounts list --json` prints (accountview, the one presenter of
// both), plus what only a running relay knows.
type Account struct {
	accountview.Account
	// LastError is nil when the account has not failed since the relay
	// started.
	LastError *LastError `json:"last_error"`
}

// AccountsResponse is GET /admin/v1/accounts.
type AccountsResponse struct {
	Time     time.Time `json:"time"`
	Accounts []Account `json:"accounts"`
	// TodayScope says whose requests the accounts' "today" counts:
	// "cluster" (every relay of the cluster, from the hour of midnight) or
	// "local" (this relay's).
	TodayScope string `json:"today_scope"`
}

func (a *API) accounts(w http.ResponseWriter, r *http.Request) {
	now := a.o.Now()
	views, scope := a.views(r.Context(), now, withUsage)
	resp := AccountsResponse{Time: now.UTC(), Accounts: views, TodayScope: scope}
	writeJSON(w, http.StatusOK, resp)
}

// usageWanted says whether views reads today's usage (the health counts
// need only the states).
type usageWanted bool

const (
	withUsage    usageWanted = true
	withoutUsage usageWanted = false
)

// views presents every account the scheduler knows at now, with the scope
// of their today counts.
func (a *API) views(ctx context.Context, now time.Time, usage usageWanted) ([]Account, string) {
	byAcct := map[string][]Cooldown{}
	for _, c := range a.o.Sched.Cooldowns() {
		byAcct[c.AccountID] = append(byAcct[c.AccountID], Cooldown{Model: c.Model, Kind: c.Kind, Reason: c.Reason, Until: c.Until})
	}
	totals := map[string]store.Totals{}
	scope := store.ScopeLocal
	if usage {
		var rows []store.UsageRow
		rows, scope = a.usageSince(ctx, midnight(now), store.GroupAccount)
		for _, r := range rows {
			totals[r.Group] = totalsOf(r)
		}
	}
	out := []Account{}
	for _, st := range a.o.Sched.States() {
		f := accountview.Facts{
			ID: st.ID, Type: st.Type, Name: st.Name, Priority: st.Priority, Enabled: st.Enabled, Disabled: st.Disabled,
			Cooldowns: byAcct[st.ID], LastUsed: st.LastUsed, Today: totals[st.ID],
		}
		if a.o.Quota != nil {
			if q, ok := a.o.Quota.Snapshot(st.ID); ok {
				f.Quota = &q
			}
		}
		if a.o.AccountInfo != nil {
			info := a.o.AccountInfo(st.ID)
			f.Groups, f.Proxy = info.Groups, info.Proxy
		}
		acct := Account{Account: accountview.New(f, now)}
		if e := st.LastError; !e.At.IsZero() {
			acct.LastError = &LastError{Kind: e.Kind, Model: e.Model, Reason: e.Reason, At: e.At.UTC()}
		}
		out = append(out, acct)
	}
	return out, scope
}
