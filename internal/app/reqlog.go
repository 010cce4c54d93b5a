package app

import (
	"context"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
)

// Compile-time checks of the request log's sources.
var (
	_ admin.RequestLog     = (*store.DB)(nil)
	_ admin.CaptureControl = (*captureControl)(nil)
)

// CapturePollInterval is how often a running relay reads the captures from
// its database: `ccrelay capture on` without --server writes them there,
// and a capture that ran out stops being applied.
const CapturePollInterval = 2 * time.Second

// captureControl keeps the body captures in the database (so they survive
// a restart and the local CLI can set them) and gives the relay the set in
// force after every change.
type captureControl struct {
	db    *store.DB
	relay *relay.Relay
	now   func() time.Time
	// mu orders refreshes, so an older read never replaces a newer one.
	mu sync.Mutex
}

// Captures lists the captures whose bodies are kept.
func (cc *captureControl) Captures(ctx context.Context) ([]reqlog.Capture, error) {
	return cc.db.Captures(ctx, cc.now())
}

// StartCapture stores c and applies it at once.
func (cc *captureControl) StartCapture(ctx context.Context, c reqlog.Capture) (reqlog.Capture, error) {
	c, err := cc.db.AddCapture(ctx, c)
	if err != nil {
		return c, err
	}
	return c, cc.refresh(ctx)
}

// StopCapture ends capture id and applies that at once.
func (cc *captureControl) StopCapture(ctx context.Context, id int64) (bool, error) {
	ok, err := cc.db.StopCapture(ctx, id, cc.now())
	if err != nil || !ok {
		return ok, err
	}
	return true, cc.refresh(ctx)
}

// refresh gives the relay the captures in force now.
func (cc *captureControl) refresh(ctx context.Context) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	now := cc.now()
	list, err := cc.db.Captures(ctx, now)
	if err != nil {
		return err
	}
	cc.relay.SetCaptures(reqlog.NewSet(list, now))
	return nil
}

// wireRequestLog builds the capture control; the request log itself rides
// the usage recorder.
func (a *App) wireRequestLog() {
	a.captures = &captureControl{db: a.DB, relay: a.Relay, now: time.Now}
}

// runCaptures applies the captures in the database until ctx ends.
func (a *App) runCaptures(ctx context.Context) {
	warned := false
	t := time.NewTicker(CapturePollInterval)
	defer t.Stop()
	for {
		if err := a.captures.refresh(ctx); err != nil && !warned && ctx.Err() == nil {
			a.Log.Warn("could not read the body captures from the database; the last ones read stay in force", "err", err)
			warned = true
		} else if err == nil {
			warned = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
