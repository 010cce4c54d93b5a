// Package dashboard serves the relay's web page at /dashboard: a sign-in
// form, then one page (overview, accounts, keys, usage, sessions) that reads
// and acts only through the admin API, from the browser, with the session
// cookie that signing in sets and the CSRF token the page carries. The
// assets are embedded: no CDN, no build step, no outside request.
package dashboard

import (
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
)

// Prefix is where the dashboard lives.
const Prefix = "/dashboard"

//go:embed assets
var assets embed.FS

var pages = template.Must(template.ParseFS(assets, "assets/*.html"))

// Handler serves the dashboard.
type Handler struct {
	auth   *admin.Auth
	log    *slog.Logger
	mux    *http.ServeMux
	static http.Handler
	secure func(*http.Request) bool
}

// New builds the dashboard over the admin API's authentication.
func New(auth *admin.Auth, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(assets, "assets")
	h := &Handler{auth: auth, log: log, mux: http.NewServeMux(), static: http.StripPrefix(Prefix+"/assets/", http.FileServerFS(sub)),
		secure: func(r *http.Request) bool { return r.TLS != nil }}
	h.mux.HandleFunc("GET "+Prefix, h.page)
	h.mux.HandleFunc("GET "+Prefix+"/{$}", h.page)
	h.mux.HandleFunc("POST "+Prefix+"/login", h.login)
	h.mux.HandleFunc("POST "+Prefix+"/logout", h.logout)
	h.mux.HandleFunc("GET "+Prefix+"/assets/{file}", h.asset)
	h.mux.HandleFunc(Prefix+"/", http.NotFound)
	return h
}

// SetSecureCookie decides per sign-in whether the session cookie carries
// Secure (the browser then sends it only over HTTPS); the default is when
// the request itself came over TLS. The relay also counts a trusted
// proxy's X-Forwarded-Proto and server.secure_cookie. Call it before
// serving.
func (h *Handler) SetSecureCookie(secure func(*http.Request) bool) { h.secure = secure }

// ServeHTTP answers 404 when no admin key is configured: the dashboard
// does not exist then.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.auth == nil || !h.auth.Enabled() {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin") // "no-referrer" makes browsers send Origin: null on form posts
	hd.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a form posted from another site (browsers send Origin
// on every POST); a request without Origin (curl) passes.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.PathValue("file"), ".html") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	h.static.ServeHTTP(w, r)
}

type pageData struct {
	CSRF  string
	Error string
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if csrf, ok := h.auth.Session(r); ok {
		_ = pages.ExecuteTemplate(w, "app.html", pageData{CSRF: csrf})
		return
	}
	_ = pages.ExecuteTemplate(w, "signin.html", pageData{})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	key := strings.TrimSpace(r.PostFormValue("key"))
	id, _, err := h.auth.SignIn(r, key)
	if err != nil {
		status, msg := http.StatusUnauthorized, "That is not an admin key."
		var braked *admin.BrakedError
		switch {
		case errors.Is(err, admin.ErrRelayKey):
			status, msg = http.StatusForbidden, "That is a relay key; sign in with one of admin_keys."
			h.log.Warn("dashboard sign-in refused: a relay key, not an admin key", "remote", r.RemoteAddr)
		case errors.As(err, &braked):
			secs := int((braked.Wait + time.Second - 1) / time.Second)
			status, msg = http.StatusTooManyRequests, fmt.Sprintf("Too many wrong admin keys from this address. Try again in %d s.", secs)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			h.log.Warn("dashboard sign-in refused: too many wrong admin keys", "remote", r.RemoteAddr)
		default:
			h.log.Warn("dashboard sign-in refused: wrong admin key", "remote", r.RemoteAddr)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = pages.ExecuteTemplate(w, "signin.html", pageData{Error: msg})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: admin.Cookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: h.secure(r), MaxAge: int(admin.SessionTTL.Seconds()),
	})
	h.log.Info("dashboard sign-in", "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	csrf, ok := h.auth.Session(r)
	if ok && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(csrf)) != 1 {
		http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	h.auth.SignOut(r)
	http.SetCookie(w, &http.Cookie{Name: admin.Cookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secure(r), MaxAge: -1})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}
