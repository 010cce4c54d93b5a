package scheduler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func acct(id string, prio int) *Account {
	return &Account{ID: id, Platform: "claude", Priority: prio, Enabled: true}
}
func disabled(id string, prio int) *Account { a := acct(id, prio); a.Enabled = false; return a }

var opts = Options{StickyTTL: time.Hour, RenewalThreshold: 5 * time.Minute, UnavailableCooldown: time.Hour,
	RateLimitCooldown: time.Minute, MaxRateLimitHint: time.Hour, OverloadCooldown: 5 * time.Minute, ErrorCooldown: 30 * time.Second}

func newSched(t *testing.T, p Persister, accts ...*Account) (*Scheduler, *clock) {
	t.Helper()
	s := New(accts, opts, p, nil)
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s.SetClock(c.now)
	t.Cleanup(s.Close)
	return s, c
}

func pick(t *testing.T, s *Scheduler, model, key string, exclude ...string) string {
	t.Helper()
	a, err := s.Pick("claude", model, key, exclude)
	if err != nil {
		return "ERR"
	}
	return a.ID
}

func TestPriorityAndLRU(t *testing.T) {
	s, c := newSched(t, nil, acct("low", 50), acct("a", 100), acct("b", 100), disabled("top", 999))
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, pick(t, s, "m", ""))
		c.add(time.Second)
	}
	want := []string{"a", "b", "a", "b"} // equal priorities share; disabled never; low only as fallback
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("picks %v, want %v", got, want)
		}
	}
	if p := pick(t, s, "m", "", "a", "b"); p != "low" {
		t.Fatalf("with a,b excluded got %s", p)
	}
	if p := pick(t, s, "m", "", "a", "b", "low"); p != "ERR" {
		t.Fatalf("all excluded got %s", p)
	}
}

func TestCooldownsAndModelScope(t *testing.T) {
	s, c := newSched(t, nil, acct("a", 100), acct("b", 50))
	s.Report("a", provider.Verdict{Kind: provider.RateLimited, Until: c.t.Add(10 * time.Second)})
	if p := pick(t, s, "m", ""); p != "b" {
		t.Fatalf("cooling a picked: %s", p)
	}
	c.add(11 * time.Second)
	if p := pick(t, s, "m", ""); p != "a" {
		t.Fatalf("a should be back: %s", p)
	}
	// A model-scoped limit blocks only that model.
	s.Report("a", provider.Verdict{Kind: provider.QuotaExhausted, Model: "claude-opus", Until: c.t.Add(time.Hour)})
	if p := pick(t, s, "claude-opus", ""); p != "b" {
		t.Fatalf("opus on a: %s", p)
	}
	if p := pick(t, s, "claude-sonnet", "", "b"); p != "a" {
		t.Fatalf("sonnet on a should work: %s", p)
	}
	// Defaults per kind, and the cap on long short-hints.
	for _, tc := range []struct {
		kind provider.Kind
		hint time.Duration
		want time.Duration
	}{
		{provider.RateLimited, 0, time.Minute},
		{provider.RateLimited, 48 * time.Hour, time.Hour},
		{provider.Overloaded, 0, 5 * time.Minute},
		{provider.Unavailable, 0, time.Hour},
		{provider.ServerError, 0, 30 * time.Second},
		{provider.Network, 0, 30 * time.Second},
		{provider.QuotaExhausted, 72 * time.Hour, 72 * time.Hour},
	} {
		s.Reset("b")
		var until time.Time
		if tc.hint > 0 {
			until = c.t.Add(tc.hint)
		}
		cd := s.Report("b", provider.Verdict{Kind: tc.kind, Until: until})
		if got := cd.Until.Sub(c.t); got != tc.want {
			t.Errorf("%s hint %v: cooldown %v want %v", tc.kind, tc.hint, got, tc.want)
		}
	}
	// Client errors never cool.
	s.Reset("b")
	if cd := s.Report("b", provider.Verdict{Kind: provider.ClientError}); !cd.Until.IsZero() {
		t.Fatal("client error cooled the account")
	}
}

func TestSuccessClearsShortCooldownOnly(t *testing.T) {
	// Every kind the provider vocabulary has, and what a later success does
	// to the whole-account cooldown it set: the short, transient kinds end at
	// the first success; a verdict on the account itself (revoked, unpaid,
	// spent quota, a dead refresh token) waits for its time or a reset.
	clears := map[provider.Kind]bool{
		provider.RateLimited:    true,
		provider.Overloaded:     true,
		provider.ServerError:    true,
		provider.Network:        true,
		provider.QuotaExhausted: false,
		provider.Unavailable:    false,
		provider.TokenInvalid:   false,
	}
	for k := provider.OK; k.String() != "unknown"; k++ {
		want, listed := clears[k]
		if !k.Failover() {
			if listed {
				t.Errorf("%s sets no cooldown, yet the table lists it", k)
			}
			continue
		}
		if !listed {
			t.Errorf("kind %s is missing from this table: say whether a success clears its cooldown", k)
			continue
		}
		t.Run(k.String(), func(t *testing.T) {
			s, _ := newSched(t, nil, acct("a", 100))
			s.Report("a", provider.Verdict{Kind: k})
			if len(s.Cooldowns()) != 1 {
				t.Fatalf("%s set no cooldown", k)
			}
			s.Report("a", provider.Verdict{Kind: provider.OK})
			if cleared := len(s.Cooldowns()) == 0; cleared != want {
				t.Fatalf("after a success, cleared = %v, want %v", cleared, want)
			}
		})
	}
}

func TestNoAccountRetryAt(t *testing.T) {
	s, c := newSched(t, nil, acct("a", 100), acct("b", 100))
	s.Report("a", provider.Verdict{Kind: provider.RateLimited, Until: c.t.Add(30 * time.Second)})
	s.Report("b", provider.Verdict{Kind: provider.RateLimited, Until: c.t.Add(10 * time.Second)})
	_, err := s.Pick("claude", "m", "", nil)
	var ne *NoAccountError
	if !errors.As(err, &ne) || !errors.Is(err, ErrNoAccount) || !ne.RetryAt.Equal(c.t.Add(10*time.Second)) {
		t.Fatalf("err %v", err)
	}
	if _, err := s.Pick("gemini", "m", "", nil); !errors.As(err, &ne) || ne.Configured != 0 {
		t.Fatalf("empty pool: %v", err)
	}
}

func TestStickySessions(t *testing.T) {
	s, c := newSched(t, nil, acct("a", 100), acct("b", 100))
	first := pick(t, s, "m", "conv-1")
	c.add(time.Second)
	for i := 0; i < 5; i++ {
		if p := pick(t, s, "m", "conv-1"); p != first {
			t.Fatalf("sticky moved to %s", p)
		}
		c.add(time.Second)
	}
	// Renewal: only when less than the threshold is left.
	b := s.Sessions()[0]
	c.add(50 * time.Minute)
	pick(t, s, "m", "conv-1")
	if !s.Sessions()[0].ExpiresAt.Equal(b.ExpiresAt) {
		t.Fatal("renewed with 10 minutes left (threshold 5)")
	}
	c.add(6 * time.Minute) // 4 minutes left
	pick(t, s, "m", "conv-1")
	if got := s.Sessions()[0].ExpiresAt.Sub(c.t); got != time.Hour {
		t.Fatalf("not renewed to the full TTL: %v", got)
	}
	// The bound account fails: the session moves and is rebound.
	s.Report(first, provider.Verdict{Kind: provider.RateLimited})
	moved := pick(t, s, "m", "conv-1")
	if moved == first {
		t.Fatal("session stayed on a cooling account")
	}
	s.Reset(first)
	if p := pick(t, s, "m", "conv-1"); p != moved {
		t.Fatalf("rebinding lost: %s", p)
	}
	// Expiry.
	c.add(2 * time.Hour)
	if len(s.Sessions()) != 0 {
		t.Fatal("expired session listed")
	}
}

type memPersist struct {
	mu        sync.Mutex
	sessions  map[string]state.Binding
	cooldowns map[string]state.Cooldown
}

func (m *memPersist) SaveSession(_ context.Context, b state.Binding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[b.Key] = b
	return nil
}
func (m *memPersist) DeleteSessions(_ context.Context, key, acct string) (int64, error) {
	return 0, nil
}
func (m *memPersist) SaveCooldown(_ context.Context, c state.Cooldown) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cooldowns[c.AccountID+"/"+c.Model] = c
	return nil
}
func (m *memPersist) DeleteCooldown(_ context.Context, a, model string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cooldowns, a+"/"+model)
	return nil
}
func (m *memPersist) SaveLastUsed(context.Context, string, time.Time) error { return nil }

func TestPersistAndRestore(t *testing.T) {
	p := &memPersist{sessions: map[string]state.Binding{}, cooldowns: map[string]state.Cooldown{}}
	s := New([]*Account{acct("a", 100), acct("b", 100)}, opts, p, nil)
	first, _ := s.Pick("claude", "m", "conv", nil)
	s.Report("b", provider.Verdict{Kind: provider.Overloaded})
	s.Close() // flushes the writer
	if len(p.sessions) != 1 || len(p.cooldowns) != 1 {
		t.Fatalf("persisted %d sessions %d cooldowns", len(p.sessions), len(p.cooldowns))
	}
	var bs []state.Binding
	for _, b := range p.sessions {
		bs = append(bs, b)
	}
	var cs []state.Cooldown
	for _, c := range p.cooldowns {
		cs = append(cs, c)
	}
	s2 := New([]*Account{acct("a", 100), acct("b", 100)}, opts, nil, nil)
	defer s2.Close()
	s2.Restore(bs, cs, nil)
	if a, _ := s2.Pick("claude", "m", "conv", nil); a.ID != first.ID {
		t.Fatal("session lost over restart")
	}
	if len(s2.Cooldowns()) != 1 {
		t.Fatal("cooldown lost over restart")
	}
}

func BenchmarkPickSticky(b *testing.B) {
	var accts []*Account
	for i := 0; i < 20; i++ {
		accts = append(accts, &Account{ID: string(rune('a' + i)), Platform: "claude", Priority: 100, Enabled: true})
	}
	s := New(accts, opts, nil, nil)
	defer s.Close()
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "session-" + string(rune(i))
		s.Pick("claude", "m", keys[i], nil)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Pick("claude", "m", keys[i%len(keys)], nil)
	}
}

func TestSetDisabledAndStates(t *testing.T) {
	a := &Account{ID: "a", Platform: "claude", Priority: 100, Enabled: true}
	b := &Account{ID: "b", Platform: "claude", Priority: 50, Enabled: true}
	s := New([]*Account{a, b}, Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute}, nil, nil)
	defer s.Close()
	if !s.SetDisabled("a", true) || s.SetDisabled("nope", true) {
		t.Fatal("SetDisabled result")
	}
	got, err := s.Pick("claude", "m", "", nil)
	if err != nil || got.ID != "b" {
		t.Fatalf("picked %v, %v; want b while a is disabled", got, err)
	}
	s.Report("b", provider.Verdict{Kind: provider.ServerError, Reason: "upstream 500"})
	st := s.States()
	if !st[0].Disabled || st[1].Disabled || st[1].LastError.Kind != provider.ServerError.String() || st[1].LastError.Reason != "upstream 500" || st[1].LastUsed.IsZero() {
		t.Fatalf("states %+v", st)
	}
	s.SetDisabled("a", false)
	if got, err := s.Pick("claude", "m", "", nil); err != nil || got.ID != "a" {
		t.Fatalf("picked %v, %v after enable", got, err)
	}
}

// Whatever time an upstream names, a cooldown lasts between 1 s and 31 days;
// a nonsensical hint falls back to the default with one warning.
func TestCooldownBounds(t *testing.T) {
	var logs bytes.Buffer
	s := New([]*Account{acct("a", 100)}, opts, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(s.Close)
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s.SetClock(c.now)
	tests := []struct {
		name string
		v    provider.Verdict
		want time.Duration
	}{
		{"quota reset a year away", provider.Verdict{Kind: provider.QuotaExhausted, Until: c.t.AddDate(1, 0, 0)}, provider.MaxHint},
		{"quota reset in year 9999", provider.Verdict{Kind: provider.QuotaExhausted, Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, provider.MaxHint},
		{"overload hint of a millisecond", provider.Verdict{Kind: provider.Overloaded, Until: c.t.Add(time.Millisecond)}, provider.MinHint},
		{"nonsense hint: the default", provider.Verdict{Kind: provider.Overloaded, BadHint: "retry-after=NaN"}, opts.OverloadCooldown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Reset("a")
			if got := s.Report("a", tt.v).Until.Sub(c.t); got != tt.want {
				t.Fatalf("cooldown %v, want %v", got, tt.want)
			}
		})
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), `hint="retry-after=NaN"`) {
		t.Fatalf("want one warning naming the hint, got:\n%s", logs.String())
	}
}

// SetAccounts (a reload): a new account serves, a removed one's sticky
// conversations move at their next Pick, a kept one keeps its cooldown and
// its last use, and a removed one's cooldowns are dropped.
func TestSetAccounts(t *testing.T) {
	a, b := acct("a", 100), acct("b", 100)
	s, c := newSched(t, nil, a, b)
	if got := pick(t, s, "", "conv"); got != "a" {
		t.Fatalf("first pick %s", got)
	}
	c.add(time.Second)
	s.Report("b", provider.Verdict{Kind: provider.Overloaded})

	// b changed (new object, same id), a removed, n added with a higher priority.
	b2, n := acct("b", 100), acct("n", 200)
	b2.Index, n.Index = 7, 8
	s.SetAccounts([]*Account{b2, n})
	if s.Account("a") != nil || s.Account("b") != b2 || len(s.Accounts()) != 2 {
		t.Fatalf("accounts %v", s.Accounts())
	}
	if cds := s.Cooldowns(); len(cds) != 1 || cds[0].AccountID != "b" {
		t.Fatalf("cooldowns %+v", cds)
	}
	if got := pick(t, s, "", "conv"); got != "n" {
		t.Fatalf("conversation of a removed account went to %s", got)
	}
	if b, _ := s.Session("conv"); b.AccountID != "n" {
		t.Fatalf("binding %+v", b)
	}
	// Reporting on the removed account (a request that was on it finishes) is harmless.
	s.Report("a", provider.Verdict{Kind: provider.OK})

	s.SetAccounts([]*Account{b2})
	if _, err := s.Pick("claude", "", "", nil); err == nil {
		t.Fatal("b is cooling down; nothing should serve")
	}
	s.SetAccounts(nil)
	var nae *NoAccountError
	if _, err := s.Pick("claude", "", "", nil); !errors.As(err, &nae) || nae.Configured != 0 {
		t.Fatalf("empty set: %v", err)
	}
}
