package scheduler

import (
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/state"
)

// sessionLog is an Observer that keeps the binding changes it is told of.
type sessionLog struct {
	mu   sync.Mutex
	seen []state.Binding
}

func (l *sessionLog) CooldownChanged(state.Cooldown, bool) {}
func (l *sessionLog) AccountUsed(string, time.Time)        {}
func (l *sessionLog) SessionChanged(b state.Binding, cleared bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !cleared {
		l.seen = append(l.seen, b)
	}
}

func (l *sessionLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// A conversation's binding records the relay key and model of its last
// turn and when it was; a turn changes the binding in memory at once, and
// is written through (observers, persistence) when the key or model
// changed or turnSaveEvery passed since the last write, not on every turn.
func TestSessionRecordsLastTurn(t *testing.T) {
	s, clk := newSched(t, nil, acct("a", 1))
	obs := &sessionLog{}
	s.SetObserver(obs)
	turn := Turn{Model: "claude-sonnet-4-5", SessionKey: "conv", KeyName: "alice", KeyHash: "h-alice"}
	if _, err := s.PickTurn("claude", turn, nil); err != nil {
		t.Fatal(err)
	}
	start := clk.t
	check := func(when, model string, last time.Time, writes int) {
		t.Helper()
		b, ok := s.Session("conv")
		if !ok || b.KeyName != "alice" || b.KeyHash != "h-alice" || b.Model != model || !b.LastTurn.Equal(last) || b.AccountID != "a" {
			t.Fatalf("%s: binding %+v", when, b)
		}
		if n := obs.count(); n != writes {
			t.Fatalf("%s: %d writes, want %d", when, n, writes)
		}
	}
	check("first turn", turn.Model, start, 1)
	clk.add(10 * time.Second)
	if _, err := s.PickTurn("claude", turn, nil); err != nil {
		t.Fatal(err)
	}
	check("a turn 10 s later", turn.Model, clk.t, 1)
	turn.Model = "claude-opus-4-1"
	clk.add(time.Second)
	if _, err := s.PickTurn("claude", turn, nil); err != nil {
		t.Fatal(err)
	}
	check("another model", turn.Model, clk.t, 2)
	clk.add(turnSaveEvery)
	if _, err := s.PickTurn("claude", turn, nil); err != nil {
		t.Fatal(err)
	}
	check("a turn after turnSaveEvery", turn.Model, clk.t, 3)
	if got := obs.seen[2]; !got.LastTurn.Equal(clk.t) || got.Model != turn.Model {
		t.Fatalf("written through: %+v", got)
	}
	// A binding from elsewhere without its turn keeps the one known here.
	b, _ := s.Session("conv")
	s.ApplyRemoteBinding(state.Binding{Key: "conv", AccountID: "a", ExpiresAt: b.ExpiresAt}, false)
	check("a remote binding without its turn", turn.Model, clk.t, 3)
}
