package policy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
)

// recordingShared is a Shared that counts what the policy hands it.
type recordingShared struct {
	mu       sync.Mutex
	admitted int
	charged  int64
}

func (s *recordingShared) Charge(_ *Key, _ time.Time, cost, _ int64) {
	s.mu.Lock()
	s.charged += cost
	s.mu.Unlock()
}

func (s *recordingShared) Admitted(*Key, time.Time) {
	s.mu.Lock()
	s.admitted++
	s.mu.Unlock()
}

func (s *recordingShared) counts() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitted, s.charged
}

// The other relays' requests of the last minute fill the key's rpm bucket:
// this relay admits only what is left, and each admission is reported.
func TestClusterRecentCountsAgainstRPM(t *testing.T) {
	tests := []struct {
		name     string
		recent   int
		admitted int
	}{
		{"no other relay", 0, 3},
		{"two elsewhere", 2, 1},
		{"all elsewhere", 3, 0},
		{"more than the limit elsewhere", 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
			p := newPolicy(t, clk, config.KeyConfig{Name: "bob", Key: "k-bob", RPM: 3})
			sh := &recordingShared{}
			p.SetShared(sh)
			k := p.KeyByName("bob")
			p.ApplyClusterLoad(k, tt.recent, 0)
			n := 0
			var ref *Refusal
			for ; n < 10; n++ {
				if ref = p.Admit(context.Background(), k, "m"); ref != nil {
					break
				}
				p.Done(k, 0, true, 0)
			}
			if n != tt.admitted {
				t.Fatalf("admitted %d, want %d", n, tt.admitted)
			}
			if ref.Status != 429 || ref.Reason != RateLimited || ref.RetryAfter <= 0 {
				t.Fatalf("refusal %+v", ref)
			}
			if a, _ := sh.counts(); a != tt.admitted {
				t.Fatalf("Shared.Admitted called %d times, want %d", a, tt.admitted)
			}
			// Redis unreachable: zeros make the limit this relay's alone again.
			p.ApplyClusterLoad(k, 0, 0)
			if tt.recent > 0 {
				if ref := p.Admit(context.Background(), k, "m"); ref != nil {
					t.Fatalf("local again, still refused: %v", ref)
				}
			}
			if r, f := p.ClusterLoad(k); r != 0 || f != 0 {
				t.Fatalf("ClusterLoad %d %d", r, f)
			}
		})
	}
}

// A key without rpm reports no admissions (nothing to share).
func TestAdmittedOnlyForRPMKeys(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	p := newPolicy(t, clk, config.KeyConfig{Name: "c", Key: "k-c", Concurrency: 2}, config.KeyConfig{Name: "r", Key: "k-r", RPM: 10})
	sh := &recordingShared{}
	p.SetShared(sh)
	for _, name := range []string{"c", "r", "r"} {
		k := p.KeyByName(name)
		if ref := p.Admit(context.Background(), k, "m"); ref != nil {
			t.Fatal(ref)
		}
		p.Done(k, 7, true, 1)
	}
	// Neither key has a budget, so nothing is charged to the cluster.
	if a, c := sh.counts(); a != 2 || c != 0 {
		t.Fatalf("admitted %d (want 2), charged %d (want 0)", a, c)
	}
	if got := len(p.LoadKeys()); got != 2 {
		t.Fatalf("LoadKeys: %d keys", got)
	}
}

func queued(p *Policy, name string) int {
	for _, s := range p.Status() {
		if s.Name == name {
			return s.Queued
		}
	}
	return -1
}

// waitQueued polls until n requests wait in the key's queue.

// The other relays' requests in flight take concurrency slots: a request
// that finds them all taken waits; a slot this relay frees stays taken while
// other relays hold the limit; a drop in their count wakes the waiter.
func TestClusterInFlightCountsAgainstConcurrency(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	p := newPolicy(t, clk, config.KeyConfig{Name: "c", Key: "k-c", Concurrency: 2})
	k := p.KeyByName("c")
	p.ApplyClusterLoad(k, 0, 1)
	if ref := p.Admit(context.Background(), k, "m"); ref != nil {
		t.Fatal(ref)
	}
	done := make(chan *Refusal, 1)
	go func() { done <- p.Admit(context.Background(), k, "m") }()
	waitQueued(t, p, "c", 1)
	// Another relay takes the second slot too: this relay's finished request
	// frees a slot that the cluster does not have.
	p.ApplyClusterLoad(k, 0, 2)
	p.Done(k, 0, true, 0)
	if n := queued(p, "c"); n != 1 {
		t.Fatalf("waiter granted while the other relays hold the limit (%d queued)", n)
	}
	if n := p.LocalInFlight(k); n != 0 {
		t.Fatalf("local in flight %d", n)
	}
	// The other relays finish one: the waiter gets its slot.
	p.ApplyClusterLoad(k, 0, 1)
	if ref := <-done; ref != nil {
		t.Fatalf("waiter refused: %v", ref)
	}
	if n := p.LocalInFlight(k); n != 1 {
		t.Fatalf("local in flight %d after the grant", n)
	}
	p.Done(k, 0, true, 0)
	if n := p.LocalInFlight(k); n != 0 {
		t.Fatalf("local in flight %d at the end", n)
	}
}

// Without other relays a finished request still hands its slot to the
// first waiter, first come first served.
func TestDoneHandsSlotToWaitersInOrder(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	p := newPolicy(t, clk, config.KeyConfig{Name: "c", Key: "k-c", Concurrency: 1})
	k := p.KeyByName("c")
	if ref := p.Admit(context.Background(), k, "m"); ref != nil {
		t.Fatal(ref)
	}
	order := make(chan int, 2)
	for i := 1; i <= 2; i++ {
		go func() {
			if ref := p.Admit(context.Background(), k, "m"); ref == nil {
				order <- i
			}
		}()
		waitQueued(t, p, "c", i)
	}
	p.Done(k, 0, true, 0)
	if first := <-order; first != 1 {
		t.Fatalf("waiter %d served first", first)
	}
	p.Done(k, 0, true, 0)
	if second := <-order; second != 2 {
		t.Fatalf("waiter %d served second", second)
	}
	if n := p.LocalInFlight(k); n != 1 {
		t.Fatalf("in flight %d", n)
	}
}
