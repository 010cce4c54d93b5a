//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package config

import "os"

// lockFile is a no-op where flock is not available: edits stay atomic, but
// two at once are not serialized.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
