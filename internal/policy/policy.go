// Package policy decides who a client is and what it may do: it
// authenticates relay keys (api_keys and named [[keys]]) and admits each
// request against the key's rules — enabled, expiry, model allow-list, rpm,
// concurrency with a FIFO queue, and daily/weekly/monthly budgets — then
// charges what the request cost.
//
// Every check is in memory and O(1) per request: budgets are counters per
// calendar window, seeded from the usage database at start (Seed) and kept
// up to date by Done; rpm is a token bucket (GCRA, one timestamp);
// concurrency is a counter with a FIFO queue of waiters. In a cluster the
// counters are shared through a Shared implementation off the request path.
package policy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Reason says why a request was refused; the relay picks the error type of
// the client's dialect from it.
type Reason int

const (
	// Forbidden: the key is disabled or expired, or the model is not allowed (403).
	Forbidden Reason = iota + 1
	// RateLimited: over rpm, or no concurrency slot within queue_seconds (429).
	RateLimited
	// OverBudget: a budget is spent until its window resets (429).
	OverBudget
)

// Refusal is a request the policy turned down; nothing goes upstream.
type Refusal struct {
	Status int
	Reason Reason
	// Message names the key and the rule (never the key's value).
	Message string
	// RetryAfter is when trying again can succeed; 0 for Forbidden.
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Message }

// Window is a budget window.
type Window int

// The budget windows, calendar-aligned in the key's time zone.
const (
	Day Window = iota
	Week
	Month
	numWindows
)

func (w Window) String() string {
	return [...]string{"daily", "weekly", "monthly"}[w]
}

// Key is one relay key with its rules and live counters.
type Key struct {
	// Name is the [[keys]] name; "" for an unnamed api_keys entry.
	Name string
	// ID is usage.HashKey of the key: how usage rows name it.
	ID string

	enabled bool
	expires time.Time
	models  []string
	// Groups are the account groups the key may use (nil = all).
	Groups      []string
	rpm         int
	interval    time.Duration // 1 min / rpm
	conc        int
	queue       time.Duration
	budgetUSD   [numWindows]int64 // micro-dollars; 0 = none
	dailyTokens int64
	loc         *time.Location
	limited     bool // any rule beyond authentication

	mu  sync.Mutex
	tat time.Time // GCRA theoretical arrival time
	// concurrency
	inUse   int
	waiters []chan struct{}
	// budget windows
	win      [numWindows]window
	tokens   int64 // in win[Day]
	lastUsed time.Time
	// cluster: the other relays' requests admitted in the last minute and
	// in flight now (ApplyClusterLoad, cluster.go).
	clusterRecent, clusterInFlight int
}

type window struct {
	start, end time.Time
	spent      int64 // micro-dollars
}

// Limited reports whether the key has any rule to check beyond being known.
func (k *Key) Limited() bool { return k != nil && k.limited }

// Options configure a Policy.
type Options struct {
	// APIKeys are the unnamed keys of api_keys.
	APIKeys []string
	// Keys are the [[keys]] entries (validated by config).
	Keys []config.KeyConfig
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Log receives the few lines the policy writes; nil discards them.
	Log *slog.Logger
}

// Policy is safe for concurrent use.
type Policy struct {
	hashes [][32]byte
	keys   []*Key
	byName map[string]*Key
	byID   map[string]*Key
	now    func() time.Time
	log    *slog.Logger
	shared Shared
}

// New builds a policy from the configured keys.
func New(opts Options) (*Policy, error) {
	p := &Policy{now: opts.Now, log: opts.Log, byName: map[string]*Key{}, byID: map[string]*Key{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range opts.APIKeys {
		key := &Key{ID: usage.HashKey(k), enabled: true, loc: time.UTC}
		p.add(sha256.Sum256([]byte(k)), key)
	}
	for i := range opts.Keys {
		kc := &opts.Keys[i]
		d, err := kc.Digest()
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		loc, err := kc.Location()
		if err != nil {
			return nil, fmt.Errorf("keys[%d] timezone: %w", i, err)
		}
		exp, err := kc.Expiry()
		if err != nil {
			return nil, fmt.Errorf("keys[%d] expires_at: %w", i, err)
		}
		key := &Key{
			Name: kc.Name, ID: hexDigest(d), enabled: kc.IsEnabled(), expires: exp, models: kc.Models, Groups: kc.Groups,
			rpm: kc.RPM, conc: kc.Concurrency, queue: config.Seconds(kc.QueueSeconds), dailyTokens: kc.DailyTokens, loc: loc,
		}
		key.budgetUSD[Day], key.budgetUSD[Week], key.budgetUSD[Month] = usdMicros(kc.DailyUSD), usdMicros(kc.WeeklyUSD), usdMicros(kc.MonthlyUSD)
		if key.rpm > 0 {
			key.interval = time.Minute / time.Duration(key.rpm)
		}
		key.limited = !key.enabled || !key.expires.IsZero() || len(key.models) > 0 || key.rpm > 0 || key.conc > 0 ||
			key.budgetUSD != [numWindows]int64{} || key.dailyTokens > 0
		p.add(d, key)
		p.byName[key.Name] = key
	}
	return p, nil
}

func (p *Policy) add(d [32]byte, k *Key) {
	p.hashes = append(p.hashes, d)
	p.keys = append(p.keys, k)
	p.byID[k.ID] = k
}

func usdMicros(usd float64) int64 { return int64(usd*1e6 + 0.5) }

func hexDigest(d [32]byte) string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 64)
	for i, c := range d {
		b[2*i], b[2*i+1] = hexd[c>>4], hexd[c&15]
	}
	return string(b)
}

// Open reports whether no relay key is configured (auth is off).
func (p *Policy) Open() bool { return len(p.hashes) == 0 }

// KeyByName returns the named key, or nil.
func (p *Policy) KeyByName(name string) *Key { return p.byName[name] }

// keyEqual compares two key digests in constant time (1 when equal): the
// OR of the XORs of their four 64-bit words, with no branch on the data.
// Word loads instead of subtle.ConstantTimeCompare's byte loop keep 1,000
// keys at a few microseconds.
func keyEqual(a, b *[32]byte) int {
	le := binary.LittleEndian
	x := (le.Uint64(a[0:]) ^ le.Uint64(b[0:])) | (le.Uint64(a[8:]) ^ le.Uint64(b[8:])) |
		(le.Uint64(a[16:]) ^ le.Uint64(b[16:])) | (le.Uint64(a[24:]) ^ le.Uint64(b[24:]))
	return subtle.ConstantTimeEq(int32(uint32(x)|uint32(x>>32)), 0)
}

// compareHook, when set (tests only), sees every comparison Authenticate makes.
var compareHook func(a, b *[32]byte)

// Authenticate finds the key presented. Every configured key's digest is
// compared with the presented key's sha256 in constant time, whichever
// matches, so timing tells nothing about which key is near. A disabled or
// expired key is still found (Admit refuses it with a reason).
func (p *Policy) Authenticate(presented string) (*Key, bool) {
	if presented == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i := range p.hashes {
		// Branch-free select: the index of the last match, -1 if none.
		if compareHook != nil {
			compareHook(&sum, &p.hashes[i])
		}
		eq := keyEqual(&sum, &p.hashes[i])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, false
	}
	return p.keys[match], true
}

// Admit decides whether k may send a request for model now. On success the
// caller must call Done exactly once when the request ends. A request over
// the key's concurrency waits (FIFO) up to queue_seconds or until ctx ends.
func (p *Policy) Admit(ctx context.Context, k *Key, model string) *Refusal {
	if !k.Limited() {
		return nil
	}
	now := p.now()
	if !k.enabled {
		return &Refusal{Status: 403, Reason: Forbidden, Message: "relay key " + strconv.Quote(k.Name) + " is disabled"}
	}
	if !k.expires.IsZero() && !now.Before(k.expires) {
		return &Refusal{Status: 403, Reason: Forbidden, Message: "relay key " + strconv.Quote(k.Name) + " expired at " + k.expires.UTC().Format(time.RFC3339)}
	}
	if len(k.models) > 0 && model != "" && !k.allows(model) { // "": a model list, which names no model
		return &Refusal{Status: 403, Reason: Forbidden, Message: "model " + strconv.Quote(model) + " is not allowed for relay key " + strconv.Quote(k.Name)}
	}
	k.mu.Lock()
	if r := k.checkBudgets(now); r != nil {
		k.mu.Unlock()
		return r
	}
	if k.rpm > 0 {
		// GCRA: tat is when the bucket would be empty again; a burst of rpm
		// requests is allowed, then one per interval.
		tat := k.tat
		if tat.Before(now) {
			tat = now
		}
		next := tat.Add(k.interval)
		// cluster: the other relays' recent requests fill the bucket too.
		if wait := next.Add(time.Duration(k.clusterRecent)*k.interval).Sub(now) - time.Minute; wait > 0 {
			k.mu.Unlock()
			return &Refusal{Status: 429, Reason: RateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("relay key %q is over its limit of %d requests per minute; retry in %s", k.Name, k.rpm, roundUp(wait))}
		}
		k.tat = next
		if p.shared != nil { // cluster: count it for the other relays
			p.shared.Admitted(k, now)
		}
	}
	k.lastUsed = now
	if k.conc == 0 || (k.inUse+k.clusterInFlight < k.conc && len(k.waiters) == 0) { // cluster: + others' in flight
		k.inUse++
		k.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	k.waiters = append(k.waiters, ch)
	k.mu.Unlock()
	t := time.NewTimer(k.queue)
	defer t.Stop()
	var why string
	select {
	case <-ch:
		return nil
	case <-t.C:
		why = fmt.Sprintf("relay key %q has %d requests in flight (its concurrency limit) and this one waited %s in the queue", k.Name, k.conc, k.queue)
	case <-ctx.Done():
		why = "the client went away while waiting for a concurrency slot"
	}
	k.mu.Lock()
	for i, w := range k.waiters {
		if w == ch {
			k.waiters = append(k.waiters[:i], k.waiters[i+1:]...)
			k.mu.Unlock()
			return &Refusal{Status: 429, Reason: RateLimited, RetryAfter: time.Second, Message: why}
		}
	}
	k.mu.Unlock()
	// Granted while timing out: the slot is ours.
	return nil
}

func roundUp(d time.Duration) time.Duration {
	if r := d.Round(time.Second); r >= d {
		return r
	}
	return d.Round(time.Second) + time.Second
}

func (k *Key) allows(model string) bool {
	for _, g := range k.models {
		if ok, _ := path.Match(g, model); ok {
			return true
		}
	}
	return false
}

// roll moves the windows forward to now. Called with k.mu held.
func (k *Key) roll(now time.Time) {
	for w := Window(0); w < numWindows; w++ {
		if now.Before(k.win[w].end) && !now.Before(k.win[w].start) {
			continue
		}
		s, e := Bounds(w, now, k.loc)
		k.win[w] = window{start: s, end: e}
		if w == Day {
			k.tokens = 0
		}
	}
}

// checkBudgets refuses when a budget is spent. Called with k.mu held.
func (k *Key) checkBudgets(now time.Time) *Refusal {
	if k.budgetUSD == [numWindows]int64{} && k.dailyTokens == 0 {
		return nil
	}
	k.roll(now)
	for w := Window(0); w < numWindows; w++ {
		if b := k.budgetUSD[w]; b > 0 && k.win[w].spent >= b {
			end := k.win[w].end
			return &Refusal{Status: 429, Reason: OverBudget, RetryAfter: end.Sub(now),
				Message: fmt.Sprintf("relay key %q has spent its %s budget of $%s ($%s used); it resets at %s", k.Name, w, usd(b), usd(k.win[w].spent), end.Format(time.RFC3339))}
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

// Done ends an admitted request: it frees its concurrency slot (handing it
// to the first waiter) and charges its cost and tokens to the key's
// budgets. costKnown false charges the tokens only.
func (p *Policy) Done(k *Key, costMicros int64, costKnown bool, tokens int64) {
	if !k.Limited() {
		return
	}
	now := p.now()
	k.mu.Lock()
	if k.inUse > 0 {
		k.inUse--
	}
	k.grant() // cluster: the freed slot goes to the first waiter unless other relays hold it
	if costKnown {
		costMicros = max(costMicros, 0)
	} else {
		costMicros = 0
	}
	charged := costMicros > 0 || tokens > 0
	if charged {
		k.roll(now)
		for w := range k.win {
			k.win[w].spent += costMicros
		}
		k.tokens += tokens
	}
	k.mu.Unlock()
	if charged && p.shared != nil {
		p.shared.Charge(k, now, costMicros, tokens)
	}
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
