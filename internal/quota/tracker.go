package quota

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Persister stores the latest snapshot of an account. Calls come from one
// background goroutine, at most once a second per account.
type Persister interface {
	SaveQuota(ctx context.Context, accountID string, s Snapshot) error
}

// Observer learns of every local change (cluster sync). It is called with the
// tracker's mutex held and must not block.
type Observer interface {
	QuotaChanged(accountID string, s Snapshot)
}

// Headroom is an account's quota as the scheduler weighs it.
type Headroom struct {
	// Known: some live window was reported.
	Known bool
	// Used is the busiest live window's utilization (0..1, may pass 1).
	Used float64
	// Load is the busiest live window's utilization weighted by the share of
	// the window still to run before its reset: 80% used with a reset in a
	// minute weighs little, 80% used with the whole window ahead weighs 0.8.
	Load float64
	// OverageInUse: the plan's window is spent and paid extra usage is being
	// drawn (or would be); Until is when the spent window resets.
	OverageInUse bool
	Until        time.Time
}

// Tracker keeps each account's latest snapshot. It is safe for concurrent use;
// reads are a map lookup under one mutex.
type Tracker struct {
	now func() time.Time
	log *slog.Logger

	mu        sync.Mutex
	snaps     map[string]*Snapshot
	observers []Observer
	dirty     map[string]bool
	closed    bool

	persist Persister
	wake    chan struct{}
	done    chan struct{}
}

// saveInterval bounds how often one account's snapshot is written: every
// answer updates it, the database needs only the latest now and then.
const saveInterval = time.Second

// NewTracker builds a tracker; persist may be nil (memory only). Call Close.
func NewTracker(persist Persister, log *slog.Logger) *Tracker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{now: time.Now, log: log, snaps: map[string]*Snapshot{}, dirty: map[string]bool{},
		persist: persist, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go t.writer()
	return t
}

// SetClock replaces time.Now (tests).
func (t *Tracker) SetClock(now func() time.Time) { t.mu.Lock(); t.now = now; t.mu.Unlock() }

// AddObserver registers one more observer of the numbers this relay sees
// (the cluster, alerts). Observers are called under the tracker's lock and
// must not block.
func (t *Tracker) AddObserver(o Observer) {
	t.mu.Lock()
	t.observers = append(t.observers, o)
	t.mu.Unlock()
}

// ObserveHeaders records the quota headers of one upstream answer (any
// status). An answer without any costs a scan of its header keys.
func (t *Tracker) ObserveHeaders(accountID string, h http.Header) {
	if accountID == "" || !HasHeaders(h) {
		return
	}
	s, ok := ParseHeaders(h, t.clock())
	if ok {
		t.Apply(accountID, s)
	}
}

// ObserveEvent records an in-stream event that carries quota (Codex's
// codex.rate_limits); other events are ignored at the cost of a comparison.
func (t *Tracker) ObserveEvent(accountID, name string, data []byte) {
	if name != CodexEventName || accountID == "" {
		return
	}
	if s, ok := ParseCodexEvent(data, t.clock()); ok {
		t.Apply(accountID, s)
	}
}

func (t *Tracker) clock() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.now()
}

// Apply merges a snapshot seen by this relay and queues it for saving and
// the cluster.
func (t *Tracker) Apply(accountID string, s Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mergeLocked(accountID, s) {
		return
	}
	t.dirty[accountID] = true
	if !t.closed {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	for _, o := range t.observers {
		o.QuotaChanged(accountID, *t.snaps[accountID])
	}
}

// ApplyRemote merges a snapshot another relay saw (not re-published, not
// saved: the relay that saw it saved it, and Redis holds it).
func (t *Tracker) ApplyRemote(accountID string, s Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mergeLocked(accountID, s)
}

// Restore loads persisted snapshots (before serving).
func (t *Tracker) Restore(snaps map[string]Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, s := range snaps {
		t.mergeLocked(id, s)
	}
}

// mergeLocked replaces an account's snapshot with a newer one, keeping the
// old windows the new one does not mention while they last (a usage probe
// names windows the headers do not, and the reverse).
func (t *Tracker) mergeLocked(id string, s Snapshot) bool {
	old := t.snaps[id]
	if old != nil && s.SeenAt.Before(old.SeenAt) {
		return false
	}
	n := s
	n.Windows = append([]Window(nil), s.Windows...)
	if old != nil {
		for _, w := range old.Windows {
			if _, ok := n.Window(w.Name); !ok && w.ResetsAt.After(s.SeenAt) {
				n.Windows = append(n.Windows, w)
			}
		}
		sortWindows(n.Windows)
	}
	t.snaps[id] = &n
	return true
}

// Snapshot returns an account's latest snapshot.
func (t *Tracker) Snapshot(accountID string) (Snapshot, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.snaps[accountID]
	if s == nil {
		return Snapshot{}, false
	}
	c := *s
	c.Windows = append([]Window(nil), s.Windows...)
	return c, true
}

// All returns a copy of every account's snapshot.
func (t *Tracker) All() map[string]Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Snapshot, len(t.snaps))
	for id, s := range t.snaps {
		c := *s
		c.Windows = append([]Window(nil), s.Windows...)
		out[id] = c
	}
	return out
}

// Headroom weighs an account's latest snapshot at now. O(windows), no allocation.
func (t *Tracker) Headroom(accountID string, now time.Time) Headroom {
	t.mu.Lock()
	s := t.snaps[accountID]
	var h Headroom
	if s != nil {
		h = s.Headroom(now)
	}
	t.mu.Unlock()
	return h
}

// Headroom weighs s at now (see Tracker.Headroom).
func (s *Snapshot) Headroom(now time.Time) Headroom {
	var h Headroom
	spent := s.Status == StatusRejected
	var until time.Time
	for i := range s.Windows {
		w := &s.Windows[i]
		if !w.Live(s.SeenAt, now) {
			continue
		}
		h.Known = true
		h.Used = max(h.Used, w.Utilization)
		ahead := 1.0
		if length := time.Duration(w.Minutes) * time.Minute; length > 0 && !w.ResetsAt.IsZero() {
			ahead = clamp01(float64(w.ResetsAt.Sub(now)) / float64(length))
		}
		h.Load = max(h.Load, w.Utilization*ahead)
		if w.Utilization >= 1 || w.Status == StatusRejected {
			spent = true
			if w.ResetsAt.After(until) {
				until = w.ResetsAt
			}
		}
	}
	if !spent {
		return h
	}
	if until.IsZero() {
		until = s.ResetsAt
	}
	if !until.After(now) {
		// The spent window's reset is unknown (or past): hold for a short
		// while rather than for ever; the next answer says more.
		until = s.SeenAt.Add(5 * time.Minute)
	}
	if !until.After(now) {
		return h
	}
	switch s.Source {
	case SourceCodex:
		h.OverageInUse = s.HasCredits
	default:
		h.OverageInUse = s.OverageStatus == StatusAllowed
	}
	h.Until = until
	return h
}

// Live reports whether a window's numbers still hold at now: before its reset,
// or, without a reset, within one window length of when they were seen.
func (w *Window) Live(seen, now time.Time) bool {
	if !w.ResetsAt.IsZero() {
		return w.ResetsAt.After(now)
	}
	if w.Minutes > 0 {
		return now.Sub(seen) < time.Duration(w.Minutes)*time.Minute
	}
	return now.Sub(seen) < 5*time.Hour
}

// Close writes what is pending and stops the writer.
func (t *Tracker) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.wake)
	t.mu.Unlock()
	<-t.done
}

func (t *Tracker) writer() {
	defer close(t.done)
	for range t.wake {
		t.flush()
		if t.persist != nil {
			time.Sleep(saveInterval) // coalesce: one write per account per interval
		}
	}
	t.flush()
}

func (t *Tracker) flush() {
	t.mu.Lock()
	if len(t.dirty) == 0 {
		t.mu.Unlock()
		return
	}
	batch := make(map[string]Snapshot, len(t.dirty))
	for id := range t.dirty {
		s := *t.snaps[id]
		s.Windows = append([]Window(nil), s.Windows...)
		batch[id] = s
	}
	clear(t.dirty)
	t.mu.Unlock()
	if t.persist == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id, s := range batch {
		if err := t.persist.SaveQuota(ctx, id, s); err != nil {
			t.log.Warn("saving quota numbers failed; they stay in memory", "account", id, "err", err)
		}
	}
}
