package browser

import (
	"io"
	"testing"

	pkgbrowser "github.com/pkg/browser"
)

// TestLauncherSilenced checks the launcher cannot write over the login
// instructions. Open itself is not called: it would start a real browser.
func TestLauncherSilenced(t *testing.T) {
	if pkgbrowser.Stdout != io.Discard || pkgbrowser.Stderr != io.Discard {
		t.Error("pkg/browser output is not discarded")
	}
}
