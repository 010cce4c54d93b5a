// Package policy decides who a client is and what it may do: it
// authenticates relay keys (api_keys and named [[keys]]) and admits each
// request against the key's rules — enabled, expiry, model allow-list, rpm,
// concurrency with a FIFO queue, and daily/weekly/monthly budgets — then
// charges what the request cost.
//
// Every check is in memory and O(1) per request, whatever the number of
// keys: a key is found by its digest in a map; budgets are counters per
// calendar window, seeded from the usage database at start (Seed) and kept
// up to date by Done; rpm is a token bucket (GCRA, one timestamp);
// concurrency is a counter with a FIFO queue of waiters. In a cluster the
// counters are shared through a Shared implementation off the request path.
//
// A Policy lives as long as the relay: a config reload swaps its key table
// (Update, or Prepare then Commit), and a key whose value is unchanged
// keeps its counters, so nothing in flight is dropped and no budget resets.
// Budget crossings and queue waits leave through the callbacks in Options
// (the app sends them to the alerts and the metrics); the policy knows
// neither.
package policy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Key is one relay key of one config generation: its rules, fixed until
// the next reload, and its live counters (*keyState), which every
// generation of the key with the same ID shares. So a reload neither resets
// a key's budgets nor forgets its requests in flight: a request admitted
// before a reload and finished after it releases its slot on the same
// counters. Callers hold a *Key for one request at most (Authenticate to
// Done); a poller asks Keys or Named again on each round.
type Key struct {
	// Name is the [[keys]] name; "" for an unnamed api_keys entry.
	Name string
	// ID is usage.HashKey of the key (hex sha256): how usage rows, and a
	// cluster's shared counters, name it.
	ID string
	// Groups are the account groups the key may use (nil = all).
	Groups []string

	digest      [32]byte
	groupSet    string // Groups joined, the relay's cache key for exclusions
	enabled     bool
	expires     time.Time
	models      []string
	rpm         int
	interval    time.Duration // 1 min / rpm
	conc        int
	queue       time.Duration
	budgetUSD   [numWindows]int64 // micro-dollars; 0 = none
	dailyTokens int64
	loc         *time.Location
	limited     bool // any rule beyond authentication

	// keyState is embedded so the counters read as the key's own fields
	// (k.mu, k.inUse, k.win); it is a pointer shared across reloads.
	*keyState
}

// keyState is a key's live counters, shared by its generations.
type keyState struct {
	mu  sync.Mutex
	tat time.Time // GCRA theoretical arrival time
	// concurrency: limit is the latest generation's (0 = none), so a
	// reload that lowers it holds waiters back and one that raises it
	// wakes them.
	limit   int
	inUse   int
	waiters []*waiter
	// budget windows, in zone (the key's time zone when they were set up)
	zone   *time.Location
	win    [numWindows]window
	tokens int64 // in win[Day]
	// held is what this relay's requests in flight have reserved
	// (micro-dollars, Reserve): a budget counts it as spent until each
	// request settles (Release), so requests admitted together see each
	// other's cost.
	held     int64
	tokBand  int8 // the highest alert threshold the day's tokens passed
	lastUsed time.Time
	// cluster: the other relays' requests admitted in the last minute, in
	// flight now and queued now (ApplyClusterLoad, cluster.go).
	clusterRecent, clusterInFlight, clusterQueued int
	// unnamedUse is an api_keys entry's last use, Unix ms (lastuse.go).
	unnamedUse atomic.Int64
}

// waiter is a request queued for a concurrency slot.
type waiter struct {
	ch chan struct{} // closed once its turn is decided
	// refusal is set, before ch closes, when it is turned away instead
	// (its key was disabled or removed by a reload).
	refusal *Refusal
}

type window struct {
	start, end time.Time
	spent      int64 // micro-dollars
	band       int8  // the highest alert threshold (index+1 into budgetThresholds) passed
}

// Limited reports whether the key has any rule to check beyond being known.
func (k *Key) Limited() bool { return k != nil && k.limited }

// GroupSet names the key's set of groups ("" = all groups): keys with the
// same groups have the same GroupSet, so their account exclusions can be
// computed once per account table.
func (k *Key) GroupSet() string { return k.groupSet }

func (k *Key) hasBudget() bool { return k.budgetUSD != [numWindows]int64{} || k.dailyTokens > 0 }

// Options configure a Policy.
type Options struct {
	// APIKeys are the unnamed keys of api_keys.
	APIKeys []string
	// Keys are the [[keys]] entries (validated by config).
	Keys []config.KeyConfig
	// Now is the clock; time.Now by default. Read by New only.
	Now func() time.Time
	// Log receives the few lines the policy writes; nil discards them.
	// Read by New only.
	Log *slog.Logger
	// OnBudget, when set, is told each time a charge takes a key's spending
	// past 80% or 100% of one of its budgets (once per threshold and
	// window). It runs on the request's goroutine after the key's lock is
	// released and must not block. Read by New only.
	OnBudget func(BudgetCrossing)
	// OnQueueWait, when set, is told how long each request that queued for
	// a key's concurrency slot waited (served or refused). It must not
	// block. Read by New only.
	OnQueueWait func(key string, waited time.Duration)
}

// BudgetCrossing is a key's spending passing an alert threshold of a budget.
type BudgetCrossing struct {
	// Key is the key's name.
	Key string
	// Budget is "daily", "weekly", "monthly" (USD) or "daily tokens".
	Budget string
	// Threshold is the percentage passed: 80 or 100.
	Threshold int
	// Used is the share of the budget spent, e.g. 0.83.
	Used float64
}

// budgetThresholds are the alert thresholds, in percent of a budget.
var budgetThresholds = [...]float64{80, 100}

// Policy is safe for concurrent use. It is one long-lived object: Update
// swaps its key table while requests run.
type Policy struct {
	tab      atomic.Pointer[table]
	now      func() time.Time
	log      *slog.Logger
	shared   Shared
	onBudget func(BudgetCrossing)
	onWait   func(string, time.Duration)
	update   sync.Mutex // serializes Update
	// clusterLive is set while the other relays' load is current (cluster.go).
	clusterLive atomic.Bool
}

// table is one generation of the keys; immutable once built.
type table struct {
	byDigest map[[32]byte]*Key
	byName   map[string]*Key
	byID     map[string]*Key
	keys     []*Key // api_keys, then [[keys]], in config order
}

// New builds a policy from the configured keys.
func New(opts Options) (*Policy, error) {
	p := &Policy{now: opts.Now, log: opts.Log, onBudget: opts.OnBudget, onWait: opts.OnQueueWait}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	n, err := p.Prepare(opts)
	if err != nil {
		return nil, err
	}
	n.Commit()
	return p, nil
}

// Pending is a key table built by Prepare and not yet in force.
type Pending struct {
	p    *Policy
	prev *table
	t    *table
	// reseed are the named keys whose budget windows start over: new keys
	// (no named key with their ID was in force) and keys whose time zone
	// changed.
	reseed []*Key
	seeds  map[*Key]*seedValues
}

// Update replaces the keys with opts.APIKeys and opts.Keys (a config
// reload); the other fields of opts are ignored. A key whose ID is
// unchanged keeps its counters: rpm, requests in flight and waiting,
// budget windows, last use. Requests admitted before the update finish
// under the key they were admitted with. New keys' budgets count from zero
// unless the caller seeds them (Prepare, Pending.Seed, Pending.Commit).
func (p *Policy) Update(opts Options) error {
	n, err := p.Prepare(opts)
	if err != nil {
		return err
	}
	n.Commit()
	return nil
}

// Prepare builds the key table of opts without changing anything in force.
// Prepare and Commit must not run concurrently with another Prepare or
// Commit (the reloader serializes reloads).
func (p *Policy) Prepare(opts Options) (*Pending, error) {
	prev := p.tab.Load()
	t := &table{byDigest: map[[32]byte]*Key{}, byName: map[string]*Key{}, byID: map[string]*Key{}}
	n := &Pending{p: p, prev: prev, t: t}
	for _, s := range opts.APIKeys {
		k := &Key{ID: usage.HashKey(s), digest: sha256.Sum256([]byte(s)), enabled: true, loc: time.UTC}
		n.add(prev, k)
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
		k := &Key{
			Name: kc.Name, ID: hexDigest(d), digest: d, enabled: kc.IsEnabled(), expires: exp, models: kc.Models, Groups: kc.Groups,
			rpm: kc.RPM, conc: kc.Concurrency, queue: config.Seconds(kc.QueueSeconds), dailyTokens: kc.DailyTokens, loc: loc,
		}
		if len(k.Groups) > 0 {
			k.groupSet = strings.Join(k.Groups, "\x00")
		}
		k.budgetUSD[Day], k.budgetUSD[Week], k.budgetUSD[Month] = usdMicros(kc.DailyUSD), usdMicros(kc.WeeklyUSD), usdMicros(kc.MonthlyUSD)
		if k.rpm > 0 {
			k.interval = time.Minute / time.Duration(k.rpm)
		}
		k.limited = !k.enabled || !k.expires.IsZero() || len(k.models) > 0 || k.rpm > 0 || k.conc > 0 || k.hasBudget()
		n.add(prev, k)
		t.byName[k.Name] = k
	}
	return n, nil
}

// add puts k in the pending table with the counters of the key in force
// with its ID, or new ones.
func (n *Pending) add(prev *table, k *Key) {
	var old *Key
	if prev != nil {
		old = prev.byID[k.ID]
	}
	switch {
	case old != nil:
		k.keyState = old.keyState
		k.mu.Lock()
		zone := k.zone
		k.mu.Unlock()
		// An api_keys entry turned into a named key counted no spending.
		if k.Name != "" && (old.Name == "" || zone.String() != k.loc.String()) {
			n.reseed = append(n.reseed, k)
		}
	default:
		k.keyState = &keyState{zone: k.loc}
		if k.Name != "" {
			n.reseed = append(n.reseed, k)
		}
	}
	n.t.byDigest[k.digest] = k
	n.t.byID[k.ID] = k
	n.t.keys = append(n.t.keys, k)
}

// Commit puts the pending table in force: concurrency limits change
// (waiters a raised or removed limit lets through are woken), requests
// queued under a key now disabled or removed are refused, keys new to the
// table or moved to another time zone start their budget windows from what
// Seed found (else from zero), and the table is swapped atomically.
// Requests already admitted finish under the key they were admitted with.
func (n *Pending) Commit() {
	now := n.p.now()
	for _, k := range n.t.keys {
		k.mu.Lock()
		k.limit = k.conc
		if !k.enabled {
			k.refuseLocked(&Refusal{Status: 403, Reason: Forbidden, Message: "relay key " + strconv.Quote(k.Name) + " is disabled"})
		}
		k.wakeLocked()
		k.mu.Unlock()
	}
	if n.prev != nil {
		for _, old := range n.prev.keys {
			if n.t.byID[old.ID] == nil {
				old.mu.Lock()
				old.refuseLocked(&Refusal{Status: 403, Reason: Forbidden, Message: "relay key " + strconv.Quote(old.Name) + " was removed from the config"})
				old.mu.Unlock()
			}
		}
	}
	for _, k := range n.reseed {
		k.mu.Lock()
		k.applySeedLocked(n.seeds[k], now)
		k.mu.Unlock()
	}
	n.p.tab.Store(n.t)
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
func (p *Policy) Open() bool { return len(p.tab.Load().keys) == 0 }

// KeyByName returns the named key in force, or nil.
func (p *Policy) KeyByName(name string) *Key { return p.tab.Load().byName[name] }

// Authenticate finds the key presented: its sha256 digest is looked up in a
// map of the configured keys' digests, and the digest found is compared
// once more in constant time. The map's timing (hashing, bucket probes,
// comparisons of stored digests) depends only on the SHA-256 digest of the
// presented key, never on the key's bytes: learning how a guess's digest
// relates to the stored digests tells nothing about any key, because
// finding a key with a chosen digest (or digest prefix of useful length)
// means inverting SHA-256. So the lookup is O(1) with any number of keys
// and gives away nothing a constant-time scan of every digest would hide.
// A disabled or expired key is still found (Admit refuses it with a
// reason).
func (p *Policy) Authenticate(presented string) (*Key, bool) {
	if presented == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(presented))
	k := p.tab.Load().byDigest[sum]
	if k == nil || subtle.ConstantTimeCompare(sum[:], k.digest[:]) != 1 {
		return nil, false
	}
	return k, true
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
	if k.limit == 0 || (k.inUse+k.clusterInFlight < k.limit && len(k.waiters) == 0) { // cluster: + others' in flight
		k.inUse++
		k.mu.Unlock()
		return nil
	}
	w := &waiter{ch: make(chan struct{})}
	k.waiters = append(k.waiters, w)
	k.mu.Unlock()
	ref := p.wait(ctx, k, w)
	if p.onWait != nil {
		p.onWait(k.Name, p.now().Sub(now))
	}
	return ref
}

// wait waits in k's queue for w's turn, up to queue_seconds or until ctx
// ends.
func (p *Policy) wait(ctx context.Context, k *Key, w *waiter) *Refusal {
	t := time.NewTimer(k.queue)
	defer t.Stop()
	var why string
	select {
	case <-w.ch:
		return w.refusal
	case <-t.C:
		why = fmt.Sprintf("relay key %q has %d requests in flight (its concurrency limit) and this one waited %s in the queue", k.Name, k.conc, k.queue)
	case <-ctx.Done():
		why = "the client went away while waiting for a concurrency slot"
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, x := range k.waiters {
		if x == w {
			k.waiters = append(k.waiters[:i], k.waiters[i+1:]...)
			return &Refusal{Status: 429, Reason: RateLimited, RetryAfter: time.Second, Message: why}
		}
	}
	// Decided while timing out: granted (the slot is ours) or refused.
	return w.refusal
}

// wakeLocked hands free slots to the waiters, first come first served.
// Called with k.mu held.
func (s *keyState) wakeLocked() {
	for len(s.waiters) > 0 && (s.limit == 0 || s.inUse+s.clusterInFlight < s.limit) { // cluster: + others' in flight
		w := s.waiters[0]
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		s.inUse++
		close(w.ch)
	}
}

// refuseLocked turns every waiter away with ref. Called with k.mu held.
func (s *keyState) refuseLocked(ref *Refusal) {
	for _, w := range s.waiters {
		w.refusal = ref
		close(w.ch)
	}
	s.waiters = nil
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

// Done ends an admitted request: it frees its concurrency slot (handing it
// to the first waiter) and charges its cost and tokens to the key's
// budgets. costKnown false charges the tokens only. A named key's spending
// is counted even without budgets (keys list and the admin API show it, and
// a budget added by a reload starts from it).
func (p *Policy) Done(k *Key, costMicros int64, costKnown bool, tokens int64) {
	if k == nil {
		return
	}
	if !k.limited && k.Name == "" {
		k.touchUnnamed(p.now())
		return
	}
	now := p.now()
	if costKnown {
		costMicros = max(costMicros, 0)
	} else {
		costMicros = 0
	}
	charged := costMicros > 0 || tokens > 0
	var cross [numWindows + 1]BudgetCrossing
	nc := 0
	k.mu.Lock()
	if !k.limited {
		k.lastUsed = now // Admit did not see it
	} else {
		if k.inUse > 0 {
			k.inUse--
		}
		k.wakeLocked()
	}
	if charged {
		k.roll(now)
		for w := range k.win {
			k.win[w].spent += costMicros
			if b := k.budgetUSD[w]; b > 0 {
				if lvl, share, up := crossed(&k.win[w].band, k.win[w].spent, b); up {
					cross[nc] = BudgetCrossing{Key: k.Name, Budget: Window(w).String(), Threshold: int(budgetThresholds[lvl-1]), Used: share}
					nc++
				}
			}
		}
		k.tokens += tokens
		if k.dailyTokens > 0 {
			if lvl, share, up := crossed(&k.tokBand, k.tokens, k.dailyTokens); up {
				cross[nc] = BudgetCrossing{Key: k.Name, Budget: "daily tokens", Threshold: int(budgetThresholds[lvl-1]), Used: share}
				nc++
			}
		}
	}
	k.mu.Unlock()
	if p.onBudget != nil {
		for _, c := range cross[:nc] {
			p.onBudget(c)
		}
	}
	if charged && p.shared != nil && k.hasBudget() {
		p.shared.Charge(k, now, costMicros, tokens)
	}
}
