package reload

import (
	"path/filepath"
	"slices"
	"sync/atomic"
)

// dirWatch watches one directory for changes to some of its entries: C
// receives (coalesced) when one of the names was written and closed,
// created, renamed or removed; Errs receives what goes wrong meanwhile.
// Changes to other entries never reach C, and on Linux they do not even
// wake the watcher (watch_linux.go).
type dirWatch struct {
	C    chan struct{}
	Errs chan error
	// events counts the events the system delivered, wanted or not (tests).
	events atomic.Int64
	names  []string
	close  func() error
}

func newDirWatch(names []string, close func() error) *dirWatch {
	return &dirWatch{C: make(chan struct{}, 1), Errs: make(chan error, 1), names: names, close: close}
}

// Close ends the watch.
func (w *dirWatch) Close() error { return w.close() }

// seen notes one delivered event about the entry name.
func (w *dirWatch) seen(name string) {
	w.events.Add(1)
	if slices.Contains(w.names, filepath.Base(name)) {
		w.changed()
	}
}

// changed tells C, unless it already holds an untaken notice.
func (w *dirWatch) changed() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

func (w *dirWatch) fail(err error) {
	select {
	case w.Errs <- err:
	default:
	}
}
