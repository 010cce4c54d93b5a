package oauth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// ErrStateMismatch is returned when a pasted value carries a state other
// than the one this login sent: the response belongs to another
// authorization request (possibly a forged one), so the login stops. A
// callback to the loopback port with a wrong state is answered with an error
// page and ignored instead: any local process can reach that port, and it
// must not be able to end the login.
var ErrStateMismatch = errors.New("oauth state mismatch: the response does not belong to this login attempt")

// AuthorizationError is the error the provider sent back to the redirect URI
// instead of a code, e.g. "access_denied" when the user clicked Deny.
type AuthorizationError struct {
	// Code is the RFC 6749 "error" parameter.
	Code string
	// Description is the optional "error_description" parameter.
	Description string
}

// Error describes the refusal with the provider's code and description,
// stripped of control characters (see printable).
func (e *AuthorizationError) Error() string {
	msg := fmt.Sprintf("authorization failed: provider returned %q", printable(e.Code))
	if d := printable(e.Description); d != "" {
		msg += ": " + d
	}
	if e.Code == "access_denied" {
		msg += " (access was denied in the browser)"
	}
	return msg
}

// Token is what a successful login yields.
type Token struct {
	// AccessToken is the short-lived bearer token.
	AccessToken string
	// RefreshToken is the long-lived token ccrelay stores in its config.
	RefreshToken string
	// ExpiresAt is when AccessToken expires; zero when the provider did not
	// say.
	ExpiresAt time.Time
	// Email is the signed-in account when the provider told us (Claude's
	// account.email_address, the id_token's email claim); empty otherwise.
	Email string
	// Account is the provider-side account id read from the id_token by
	// Provider.IDTokenAccount (OpenAI's chatgpt_account_id); empty otherwise.
	Account string
}

// String describes the token without revealing it, so an accidental %v in a
// log line leaks nothing.
func (t *Token) String() string {
	if t == nil {
		return "<nil>"
	}
	return fmt.Sprintf("oauth.Token{Email: %q, Account: %q, ExpiresAt: %s, AccessToken: [redacted], RefreshToken: [redacted]}",
		t.Email, t.Account, t.ExpiresAt.Format(time.RFC3339))
}

// Flow is one interactive login. The zero values of its optional fields are
// usable: no browser is opened, nothing is read and nothing is printed.
type Flow struct {
	// Provider is the authorization server to sign in to.
	Provider Provider
	// HTTPClient sends the code exchange; nil means http.DefaultClient.
	HTTPClient *http.Client
	// OpenBrowser opens a URL in the user's browser; nil means never open one.
	// It runs on its own goroutine, so a launcher that blocks (a text browser
	// in the same terminal) delays nothing; Run does not wait for it, and an
	// error it returns after Run is over is dropped.
	OpenBrowser func(url string) error
	// NoBrowser suppresses OpenBrowser (`--no-browser`); the URLs are printed
	// either way.
	NoBrowser bool
	// In supplies pasted input, one value per line: "code#state", a bare code,
	// or the full URL the browser was redirected to. Nil disables pasting.
	//
	// In is read on a goroutine that Run cannot interrupt. When the callback
	// wins, or ctx is cancelled, that goroutine stays blocked in Read until In
	// yields a line or EOF, and then discards it; with a terminal that is the
	// next line the user types. This is harmless for a CLI that exits after
	// the login, and a pipe closed by the caller ends it at once. Because of
	// the buffering, In must not be read by anyone else after Run.
	In io.Reader
	// ErrOut receives the instructions and progress; nil discards them. Only
	// the goroutine that called Run writes to it, never after Run returns.
	ErrOut io.Writer
}

// result is what the callback or the paste path delivers to Run.
type result struct {
	code        string
	redirectURI string // the redirect_uri the code was issued for
	via         string // for the progress message
	err         error  // fatal: the login stops with it
	notice      string // not fatal: tell the user and keep waiting
	inputClosed bool   // the paste path hit EOF or a read error
	// reply, for the callback, receives the login's outcome so the browser
	// tab can show it. Buffered (1).
	reply chan error
}

func (r result) respond(err error) {
	if r.reply != nil {
		r.reply <- err
	}
}

// session is the state one Run shares with its callback handler and its
// paste reader.
type session struct {
	provider         Provider
	state, verifier  string
	loopbackRedirect string // empty when no listener could be opened
	results          chan result
	done             chan struct{} // closed when Run returns
}

// Run performs the login: it prints the authorization URLs, opens the
// browser, then waits for whichever comes first of the loopback callback and
// a pasted value, exchanges that code for tokens and returns them. A
// provider error, a pasted state mismatch or a failed exchange ends the
// login with an error (a callback with the wrong state is ignored);
// cancelling ctx, or its deadline, ends it with ctx.Err().
//
// State is checked on every path, with one deliberate exception: a bare
// pasted code (no "#state") is accepted for the manual redirect, because the
// provider's code page shows only the code (Google) and the user copied it
// from a page only they could reach. It is still safe: the code was issued
// for this login's PKCE challenge or the exchange fails, so a code from
// someone else's authorization request cannot be slipped in.
func (f *Flow) Run(ctx context.Context) (*Token, error) {
	p := f.Provider
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errOut := f.ErrOut
	if errOut == nil {
		errOut = io.Discard
	}

	s := &session{
		provider: p,
		state:    newState(),
		verifier: oauth2.GenerateVerifier(),
		results:  make(chan result),
		done:     make(chan struct{}),
	}

	stop, listenErr := s.listen(ctx)
	if listenErr != nil && (f.In == nil || p.ManualRedirectURL == "") {
		return nil, listenErr
	}
	defer func() {
		close(s.done)
		if stop != nil {
			stop()
		}
	}()

	loopbackURL, manualURL := "", ""
	if s.loopbackRedirect != "" {
		loopbackURL = s.authCodeURL(s.loopbackRedirect)
	}
	if f.In != nil && p.ManualRedirectURL != "" {
		manualURL = s.authCodeURL(p.ManualRedirectURL)
	}
	openURL := loopbackURL
	if openURL == "" {
		openURL = manualURL
	}

	openErr := make(chan error, 1)
	willOpen := f.OpenBrowser != nil && !f.NoBrowser
	f.printInstructions(errOut, listenErr, s.loopbackRedirect, loopbackURL, manualURL, willOpen)
	if willOpen {
		open := f.OpenBrowser
		go func() {
			if err := open(openURL); err != nil {
				openErr <- err
			}
		}()
	}
	pasting := f.In != nil
	if pasting {
		go s.readPaste(f.In)
	}
	return f.await(ctx, s, errOut, openErr, pasting)
}

// await prompts for a pasted code (when pasting) and waits for the first
// authorization code from the browser's redirect or the paste, then
// exchanges it; a browser that could not be opened and closed input are
// reported as they come.
func (f *Flow) await(ctx context.Context, s *session, errOut io.Writer, openErr <-chan error, pasting bool) (*Token, error) {
	p := f.Provider
	prompt := func() {
		switch {
		case !pasting:
		case p.ManualRedirectURL == "":
			fmt.Fprint(errOut, "Paste the address here, or wait for the browser: ")
		default:
			fmt.Fprint(errOut, "Paste the code here, or wait for the browser: ")
		}
	}
	prompt()

	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(errOut)
			return nil, ctx.Err()
		case err := <-openErr:
			fmt.Fprintf(errOut, "\ncould not open a browser: %v\nOpen the URL above yourself.\n", err)
			prompt()
		case r := <-s.results:
			switch {
			case r.inputClosed:
				pasting = false
				if s.loopbackRedirect == "" {
					if r.err != nil {
						return nil, fmt.Errorf("read pasted code: %w", r.err)
					}
					return nil, errors.New("input closed before a code was pasted")
				}
				if r.err != nil {
					fmt.Fprintf(errOut, "\nstopped reading pasted input: %v\nWaiting for the browser...\n", r.err)
				}
				continue
			case r.err != nil:
				r.respond(r.err)
				return nil, r.err
			case r.notice != "":
				fmt.Fprintf(errOut, "%s\n", r.notice)
				prompt()
				continue
			}
			fmt.Fprintf(errOut, "\nReceived the authorization code (%s); exchanging it for tokens...\n", r.via)
			tok, err := s.exchange(ctx, f.httpClient(), r.code, r.redirectURI)
			if err != nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			r.respond(err)
			if err != nil {
				return nil, err
			}
			return tok, nil
		}
	}
}

func (f *Flow) httpClient() *http.Client {
	if f.HTTPClient != nil {
		return f.HTTPClient
	}
	return http.DefaultClient
}

func (f *Flow) printInstructions(w io.Writer, listenErr error, redirect, loopbackURL, manualURL string, willOpen bool) {
	fmt.Fprintf(w, "Signing in to %s.\n\n", f.Provider.Name)
	if listenErr != nil {
		fmt.Fprintf(w, "No local callback (%v); use the URL below.\n\n", listenErr)
	}
	if loopbackURL != "" {
		if willOpen {
			fmt.Fprintf(w, "Opening this URL in your browser:\n\n  %s\n\n", loopbackURL)
		} else {
			fmt.Fprintf(w, "Open this URL in a browser on this machine:\n\n  %s\n\n", loopbackURL)
		}
	}
	if manualURL != "" {
		if loopbackURL != "" {
			fmt.Fprint(w, "No browser on this machine (e.g. over SSH)? Open this URL anywhere instead,\n")
		} else {
			fmt.Fprint(w, "Open this URL in any browser,\n")
		}
		fmt.Fprintf(w, "sign in, and paste the code it shows (or the URL of the page you end on):\n\n  %s\n\n", manualURL)
	}
	if manualURL == "" && loopbackURL != "" && f.In != nil {
		// No code page at the provider (OpenAI): the browser ends on the
		// loopback address, which on another machine does not load, but its
		// address bar holds the code and the state.
		fmt.Fprintf(w, "No browser on this machine (e.g. over SSH)? Open the URL above in any browser\n"+
			"and sign in. It ends on a page that does not load (%s?code=...).\n"+
			"Copy that whole address from the address bar and paste it here.\n\n", redirect)
	}
	if manualURL == "" && f.In == nil {
		fmt.Fprint(w, "Waiting for the browser to finish signing in...\n")
	}
}

// newState returns 32 random bytes, base64url-encoded.
func newState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24; it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *session) config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.provider.ClientID,
		ClientSecret: s.provider.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.provider.AuthURL,
			TokenURL:  s.provider.TokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURI,
		Scopes:      s.provider.Scopes,
	}
}

func (s *session) authCodeURL(redirectURI string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(s.verifier)}
	for k, v := range s.provider.ExtraAuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return s.config(redirectURI).AuthCodeURL(s.state, opts...)
}

func (s *session) stateMatches(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.state)) == 1
}

// listen starts the loopback callback server on 127.0.0.1 (never a wider
// address: the code must not be reachable from the network) and returns the
// function that stops it and waits for it.
func (s *session) listen(ctx context.Context) (stop func(), err error) {
	ln, err := s.bind(ctx)
	if err != nil {
		return nil, err
	}
	host := s.provider.LoopbackHost
	if host == "" {
		host = "127.0.0.1"
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s.loopbackRedirect = "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + s.provider.LoopbackPath

	srv := &http.Server{
		Handler:           http.HandlerFunc(s.serveCallback),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // always ErrServerClosed after Shutdown/Close
	}()
	return func() {
		// Handlers return as soon as done is closed (it already is), so this
		// only waits for the last page to reach the browser.
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		<-served
	}, nil
}

// bind opens the loopback listener: on the first free port of
// LoopbackPorts (the redirect URIs the client id allows), else on any free
// port.
func (s *session) bind(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	if len(s.provider.LoopbackPorts) == 0 {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen for the oauth callback on 127.0.0.1: %w", err)
		}
		return ln, nil
	}
	var errs []error
	for _, port := range s.provider.LoopbackPorts {
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return ln, nil
		}
		errs = append(errs, err)
	}
	ports := make([]string, len(s.provider.LoopbackPorts))
	for i, p := range s.provider.LoopbackPorts {
		ports[i] = strconv.Itoa(p)
	}
	return nil, fmt.Errorf("listen for the oauth callback on 127.0.0.1 port %s, the only ones %s's client allows (is another login running, e.g. 'codex login'?): %w",
		strings.Join(ports, " or "), s.provider.Name, errors.Join(errs...))
}

// serveCallback handles the browser's return to the loopback redirect URI.
// It keeps the browser waiting until the login has an outcome, so the tab
// says whether the exchange worked, not merely that a code arrived.
func (s *session) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.provider.LoopbackPath {
		http.NotFound(w, r)
		return
	}
	res := s.fromQuery(r.URL.Query(), s.loopbackRedirect, "browser callback")
	if res.notice != "" {
		writePage(w, http.StatusBadRequest, "No authorization code in this request.")
		return
	}
	if errors.Is(res.err, ErrStateMismatch) {
		// Anything on this machine can reach the port: a request that does
		// not carry this login's state is answered and ignored, so it cannot
		// end the login; the right callback may still come.
		writePage(w, http.StatusBadRequest, "This response does not belong to the current login attempt (its state does not match), so it was ignored. Start the sign-in from the URL the terminal shows.")
		select {
		case s.results <- result{notice: "\nIgnored a callback to the local port that does not belong to this login attempt (wrong state). Still waiting..."}:
		case <-s.done:
		}
		return
	}
	if res.err == nil {
		res.reply = make(chan error, 1)
	}
	select {
	case s.results <- res:
	case <-s.done:
		writePage(w, http.StatusConflict, "This login attempt is already over. Return to the terminal.")
		return
	}
	outcome := res.err
	if res.reply != nil {
		select {
		case outcome = <-res.reply:
		case <-s.done:
			// Run has returned; it replies before returning when this
			// callback won, so prefer that reply over "abandoned".
			select {
			case outcome = <-res.reply:
			default:
				outcome = errors.New("the login was completed or cancelled elsewhere")
			}
		}
	}
	if outcome != nil {
		writePage(w, http.StatusBadRequest, "Login failed: "+outcome.Error()+". Return to the terminal for details.")
		return
	}
	writePage(w, http.StatusOK, "Login complete. You can close this tab and return to the terminal.")
}

func writePage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><meta charset=\"utf-8\"><title>ccrelay login</title>"+
		"<body style=\"font-family:sans-serif;margin:3em\"><p>%s</p></body>\n", html.EscapeString(msg))
}

// fromQuery interprets the query of a redirect to redirectURI.
func (s *session) fromQuery(q url.Values, redirectURI, via string) result {
	if e := q.Get("error"); e != "" {
		// An error response ends the login only with this login's state, as
		// a code does (RFC 6749 4.1.2.1 returns the state with errors too):
		// any local process can reach the loopback port, and one without
		// the state must not be able to end the login or print its words.
		if !s.stateMatches(q.Get("state")) {
			return result{err: ErrStateMismatch}
		}
		return result{err: &AuthorizationError{Code: printable(e), Description: printable(q.Get("error_description"))}}
	}
	code := q.Get("code")
	if code == "" {
		return result{notice: "No authorization code found in that URL."}
	}
	if !s.stateMatches(q.Get("state")) {
		return result{err: ErrStateMismatch}
	}
	return result{code: code, redirectURI: redirectURI, via: via}
}

// maxPasteLine bounds one pasted line; codes and callback URLs are far
// shorter.
const maxPasteLine = 64 << 10

// readPaste feeds pasted lines to Run until one yields a code or a fatal
// error, In ends, or Run is over.
func (s *session) readPaste(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1024), maxPasteLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		res := s.parsePaste(line)
		select {
		case s.results <- res:
		case <-s.done:
			return
		}
		if res.notice == "" {
			return // a code or a fatal error: the paste path has done its job
		}
	}
	select {
	case s.results <- result{inputClosed: true, err: sc.Err()}:
	case <-s.done:
	}
}

// parsePaste accepts a full redirect URL (to the loopback or the manual
// redirect URI), "code#state" as Claude's code page shows it, or a bare code
// as Google's code page shows it.
func (s *session) parsePaste(line string) result {
	manual := s.provider.ManualRedirectURL
	if strings.Contains(line, "://") {
		u, err := url.Parse(line)
		if err != nil {
			return result{notice: "That does not look like a URL; paste the code or the whole address."}
		}
		var redirectURI string
		switch {
		case s.loopbackRedirect != "" && sameEndpoint(u, s.loopbackRedirect):
			redirectURI = s.loopbackRedirect
		case manual != "" && sameEndpoint(u, manual):
			redirectURI = manual
		default:
			return result{notice: "That URL is not this login's redirect page; paste the code or the address of the page the login ended on."}
		}
		return s.fromQuery(u.Query(), redirectURI, "pasted URL")
	}

	code, state, hasState := strings.Cut(line, "#")
	code = strings.TrimSpace(code)
	if code == "" {
		return result{notice: "No code found in that input."}
	}
	if hasState && !s.stateMatches(strings.TrimSpace(state)) {
		return result{err: ErrStateMismatch}
	}
	if manual == "" {
		// Without a manual redirect the code must have come from the
		// loopback redirect, which always carries state: insist on it.
		if !hasState {
			return result{notice: "Paste the whole address of the page the login ended on."}
		}
		return result{code: code, redirectURI: s.loopbackRedirect, via: "pasted code"}
	}
	return result{code: code, redirectURI: manual, via: "pasted code"}
}

// sameEndpoint reports whether u points at redirectURI, ignoring the query.
func sameEndpoint(u *url.URL, redirectURI string) bool {
	r, err := url.Parse(redirectURI)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, r.Scheme) && strings.EqualFold(u.Host, r.Host) && u.Path == r.Path
}

// maxPrintable bounds a provider's error text shown to the user.
const maxPrintable = 500

// printable makes text from a redirect or a token endpoint safe to print on
// a terminal: control characters (ESC sequences that move the cursor, clear
// the screen or forge hyperlinks, CR that overwrites a line) and invisible
// format characters (bidirectional overrides) become spaces, and the text is
// cut at maxPrintable bytes.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxPrintable {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			r = ' '
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
