//go:build linux

package reload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// inotifyMask is what the config directory's watch asks the kernel for.
// It leaves out IN_MODIFY on purpose: a database kept next to the config
// file is written many times a second, and each write would wake the
// watcher for nothing (a general-purpose watcher asks for every write). An
// editor that saves in place closes the file (IN_CLOSE_WRITE); the atomic
// config writer and a Kubernetes ConfigMap rename (IN_MOVED_TO).
const inotifyMask = unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE

// watchDir watches dir for changes to the entries called names.
func watchDir(dir string, names ...string) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, inotifyMask); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	// A non-blocking descriptor goes to the runtime's poller: Read parks
	// the goroutine, and Close wakes it.
	f := os.NewFile(uintptr(fd), "inotify")
	w := newDirWatch(names, f.Close)
	go w.readInotify(f)
	return w, nil
}

// readInotify reads events until the watch is closed. Each event is a
// fixed header (watch, mask, cookie, name length) and a NUL-padded name.
func (w *dirWatch) readInotify(f *os.File) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.fail(err)
			}
			return
		}
		for b := buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			mask := binary.NativeEndian.Uint32(b[4:8])
			size := int(binary.NativeEndian.Uint32(b[12:16]))
			if len(b) < unix.SizeofInotifyEvent+size {
				w.fail(fmt.Errorf("inotify: short event (%d of %d bytes)", len(b), unix.SizeofInotifyEvent+size))
				break
			}
			name := b[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+size]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			b = b[unix.SizeofInotifyEvent+size:]
			if mask&unix.IN_Q_OVERFLOW != 0 {
				// Events were lost: the file may have changed.
				w.events.Add(1)
				w.changed()
				continue
			}
			w.seen(string(name))
		}
	}
}
