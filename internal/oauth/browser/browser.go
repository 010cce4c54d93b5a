// Package browser opens URLs in the user's browser. It is the only package
// of ccrelay that imports github.com/pkg/browser, so the launcher's
// process-wide output settings are decided in one place.
package browser

import (
	"io"

	pkgbrowser "github.com/pkg/browser"
)

// init silences the launcher once, before any Open can run: xdg-open and
// friends print warnings ("Gtk-Message: ...") that would interleave with
// the login instructions on the terminal. pkg/browser only exposes these as
// package variables; no other package of ccrelay imports it, so nothing
// else observes the change.
func init() {
	pkgbrowser.Stdout = io.Discard
	pkgbrowser.Stderr = io.Discard
}

// Open asks the operating system to open url in the default browser. It
// returns once the launcher (xdg-open, open, rundll32, ...) has exited, and
// an error when no launcher is available, e.g. on a headless server.
func Open(url string) error {
	return pkgbrowser.OpenURL(url)
}
