package policy

// Budgets: the calendar windows, the crossings alerts report, and the
// reservations that hold parallel requests within a dollar budget.

import (
	"fmt"
	"strconv"
	"time"
)

// roll moves the windows forward to now. Called with k.mu held.
func (s *keyState) roll(now time.Time) {
	for w := Window(0); w < numWindows; w++ {
		if now.Before(s.win[w].end) && !now.Before(s.win[w].start) {
			continue
		}
		start, end := Bounds(w, now, s.zone)
		s.win[w] = window{start: start, end: end}
		if w == Day {
			s.tokens, s.tokBand = 0, 0
		}
	}
}

// band is the alert threshold band spent/budget is in: 0 below the first
// threshold, i+1 past budgetThresholds[i].
func band(spent, budget int64) (int8, float64) {
	share := float64(spent) / float64(budget)
	var b int8
	for i, t := range budgetThresholds {
		if share*100 >= t {
			b = int8(i + 1)
		}
	}
	return b, share
}

// crossed records the band of spent/budget in *cur and reports whether it
// rose (a threshold passed). A lower band (a raised budget) re-arms the
// thresholds above it.
func crossed(cur *int8, spent, budget int64) (int8, float64, bool) {
	b, share := band(spent, budget)
	up := b > *cur
	*cur = b
	return b, share, up
}

// checkBudgets refuses when a budget is spent. Called with k.mu held.
func (k *Key) checkBudgets(now time.Time) *Refusal {
	if k.budgetUSD == [numWindows]int64{} && k.dailyTokens == 0 {
		return nil
	}
	k.roll(now)
	for w := Window(0); w < numWindows; w++ {
		if b := k.budgetUSD[w]; b > 0 && k.win[w].spent+k.held >= b {
			end := k.win[w].end
			inFlight := ""
			if k.held > 0 {
				inFlight = fmt.Sprintf(" and $%s reserved by requests in flight", usd(k.held))
			}
			return &Refusal{Status: 429, Reason: OverBudget, RetryAfter: end.Sub(now),
				Message: fmt.Sprintf("relay key %q has spent its %s budget of $%s ($%s used%s); it resets at %s", k.Name, w, usd(b), usd(k.win[w].spent), inFlight, end.Format(time.RFC3339))}
		}
	}
	if k.dailyTokens > 0 && k.tokens >= k.dailyTokens {
		end := k.win[Day].end
		return &Refusal{Status: 429, Reason: OverBudget, RetryAfter: end.Sub(now),
			Message: fmt.Sprintf("relay key %q has used its daily budget of %d tokens (%d used); it resets at %s", k.Name, k.dailyTokens, k.tokens, end.Format(time.RFC3339))}
	}
	return nil
}

// usd formats micro-dollars with cents, or more digits when cents hide them.
func usd(micros int64) string {
	if micros%10000 == 0 {
		return strconv.FormatFloat(float64(micros)/1e6, 'f', 2, 64)
	}
	return strconv.FormatFloat(float64(micros)/1e6, 'f', -1, 64)
}

// HasUSDBudget reports whether the key has a dollar budget (the relay then
// reserves each request's estimated cost: Reserve).
func (k *Key) HasUSDBudget() bool { return k != nil && k.budgetUSD != [numWindows]int64{} }

// Reserve holds a request's estimated cost (micro-dollars) against k's
// dollar budgets, after Admit admitted it: a budget that spending plus the
// reservations of the requests in flight have reached refuses it, else the
// estimate is reserved until Release. So requests admitted together see
// each other, and together they pass a budget by about one request's cost
// at most (the last one admitted), not by all of them. priced false (the
// model has no price) refuses the request on a key with a dollar budget:
// its cost could never be charged. On a refusal the caller still ends the
// admitted request with Done. A key without a dollar budget reserves
// nothing.
func (p *Policy) Reserve(k *Key, micros int64, priced bool, model string) *Refusal {
	if !k.HasUSDBudget() {
		return nil
	}
	if !priced {
		return &Refusal{Status: 403, Reason: Forbidden, Message: fmt.Sprintf("model %q has no price, and relay key %q has a dollar budget that could not charge it: add a [prices.%q] entry to the config (or use a model with a price)", model, k.Name, model)}
	}
	now := p.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.checkBudgets(now); r != nil {
		return r
	}
	k.held += max(micros, 0)
	return nil
}

// Release gives back a reservation made by Reserve; the request's real
// cost is charged by Done.
func (p *Policy) Release(k *Key, micros int64) {
	// Not HasUSDBudget: a reload may have removed the budget since, and the
	// reservation lives in the counters every generation shares.
	if k == nil || micros <= 0 {
		return
	}
	k.mu.Lock()
	k.held = max(k.held-micros, 0)
	k.mu.Unlock()
}

// Bounds returns the calendar window of kind w that holds t, in loc: a day,
// an ISO week (Monday to Monday) or a month.
func Bounds(w Window, t time.Time, loc *time.Location) (start, end time.Time) {
	t = t.In(loc)
	y, m, d := t.Date()
	switch w {
	case Week:
		wd := (int(t.Weekday()) + 6) % 7 // Monday = 0
		start = time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 7)
	case Month:
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 1, 0)
	}
	start = time.Date(y, m, d, 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 0, 1)
}
