//go:build !linux

package reload

import (
	"github.com/fsnotify/fsnotify"
)

// watchDir watches dir for changes to the entries called names, through
// fsnotify (which also delivers, and here drops, writes to other entries).
func watchDir(dir string, names ...string) (*dirWatch, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, err
	}
	w := newDirWatch(names, fw.Close)
	go func() {
		for {
			select {
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
					w.seen(ev.Name)
				} else {
					w.events.Add(1)
				}
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				w.fail(err)
			}
		}
	}()
	return w, nil
}
