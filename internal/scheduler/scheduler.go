// Package scheduler picks the upstream account for each request: one pool per
// platform, highest priority first, least recently used among equals, sticky
// sessions for conversations, and cooldowns that expire by time.
//
// All state is in memory behind one mutex (a pick is a few hundred
// nanoseconds); changes are written through to a Persister off the request
// path, and loaded back on start, so sessions and cooldowns survive a restart.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

// Account is one upstream account as the scheduler sees it.
type Account struct {
	ID       string
	Name     string
	Type     string
	Platform string
	Priority int
	Enabled  bool
	// Index is unique among the accounts of one scheduler's lifetime (the
	// position in the configuration at start; a reload gives each new or
	// changed account a fresh one); callers use it to find their own
	// per-account data without a map lookup.
	Index int
	// PlanOnly: never draw paid extra usage (see QuotaPolicy).
	PlanOnly bool
	// MaxConcurrency caps the requests the account serves at once (0 = no
	// cap); at the cap Pick passes it over. Every Pick must be paired with
	// a Release.
	MaxConcurrency int

	inUse    atomic.Int32
	lastUsed time.Time
	order    int // config order within the pool, the final tie-break
	// disabled is set by an operator (admin API), over Enabled; under Scheduler.mu.
	disabled bool
	// lastErr is the newest failed outcome; under Scheduler.mu.
	lastErr LastError
}

// LastError is the newest failed upstream outcome of an account.
type LastError struct {
	Kind   string
	Model  string
	Reason string
	At     time.Time
}

// AccountState is a snapshot of what the scheduler knows of one account.
type AccountState struct {
	*Account
	// Disabled is true when an operator disabled the account (SetDisabled).
	Disabled bool
	LastUsed time.Time
	// LastError is zero when the account has not failed since the start.
	LastError LastError
}

// Options are the durations the scheduler applies.
type Options struct {
	StickyTTL           time.Duration
	RenewalThreshold    time.Duration
	UnavailableCooldown time.Duration
	RateLimitCooldown   time.Duration
	MaxRateLimitHint    time.Duration
	OverloadCooldown    time.Duration
	ErrorCooldown       time.Duration
	// TokenInvalidCooldown keeps an account whose refresh token was rejected
	// out until a new login replaces the token. Default 30 days.
	TokenInvalidCooldown time.Duration
}

// ErrNoAccount is returned when no account of the platform can serve.
var ErrNoAccount = errors.New("no upstream account available")

// NoAccountError says why no account could be picked and when one returns.
type NoAccountError struct {
	Platform string
	// RetryAt is the earliest moment a cooling account comes back; zero when
	// none will by itself (no accounts, all disabled or all tried).
	RetryAt time.Time
	// Configured is how many accounts the pool has.
	Configured int
}

func (e *NoAccountError) Error() string {
	if e.Configured == 0 {
		return "no " + e.Platform + " accounts are configured"
	}
	return "all " + e.Platform + " accounts are unavailable"
}

// Unwrap makes errors.Is(err, ErrNoAccount) work.
func (e *NoAccountError) Unwrap() error { return ErrNoAccount }

// Scheduler is safe for concurrent use.
type Scheduler struct {
	opts Options
	now  func() time.Time
	log  *slog.Logger

	mu        sync.Mutex
	accounts  []*Account
	byID      map[string]*Account
	pools     map[string][]*Account // sorted: priority desc, config order
	cooldowns map[cooldownKey]state.Cooldown
	sessions  map[string]session

	persist        Persister
	persistFailing atomic.Bool
	jobs           chan func(context.Context)
	done           chan struct{}
	closed         bool
	// observer is told of every state change (cluster sync, metrics,
	// alerts); nil when none is registered.
	observer Observer
	// quota steers by the accounts' rate-limit windows (quota.go).
	quota QuotaPolicy
}

// Whether an Observer call reports a cooldown or binding that was set (or
// renewed) or one that was cleared: the cleared argument's two values, named
// at the call sites.
const (
	wasSet     = false
	wasCleared = true
)

// Observer learns of local state changes, e.g. to publish them to a cluster.
type Observer interface {
	CooldownChanged(c state.Cooldown, cleared bool)
	SessionChanged(b state.Binding, cleared bool)
	AccountUsed(accountID string, t time.Time)
}

// New builds a scheduler over accounts (in config order). persist may be nil.
func New(accounts []*Account, opts Options, persist Persister, log *slog.Logger) *Scheduler {
	if opts.TokenInvalidCooldown == 0 {
		opts.TokenInvalidCooldown = 30 * 24 * time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		opts: opts, now: time.Now, log: log,
		byID: map[string]*Account{}, pools: map[string][]*Account{},
		cooldowns: map[cooldownKey]state.Cooldown{}, sessions: map[string]session{},
		persist: persist, jobs: make(chan func(context.Context), 4096), done: make(chan struct{}),
	}
	s.setAccountsLocked(accounts)
	go s.writer()
	return s
}

// setAccountsLocked installs accounts (in config order) as the pools.
func (s *Scheduler) setAccountsLocked(accounts []*Account) {
	s.accounts = make([]*Account, 0, len(accounts))
	s.byID = make(map[string]*Account, len(accounts))
	s.pools = map[string][]*Account{}
	for i, a := range accounts {
		a.order = i
		s.accounts = append(s.accounts, a)
		s.byID[a.ID] = a
		s.pools[a.Platform] = append(s.pools[a.Platform], a)
	}
	for _, p := range s.pools {
		slices.SortStableFunc(p, func(a, b *Account) int { return b.Priority - a.Priority })
	}
}

// SetAccounts replaces the account set (a config reload). An account whose
// ID was known keeps its last use (the least-recently-used tie-break) and its
// cooldowns; a removed account's cooldowns are dropped, and sessions bound to
// it move to another account at their next Pick. A caller that already
// picked a removed account finishes with it: Report on an unknown id only
// records a cooldown that nothing reads. Accounts passed in must not be
// mutated afterwards; pass a new *Account for a changed one.
func (s *Scheduler) SetAccounts(accounts []*Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range accounts {
		if old := s.byID[a.ID]; old != nil && old != a && old.lastUsed.After(a.lastUsed) {
			a.lastUsed = old.lastUsed
		}
	}
	s.setAccountsLocked(accounts)
	for k := range s.cooldowns {
		if s.byID[k.account] == nil {
			delete(s.cooldowns, k)
		}
	}
}

// SetClock replaces time.Now (tests).
func (s *Scheduler) SetClock(now func() time.Time) { s.now = now }

// SetObserver registers o, beside any observer already registered. Observers
// are called with the scheduler's lock held: they must not block or call
// back into the scheduler.
func (s *Scheduler) SetObserver(o Observer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cur := s.observer.(type) {
	case nil:
		s.observer = o
	case observers:
		s.observer = append(cur, o)
	default:
		s.observer = observers{cur, o}
	}
}

// observers tells several observers of each change.
type observers []Observer

func (os observers) CooldownChanged(c state.Cooldown, cleared bool) {
	for _, o := range os {
		o.CooldownChanged(c, cleared)
	}
}

func (os observers) SessionChanged(b state.Binding, cleared bool) {
	for _, o := range os {
		o.SessionChanged(b, cleared)
	}
}

func (os observers) AccountUsed(accountID string, t time.Time) {
	for _, o := range os {
		o.AccountUsed(accountID, t)
	}
}

// SetOptions replaces the durations (a config reload). Cooldowns and
// bindings already made keep their end times.
func (s *Scheduler) SetOptions(opts Options) {
	if opts.TokenInvalidCooldown == 0 {
		opts.TokenInvalidCooldown = 30 * 24 * time.Hour
	}
	s.mu.Lock()
	s.opts = opts
	s.mu.Unlock()
}

// Accounts returns every account in config order. The slice is the
// caller's; a reload replaces the set, never changes a returned one.
func (s *Scheduler) Accounts() []*Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accounts)
}

// Account returns the account with id, or nil.
func (s *Scheduler) Account(id string) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

// available reports whether a may serve model now; it returns the end of the
// cooldown that blocks it otherwise. Called with s.mu held.
func (s *Scheduler) available(a *Account, model string, now time.Time) (bool, time.Time) {
	if !a.Enabled || a.disabled || (a.MaxConcurrency > 0 && int(a.inUse.Load()) >= a.MaxConcurrency) {
		return false, time.Time{}
	}
	if c, ok := s.cooldowns[cooldownKey{a.ID, ""}]; ok {
		if c.Until.After(now) {
			return false, c.Until
		}
		delete(s.cooldowns, cooldownKey{a.ID, ""})
	}
	if model != "" {
		if c, ok := s.cooldowns[cooldownKey{a.ID, model}]; ok {
			if c.Until.After(now) {
				return false, c.Until
			}
			delete(s.cooldowns, cooldownKey{a.ID, model})
		}
	}
	if spent, until := s.planSpent(a, now); spent {
		return false, until
	}
	return true, time.Time{}
}

// Pick chooses an account of platform for model. A non-empty sessionKey makes
// the choice sticky. exclude lists accounts this request already tried.
func (s *Scheduler) Pick(platform, model, sessionKey string, exclude []string) (*Account, error) {
	return s.PickTurn(platform, Turn{Model: model, SessionKey: sessionKey}, exclude)
}

// Turn is what Pick needs to know of a request: the model it asks for and,
// for a conversation, its session key and the relay key it came with (the
// sessions list shows them).
type Turn struct {
	Model      string
	SessionKey string
	KeyName    string
	KeyHash    string
}

// PickTurn is Pick for t.
func (s *Scheduler) PickTurn(platform string, t Turn, exclude []string) (*Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	pool := s.pools[platform]
	model, sessionKey := t.Model, t.SessionKey

	if sessionKey != "" {
		if ss, ok := s.sessions[sessionKey]; ok {
			b := ss.Binding
			if !b.ExpiresAt.After(now) {
				delete(s.sessions, sessionKey)
			} else if a := s.byID[b.AccountID]; a != nil && a.Platform == platform && !slices.Contains(exclude, a.ID) {
				if ok, _ := s.available(a, model, now); ok && !s.leaveSticky(pool, a, model, exclude, now) {
					s.turn(ss, t, now)
					s.touch(a, now)
					return a, nil
				}
			}
		}
	}

	var pick candidate
	var retryAt time.Time
	for _, a := range pool {
		if pick.a != nil && pick.tier == tierOpen && a.Priority < pick.a.Priority {
			break // pool is sorted by priority; lower ones only matter if none above serves (under its limits)
		}
		if slices.Contains(exclude, a.ID) {
			continue
		}
		ok, until := s.available(a, model, now)
		if !ok {
			if !until.IsZero() && (retryAt.IsZero() || until.Before(retryAt)) {
				retryAt = until
			}
			continue
		}
		c := candidate{a: a}
		c.tier, c.load = s.standing(a, now)
		if c.better(pick) {
			pick = c
		}
	}
	best := pick.a
	if best == nil {
		return nil, &NoAccountError{Platform: platform, RetryAt: retryAt, Configured: len(pool)}
	}
	if sessionKey != "" {
		s.bind(best.ID, t, now)
	}
	s.touch(best, now)
	return best, nil
}

// Release ends a request that Pick gave to a (its concurrency slot).
func (s *Scheduler) Release(a *Account) { a.inUse.Add(-1) }

// InUse is how many picked requests a is serving now.
func (a *Account) InUse() int { return int(a.inUse.Load()) }

func (s *Scheduler) touch(a *Account, now time.Time) {
	a.inUse.Add(1)
	// Persist last use at most once a second per account: it only breaks ties.
	persist := now.Sub(a.lastUsed) > time.Second
	a.lastUsed = now
	if persist {
		id := a.ID
		s.enqueue(func(ctx context.Context) { s.logErr("last_used", s.persist.SaveLastUsed(ctx, id, now)) })
	}
	if s.observer != nil {
		s.observer.AccountUsed(a.ID, now)
	}
}

// SetDisabled takes an account out of rotation (disabled) or puts it back,
// over its configured enabled flag, in memory only: the caller persists it.
// It reports false when there is no such account.
func (s *Scheduler) SetDisabled(id string, disabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byID[id]
	if a == nil {
		return false
	}
	a.disabled = disabled
	return true
}

// States returns a snapshot of every account in config order.
func (s *Scheduler) States() []AccountState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AccountState, len(s.accounts))
	for i, a := range s.accounts {
		out[i] = AccountState{Account: a, Disabled: a.disabled, LastUsed: a.lastUsed, LastError: a.lastErr}
	}
	return out
}
