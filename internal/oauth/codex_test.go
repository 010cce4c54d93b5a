package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/testutil"
)

// TestCodexProviderIsCodexCLIs pins the ChatGPT login to what Codex CLI
// sends (codex-rs login/src/server.rs): the redirect ports its client id
// allows, the localhost redirect, scopes and extra parameters.
func TestCodexProviderIsCodexCLIs(t *testing.T) {
	p := CodexProvider()
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.LoopbackPorts, []int{1455, 1457}) || p.LoopbackHost != "localhost" || p.LoopbackPath != "/auth/callback" {
		t.Errorf("redirect: ports %v host %q path %q", p.LoopbackPorts, p.LoopbackHost, p.LoopbackPath)
	}
	if p.AuthURL != "https://auth.openai.com/oauth/authorize" || p.TokenURL != "https://auth.openai.com/oauth/token" ||
		p.ClientID != "app_EMoamEEZ73f0CkXaXp7hrann" || p.ClientSecret != "" || p.ManualRedirectURL != "" || p.JSONExchange {
		t.Errorf("endpoints or client: %+v", p)
	}
	if got := strings.Join(p.Scopes, " "); got != "openid profile email offline_access api.connectors.read api.connectors.invoke" {
		t.Errorf("scopes %q", got)
	}
	for k, v := range map[string]string{"id_token_add_organizations": "true", "codex_cli_simplified_flow": "true", "originator": "codex_cli_rs"} {
		if p.ExtraAuthParams[k] != v {
			t.Errorf("%s = %q, want %q", k, p.ExtraAuthParams[k], v)
		}
	}
	if p.IDTokenAccount == nil {
		t.Error("no IDTokenAccount: the ChatGPT account would not be read from the id token")
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// codexOn is the codex provider with its two fixed ports replaced by ports
// the test controls (1455 may be in use on a shared machine).
func codexOn(first, second int) Provider {
	p := CodexProvider()
	p.LoopbackPorts = []int{first, second}
	return p
}

func redirectOf(t *testing.T, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("redirect_uri")
}

// TestCodexLoopbackPorts: the callback listens on the first allowed port,
// on the second when the first is taken, and the login fails naming both
// when neither is free. The browser (the test) follows the authorize URL's
// redirect to the callback.
func TestCodexLoopbackPorts(t *testing.T) {
	for _, firstTaken := range []bool{false, true} {
		t.Run(fmt.Sprintf("first port taken=%v", firstTaken), func(t *testing.T) {
			first, second := freePort(t), freePort(t)
			for second == first {
				second = freePort(t)
			}
			if firstTaken {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			as := newFakeAS(t, codexOn(first, second))
			open, visits := fakeBrowser(t)
			errOut := &syncBuffer{}
			f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), OpenBrowser: open, ErrOut: errOut}
			res := waitRun(t, startRun(context.Background(), f))
			if res.err != nil {
				t.Fatalf("Run: %v\noutput:\n%s", res.err, errOut.String())
			}
			checkToken(t, as.provider, res.tok)
			if v := waitVisit(t, visits); v.status != http.StatusOK {
				t.Errorf("browser page = %d %q", v.status, v.body)
			}
			port := first
			if firstTaken {
				port = second
			}
			want := fmt.Sprintf("http://localhost:%d/auth/callback", port)
			if _, _, redirect := as.calls(); redirect != want {
				t.Errorf("exchange redirect_uri = %q, want %q", redirect, want)
			}
		})
	}
	t.Run("both taken", func(t *testing.T) {
		var ports []int
		for range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		}
		as := newFakeAS(t, codexOn(ports[0], ports[1]))
		pr, pw := io.Pipe()
		defer pw.Close()
		f := &Flow{Provider: as.provider, In: pr}
		res := waitRun(t, startRun(context.Background(), f))
		want := fmt.Sprintf("port %d or %d", ports[0], ports[1])
		if res.err == nil || !strings.Contains(res.err.Error(), want) {
			t.Fatalf("Run error = %v, want one naming %q", res.err, want)
		}
	})
}

// TestCodexPaste: on a headless machine the user signs in elsewhere, the
// browser ends on the unreachable localhost address, and the user pastes
// that address. A bare code (OpenAI shows none) is refused with a hint, a
// pasted address with a foreign state ends the login.
func TestCodexPaste(t *testing.T) {
	start := func(t *testing.T) (*fakeAS, *io.PipeWriter, *syncBuffer, string, <-chan runResult) {
		as := newFakeAS(t, codexOn(freePort(t), freePort(t)))
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		errOut := &syncBuffer{}
		f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), NoBrowser: true, In: pr, ErrOut: errOut,
			OpenBrowser: func(string) error { t.Error("browser opened despite NoBrowser"); return nil }}
		done := startRun(context.Background(), f)
		printed := errOut.WaitFor(t, "Paste the address")
		loopbackURL, manualURL := printedURLs(t, printed)
		if loopbackURL == "" || manualURL != "" {
			t.Fatalf("printed URLs: loopback %q manual %q\n%s", loopbackURL, manualURL, printed)
		}
		if !strings.Contains(printed, redirectOf(t, loopbackURL)+"?code=...") || !strings.Contains(printed, "SSH") {
			t.Errorf("no headless instructions naming the redirect:\n%s", printed)
		}
		return as, pw, errOut, loopbackURL, done
	}
	t.Run("address of the page the browser ended on", func(t *testing.T) {
		as, pw, errOut, loopbackURL, done := start(t)
		loc := userVisit(t, loopbackURL)
		fmt.Fprintln(pw, loc.Query().Get("code")) // a bare code: no state to check
		errOut.WaitFor(t, "Paste the whole address")
		fmt.Fprintln(pw, loc.String())
		res := waitRun(t, done)
		if res.err != nil {
			t.Fatalf("Run: %v\noutput:\n%s", res.err, errOut.String())
		}
		checkToken(t, as.provider, res.tok)
		if _, _, redirect := as.calls(); redirect != redirectOf(t, loopbackURL) {
			t.Errorf("exchange redirect_uri = %q, want %q", redirect, redirectOf(t, loopbackURL))
		}
	})
	t.Run("wrong state", func(t *testing.T) {
		as, pw, _, loopbackURL, done := start(t)
		fmt.Fprintln(pw, redirectOf(t, loopbackURL)+"?code=stolen&state=forged")
		res := waitRun(t, done)
		if !errors.Is(res.err, ErrStateMismatch) {
			t.Fatalf("Run error = %v, want ErrStateMismatch", res.err)
		}
		if n, _, _ := as.calls(); n != 0 {
			t.Errorf("token endpoint called %d times after a state mismatch", n)
		}
	})
	t.Run("wrong state on the callback is ignored", func(t *testing.T) {
		as, _, errOut, loopbackURL, done := start(t)
		resp, err := testutil.LoopbackClient(t, false).Get(redirectOf(t, loopbackURL) + "?code=stolen&state=forged")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged callback answered %d", resp.StatusCode)
		}
		errOut.WaitFor(t, "Ignored a callback")
		open, visits := fakeBrowser(t)
		if err := open(loopbackURL); err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, done)
		if res.err != nil {
			t.Fatalf("Run: %v\noutput:\n%s", res.err, errOut.String())
		}
		checkToken(t, as.provider, res.tok)
		if v := waitVisit(t, visits); v.status != http.StatusOK {
			t.Errorf("browser page = %d %q", v.status, v.body)
		}
	})
}
