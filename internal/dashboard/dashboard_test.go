package dashboard

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/policy"
)

const key = "dashboard-unit-admin-key-0123"

func post(t *testing.T, h http.Handler, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestSignInSetsAStrictHttpOnlyCookie(t *testing.T) {
	auth := admin.NewAuth([]string{key}, nil)
	h := New(auth, nil)
	w := post(t, h, "/dashboard/login", url.Values{"key": {"wrong-key-0123456789"}})
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "not an admin key") {
		t.Fatalf("wrong key: %d %v", w.Code, w.Result().Cookies())
	}
	w = post(t, h, "/dashboard/login", url.Values{"key": {key}}, "Origin", "http://example.com")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	c := w.Result().Cookies()[0]
	if c.Name != admin.Cookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" || strings.Contains(c.Value, key) {
		t.Fatalf("cookie %+v", c)
	}
	// The page carries the CSRF token, never the key.
	req := httptest.NewRequest("GET", "/dashboard", nil)
	req.AddCookie(c)
	pw := httptest.NewRecorder()
	h.ServeHTTP(pw, req)
	csrf, ok := auth.Session(req)
	body, _ := io.ReadAll(pw.Body)
	if !ok || !strings.Contains(string(body), csrf) || strings.Contains(string(body), key) || !strings.Contains(pw.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("page: ok %v, csrf in page %v", ok, strings.Contains(string(body), csrf))
	}
	// Signing out needs the token.
	lw := post(t, h, "/dashboard/logout", url.Values{}, "Cookie", c.Name+"="+c.Value)
	if lw.Code != http.StatusForbidden {
		t.Fatalf("logout without token: %d", lw.Code)
	}
	lw = post(t, h, "/dashboard/logout", url.Values{"csrf": {csrf}}, "Cookie", c.Name+"="+c.Value)
	if _, still := auth.Session(req); lw.Code != http.StatusSeeOther || still {
		t.Fatalf("logout: %d, session still valid %v", lw.Code, still)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	h := New(admin.NewAuth([]string{key}, nil), nil)
	req := httptest.NewRequest("POST", "http://relay.local/dashboard/login", strings.NewReader("key="+key))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Fatalf("cross-origin sign-in: %d", w.Code)
	}
}

func TestOffWithoutAdminKeys(t *testing.T) {
	h := New(admin.NewAuth(nil, []string{"relay-key-0123456789"}), nil)
	for _, p := range []string{"/dashboard", "/dashboard/assets/app.js"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != http.StatusNotFound {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
}

func TestAssets(t *testing.T) {
	h := New(admin.NewAuth([]string{key}, nil), nil)
	for path, want := range map[string]int{"/dashboard/assets/app.js": 200, "/dashboard/assets/app.css": 200, "/dashboard/assets/app.html": 404, "/dashboard/nope": 404} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

// Wrong admin keys at the sign-in form are braked per client address: past
// the limit a wrong key is refused with 429 and the page says when to try
// again, while the right key still signs in (the people behind one address
// are not locked out by one guesser); a relay key is 403 and not a guess;
// another address is not held up, and after the window a wrong key is a
// plain 401 again.
func TestSignInBrake(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	auth := admin.NewAuth([]string{key}, []string{"relay-key-0123456789"})
	auth.UseBrake(policy.NewBrake(5, clock), nil) // the TCP peer: httptest's 192.0.2.1
	h := New(auth, nil)
	for i := range 5 {
		if w := post(t, h, "/dashboard/login", url.Values{"key": {"guess-" + strconv.Itoa(i) + "-0123456789"}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d", i, w.Code)
		}
	}
	w := post(t, h, "/dashboard/login", url.Values{"key": {"guess-5-0123456789"}})
	if w.Code != http.StatusTooManyRequests || len(w.Result().Cookies()) != 0 || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), "Too many wrong admin keys from this address. Try again in") {
		t.Fatalf("a wrong key while braked: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := post(t, h, "/dashboard/login", url.Values{"key": {"relay-key-0123456789"}}); w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "relay key") {
		t.Fatalf("a relay key: %d %s", w.Code, w.Body)
	}
	if w := post(t, h, "/dashboard/login", url.Values{"key": {key}}); w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 {
		t.Fatalf("the right key while braked: %d %s", w.Code, w.Body)
	}
	req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "198.51.100.4:5000"
	other := httptest.NewRecorder()
	h.ServeHTTP(other, req)
	if other.Code != http.StatusSeeOther {
		t.Fatalf("another address: %d", other.Code)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if w := post(t, h, "/dashboard/login", url.Values{"key": {"guess-6-0123456789"}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("a wrong key after the window: %d", w.Code)
	}
}

// The sign-in cookie carries Secure when the request came over TLS, and
// when the relay's SetSecureCookie says so (a trusted proxy's
// X-Forwarded-Proto, server.secure_cookie); signing out clears it the same
// way.
func TestSecureCookie(t *testing.T) {
	signIn := func(h *Handler, tlsConn bool) *http.Cookie {
		t.Helper()
		req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tlsConn {
			req.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 {
			t.Fatalf("sign-in: %d", w.Code)
		}
		return w.Result().Cookies()[0]
	}
	h := New(admin.NewAuth([]string{key}, nil), nil)
	if c := signIn(h, false); c.Secure {
		t.Error("plain HTTP: Secure set by default")
	}
	if c := signIn(h, true); !c.Secure {
		t.Error("TLS: no Secure")
	}
	h.SetSecureCookie(func(r *http.Request) bool { return r.Header.Get("X-Forwarded-Proto") == "https" })
	if c := signIn(h, false); c.Secure {
		t.Error("the relay's rule said no, yet Secure")
	}
	h.SetSecureCookie(func(*http.Request) bool { return true })
	if c := signIn(h, false); !c.Secure {
		t.Error("the relay's rule said yes (secure_cookie), no Secure")
	}
	w := post(t, h, "/dashboard/logout", url.Values{}, "Cookie", admin.Cookie+"=an-ended-session")
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 || !cs[0].Secure {
		t.Errorf("sign-out cookie %+v", cs)
	}
}
