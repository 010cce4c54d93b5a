package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"go.uber.org/goleak"

	"github.com/ccrelay/ccrelay/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeAS is a fake authorization server: /authorize redirects to the
// redirect_uri with a code (or an error), /token checks the PKCE verifier
// against the challenge the code was issued for.
type fakeAS struct {
	t        *testing.T
	srv      *httptest.Server
	provider Provider

	deny      bool // /authorize answers error=access_denied
	tokenFail bool // /token answers 400 invalid_grant, echoing the secrets
	noRefresh bool // /token omits refresh_token
	hang      bool // /token blocks until the request is cancelled

	mu           sync.Mutex
	grants       map[string]grant
	nextCode     int
	tokenCalls   int
	lastVerifier string
	lastRedirect string
}

type grant struct {
	challenge, redirectURI, state string
}

func newFakeAS(t *testing.T, base Provider) *fakeAS {
	t.Helper()
	as := &fakeAS{t: t, grants: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", as.authorize)
	mux.HandleFunc("POST /token", as.token)
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	base.AuthURL = as.srv.URL + "/authorize"
	base.TokenURL = as.srv.URL + "/token"
	as.provider = base
	return as
}

func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := as.provider
	checks := map[string]string{
		"client_id":             p.ClientID,
		"response_type":         "code",
		"code_challenge_method": "S256",
		"scope":                 strings.Join(p.Scopes, " "),
	}
	for k, v := range p.ExtraAuthParams {
		checks[k] = v
	}
	for k, want := range checks {
		if got := q.Get(k); got != want {
			as.t.Errorf("authorize: %s = %q, want %q", k, got, want)
		}
	}
	if q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("redirect_uri") == "" {
		as.t.Errorf("authorize: missing challenge, state or redirect_uri in %v", q)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	target, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	if as.deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user denied the request")
	} else {
		as.mu.Lock()
		as.nextCode++
		code := fmt.Sprintf("code-%d-%s", as.nextCode, q.Get("state")[:6])
		as.grants[code] = grant{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), state: q.Get("state")}
		as.mu.Unlock()
		back.Set("code", code)
	}
	target.RawQuery = back.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	p := as.provider
	var in struct {
		GrantType, Code, RedirectURI, ClientID, ClientSecret, CodeVerifier, State string
	}
	if p.JSONExchange {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			as.t.Errorf("token: Content-Type = %q, want application/json", ct)
		}
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			as.t.Errorf("token: decode JSON: %v", err)
		}
		in.GrantType, in.Code, in.RedirectURI = body["grant_type"], body["code"], body["redirect_uri"]
		in.ClientID, in.CodeVerifier, in.State = body["client_id"], body["code_verifier"], body["state"]
		in.ClientSecret = body["client_secret"]
	} else {
		if err := r.ParseForm(); err != nil {
			as.t.Errorf("token: parse form: %v", err)
		}
		f := r.PostForm
		in.GrantType, in.Code, in.RedirectURI = f.Get("grant_type"), f.Get("code"), f.Get("redirect_uri")
		in.ClientID, in.CodeVerifier, in.ClientSecret = f.Get("client_id"), f.Get("code_verifier"), f.Get("client_secret")
	}

	as.mu.Lock()
	as.tokenCalls++
	as.lastVerifier = in.CodeVerifier
	as.lastRedirect = in.RedirectURI
	g, ok := as.grants[in.Code]
	as.mu.Unlock()

	if as.hang {
		<-r.Context().Done()
		return
	}
	if as.tokenFail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		// A careless server echoing everything back: none of it may reach
		// the error message.
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":"Invalid code %s for verifier %s and state %s"}`,
			in.Code, in.CodeVerifier, g.state)
		return
	}

	var problems []string
	if in.GrantType != "authorization_code" {
		problems = append(problems, "grant_type "+in.GrantType)
	}
	if in.ClientID != p.ClientID {
		problems = append(problems, "client_id "+in.ClientID)
	}
	if in.ClientSecret != p.ClientSecret {
		problems = append(problems, "client_secret mismatch")
	}
	if !ok {
		problems = append(problems, "unknown code")
	} else {
		sum := sha256.Sum256([]byte(in.CodeVerifier))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			problems = append(problems, "PKCE verifier does not match the challenge")
		}
		if in.RedirectURI != g.redirectURI {
			problems = append(problems, fmt.Sprintf("redirect_uri %q, code issued for %q", in.RedirectURI, g.redirectURI))
		}
		if p.JSONExchange && in.State != g.state {
			problems = append(problems, "state mismatch")
		}
	}
	if len(problems) > 0 {
		as.t.Errorf("token: %s", strings.Join(problems, "; "))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_request"}`)
		return
	}

	resp := map[string]any{
		"access_token": "at-secret",
		"token_type":   "Bearer",
		"expires_in":   3600,
	}
	if !as.noRefresh {
		resp["refresh_token"] = "rt-secret"
	}
	switch {
	case p.JSONExchange:
		resp["account"] = map[string]string{"uuid": "u-1", "email_address": "claude@example.com"}
	case p.IDTokenAccount != nil:
		resp["id_token"] = fakeJWT(`{"iss":"https://auth.openai.com","email":"codex@example.com","https://api.openai.com/auth":{"chatgpt_account_id":"ws-codex-1","chatgpt_plan_type":"plus"}}`)
	default:
		resp["id_token"] = fakeJWT(`{"iss":"https://accounts.google.com","email":"gemini@example.com"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (as *fakeAS) calls() (n int, verifier, redirect string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.tokenCalls, as.lastVerifier, as.lastRedirect
}

func fakeJWT(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".sig"
}

// syncBuffer is an ErrOut the test can read while Run writes to it.
type syncBuffer = testutil.SyncBuffer

// printedURLs returns the authorization URLs Run printed, keyed by whether
// their redirect_uri is the loopback one.
func printedURLs(t *testing.T, out string) (loopback, manual string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "http") {
			continue
		}
		u, err := url.Parse(line)
		if err != nil {
			t.Fatalf("printed URL %q: %v", line, err)
		}
		redirect := u.Query().Get("redirect_uri")
		if strings.HasPrefix(redirect, "http://localhost:") || strings.HasPrefix(redirect, "http://127.0.0.1:") {
			loopback = line
		} else {
			manual = line
		}
	}
	return loopback, manual
}

type runResult struct {
	tok *Token
	err error
}

func startRun(ctx context.Context, f *Flow) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		tok, err := f.Run(ctx)
		ch <- runResult{tok, err}
	}()
	return ch
}

func waitRun(t *testing.T, ch <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return runResult{}
	}
}

// fakeBrowser returns an OpenBrowser that visits the URL like a browser
// would, following the redirect to the loopback callback, and reports the
// page it ends on.
type browserVisit struct {
	status int
	body   string
	err    error
}

func fakeBrowser(t *testing.T) (func(string) error, <-chan browserVisit) {
	client := testutil.LoopbackClient(t, true)
	visits := make(chan browserVisit, 1)
	return func(u string) error {
		resp, err := client.Get(u)
		if err != nil {
			visits <- browserVisit{err: err}
			return nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		visits <- browserVisit{status: resp.StatusCode, body: string(body), err: err}
		return nil
	}, visits
}

func waitVisit(t *testing.T, visits <-chan browserVisit) browserVisit {
	t.Helper()
	select {
	case v := <-visits:
		if v.err != nil {
			t.Fatalf("browser: %v", v.err)
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("browser never finished")
		return browserVisit{}
	}
}

func providers() []Provider {
	return []Provider{ClaudeProvider(), GoogleProvider()}
}

func wantEmail(p Provider) string {
	switch {
	case p.JSONExchange:
		return "claude@example.com"
	case p.IDTokenAccount != nil:
		return "codex@example.com"
	}
	return "gemini@example.com"
}

func checkToken(t *testing.T, p Provider, tok *Token) {
	t.Helper()
	if tok == nil {
		t.Fatal("nil token")
	}
	if tok.AccessToken != "at-secret" || tok.RefreshToken != "rt-secret" {
		t.Errorf("tokens = %q, %q", tok.AccessToken, tok.RefreshToken)
	}
	if tok.Email != wantEmail(p) {
		t.Errorf("Email = %q, want %q", tok.Email, wantEmail(p))
	}
	if wantAccount := map[bool]string{true: "ws-codex-1"}[p.IDTokenAccount != nil]; tok.Account != wantAccount {
		t.Errorf("Account = %q, want %q", tok.Account, wantAccount)
	}
	if d := time.Until(tok.ExpiresAt); d < 55*time.Minute || d > 61*time.Minute {
		t.Errorf("ExpiresAt in %v, want about 1h", d)
	}
	if s := fmt.Sprint(tok); strings.Contains(s, "secret") {
		t.Errorf("Token printed its secrets: %s", s)
	}
}

func TestRunBrowserCallback(t *testing.T) {
	for _, base := range providers() {
		for _, withPaste := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/paste=%v", base.Name, withPaste), func(t *testing.T) {
				as := newFakeAS(t, base)
				open, visits := fakeBrowser(t)
				errOut := &syncBuffer{}
				f := &Flow{
					Provider:    as.provider,
					HTTPClient:  testutil.LoopbackClient(t, false),
					OpenBrowser: open,
					ErrOut:      errOut,
				}
				var pw *io.PipeWriter
				if withPaste {
					var pr *io.PipeReader
					pr, pw = io.Pipe()
					f.In = pr
				}
				res := waitRun(t, startRun(context.Background(), f))
				if pw != nil {
					pw.Close() // ends the abandoned paste reader
				}
				if res.err != nil {
					t.Fatalf("Run: %v\noutput:\n%s", res.err, errOut.String())
				}
				checkToken(t, as.provider, res.tok)

				v := waitVisit(t, visits)
				if v.status != http.StatusOK || !strings.Contains(v.body, "close this tab") {
					t.Errorf("browser page = %d %q", v.status, v.body)
				}
				n, _, redirect := as.calls()
				if n != 1 {
					t.Errorf("token endpoint called %d times, want 1", n)
				}
				wantPrefix := "http://" + base.LoopbackHost + ":"
				if !strings.HasPrefix(redirect, wantPrefix) || !strings.HasSuffix(redirect, base.LoopbackPath) {
					t.Errorf("exchange redirect_uri = %q, want %s<port>%s", redirect, wantPrefix, base.LoopbackPath)
				}
				loopback, manual := printedURLs(t, errOut.String())
				if loopback == "" {
					t.Error("loopback URL not printed")
				}
				if withPaste != (manual != "") {
					t.Errorf("manual URL printed = %v, want %v", manual != "", withPaste)
				}
			})
		}
	}
}

// userVisit plays the user signing in on another machine: it opens authURL
// and returns where the provider redirected, without going there.
func userVisit(t *testing.T, authURL string) *url.URL {
	t.Helper()
	resp, err := testutil.LoopbackClient(t, false).Get(authURL)
	if err != nil {
		t.Fatalf("visit authorize URL: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize did not redirect: %v", err)
	}
	return loc
}

func TestRunPaste(t *testing.T) {
	tests := []struct {
		name     string
		provider Provider
		loopback bool                  // the user opens the loopback URL rather than the manual one
		paste    func(*url.URL) string // what the user pastes, from the redirect location
	}{
		{
			name:     "claude code#state",
			provider: ClaudeProvider(),
			paste:    func(u *url.URL) string { return u.Query().Get("code") + "#" + u.Query().Get("state") },
		},
		{
			name:     "claude manual callback URL",
			provider: ClaudeProvider(),
			paste:    func(u *url.URL) string { return u.String() },
		},
		{
			name:     "claude loopback URL from a remote browser",
			provider: ClaudeProvider(),
			loopback: true,
			paste:    func(u *url.URL) string { return u.String() },
		},
		{
			name:     "google bare code",
			provider: GoogleProvider(),
			paste:    func(u *url.URL) string { return "  " + u.Query().Get("code") + "  " },
		},
		{
			name:     "google manual callback URL",
			provider: GoogleProvider(),
			paste:    func(u *url.URL) string { return u.String() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.provider)
			pr, pw := io.Pipe()
			defer pw.Close()
			errOut := &syncBuffer{}
			f := &Flow{
				Provider:   as.provider,
				HTTPClient: testutil.LoopbackClient(t, false),
				OpenBrowser: func(string) error {
					t.Error("browser opened despite NoBrowser")
					return nil
				},
				NoBrowser: true,
				In:        pr,
				ErrOut:    errOut,
			}
			done := startRun(context.Background(), f)
			loopbackURL, manualURL := printedURLs(t, errOut.WaitFor(t, "Paste the code"))
			authURL := manualURL
			if tt.loopback {
				authURL = loopbackURL
			}
			loc := userVisit(t, authURL)

			// A wrong line first: the flow says so and keeps waiting.
			fmt.Fprintln(pw, "https://example.invalid/elsewhere?code=x")
			errOut.WaitFor(t, "not this login's redirect page")
			fmt.Fprintln(pw, tt.paste(loc))

			res := waitRun(t, done)
			if res.err != nil {
				t.Fatalf("Run: %v\noutput:\n%s", res.err, errOut.String())
			}
			checkToken(t, as.provider, res.tok)
			_, _, redirect := as.calls()
			wantRedirect := tt.provider.ManualRedirectURL
			if tt.loopback {
				wantRedirect = loc.Scheme + "://" + loc.Host + loc.Path
			}
			if redirect != wantRedirect {
				t.Errorf("exchange redirect_uri = %q, want %q", redirect, wantRedirect)
			}
		})
	}
}

func TestRunStateMismatch(t *testing.T) {
	tests := []struct {
		name string
		// attack pastes a code with a foreign state.
		attack func(t *testing.T, pw io.Writer, loopbackRedirect string)
	}{
		{
			name: "pasted code#state",
			attack: func(t *testing.T, pw io.Writer, _ string) {
				fmt.Fprintln(pw, "stolen-code#forged-state")
			},
		},
		{
			name: "pasted manual URL",
			attack: func(t *testing.T, pw io.Writer, _ string) {
				fmt.Fprintln(pw, "https://platform.claude.com/oauth/code/callback?code=stolen&state=forged")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, ClaudeProvider())
			pr, pw := io.Pipe()
			defer pw.Close()
			errOut := &syncBuffer{}
			f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), In: pr, ErrOut: errOut}
			done := startRun(context.Background(), f)
			loopbackURL, _ := printedURLs(t, errOut.WaitFor(t, "Paste the code"))
			u, err := url.Parse(loopbackURL)
			if err != nil {
				t.Fatal(err)
			}
			tt.attack(t, pw, u.Query().Get("redirect_uri"))

			res := waitRun(t, done)
			if !errors.Is(res.err, ErrStateMismatch) {
				t.Fatalf("Run error = %v, want ErrStateMismatch", res.err)
			}
			if n, _, _ := as.calls(); n != 0 {
				t.Errorf("token endpoint called %d times after a state mismatch", n)
			}
		})
	}
}

// TestRunWrongStateCallbackIgnored: requests to the loopback port that do
// not carry this login's state (forged, missing, or an error from another
// attempt) get an error page and are ignored; the real callback that
// follows still completes the login.
func TestRunWrongStateCallbackIgnored(t *testing.T) {
	as := newFakeAS(t, ClaudeProvider())
	errOut := &syncBuffer{}
	f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), ErrOut: errOut}
	done := startRun(context.Background(), f)
	loopbackURL, _ := printedURLs(t, errOut.WaitFor(t, "Waiting for the browser"))
	u, err := url.Parse(loopbackURL)
	if err != nil {
		t.Fatal(err)
	}
	redirect := u.Query().Get("redirect_uri")
	client := testutil.LoopbackClient(t, false)
	for _, query := range []string{"?code=stolen&state=forged", "?code=stolen", "?error=access_denied&state=forged",
		"?error=access_denied", "?error=access_denied&error_description=%1B%5B2J%1B%5D8%3B%3Bhttps%3A%2F%2Fevil.example%07click%1B%5D8%3B%3B%07"} {
		resp, err := client.Get(redirect + query)
		if err != nil {
			t.Fatalf("callback %s: %v", query, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "ignored") {
			t.Errorf("callback %s: page = %d %q", query, resp.StatusCode, body)
		}
		select {
		case r := <-done:
			t.Fatalf("callback %s ended the login: %v", query, r.err)
		default:
		}
	}
	errOut.WaitFor(t, "Ignored a callback")

	// The user now signs in for real.
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
	if n, _, _ := as.calls(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1", n)
	}
}

func TestRunAccessDenied(t *testing.T) {
	for _, base := range providers() {
		t.Run(base.Name, func(t *testing.T) {
			as := newFakeAS(t, base)
			as.deny = true
			open, visits := fakeBrowser(t)
			f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), OpenBrowser: open}
			res := waitRun(t, startRun(context.Background(), f))
			var ae *AuthorizationError
			if !errors.As(res.err, &ae) || ae.Code != "access_denied" {
				t.Fatalf("Run error = %v, want AuthorizationError access_denied", res.err)
			}
			if !strings.Contains(res.err.Error(), "denied") {
				t.Errorf("error message %q does not say access was denied", res.err)
			}
			v := waitVisit(t, visits)
			if v.status != http.StatusBadRequest || !strings.Contains(v.body, "Login failed") {
				t.Errorf("browser page = %d %q", v.status, v.body)
			}
		})
	}
}

func TestRunContextCancel(t *testing.T) {
	tests := []struct {
		name string
		hang bool // cancel during the code exchange rather than while waiting
	}{
		{name: "while waiting for a code"},
		{name: "during the exchange", hang: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, GoogleProvider())
			as.hang = tt.hang
			pr, pw := io.Pipe()
			defer pw.Close()
			errOut := &syncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), In: pr, ErrOut: errOut}
			done := startRun(ctx, f)
			_, manualURL := printedURLs(t, errOut.WaitFor(t, "Paste the code"))
			if tt.hang {
				fmt.Fprintln(pw, userVisit(t, manualURL).Query().Get("code"))
				errOut.WaitFor(t, "exchanging")
			}
			start := time.Now()
			cancel()
			res := waitRun(t, done)
			if !errors.Is(res.err, context.Canceled) {
				t.Fatalf("Run error = %v, want context.Canceled", res.err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Run took %v to return after cancel", d)
			}
		})
	}
}

func TestRunExchangeErrors(t *testing.T) {
	tests := []struct {
		name      string
		provider  Provider
		tokenFail bool
		noRefresh bool
		check     func(t *testing.T, err error)
	}{
		{
			name: "claude invalid_grant", provider: ClaudeProvider(), tokenFail: true,
			check: wantInvalidGrant,
		},
		{
			name: "google invalid_grant", provider: GoogleProvider(), tokenFail: true,
			check: wantInvalidGrant,
		},
		{
			name: "claude no refresh token", provider: ClaudeProvider(), noRefresh: true,
			check: wantNoRefresh,
		},
		{
			name: "google no refresh token", provider: GoogleProvider(), noRefresh: true,
			check: wantNoRefresh,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.provider)
			as.tokenFail, as.noRefresh = tt.tokenFail, tt.noRefresh
			open, visits := fakeBrowser(t)
			errOut := &syncBuffer{}
			f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), OpenBrowser: open, ErrOut: errOut}
			res := waitRun(t, startRun(context.Background(), f))
			if res.err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			tt.check(t, res.err)

			v := waitVisit(t, visits)
			_, verifier, _ := as.calls()
			for _, secret := range []string{verifier, "code-1-", "at-secret", "rt-secret"} {
				for where, text := range map[string]string{"error": res.err.Error(), "output": errOut.String(), "page": v.body} {
					if secret != "" && strings.Contains(text, secret) {
						t.Errorf("%s contains secret %q: %s", where, secret, text)
					}
				}
			}
			if v.status != http.StatusBadRequest {
				t.Errorf("browser page status = %d, want 400", v.status)
			}
		})
	}
}

func wantInvalidGrant(t *testing.T, err error) {
	t.Helper()
	var ee *ExchangeError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v (%T) is not an *ExchangeError", err, err)
	}
	if ee.StatusCode != http.StatusBadRequest || ee.Code != "invalid_grant" {
		t.Errorf("ExchangeError = %+v", ee)
	}
	msg := err.Error()
	if !strings.Contains(msg, "400") || !strings.Contains(msg, "invalid_grant") || !strings.Contains(msg, "Invalid code [redacted]") {
		t.Errorf("message %q lacks status, error code or the redacted description", msg)
	}
	if strings.Contains(msg, "state ") && !strings.Contains(msg, "state [redacted]") {
		t.Errorf("message %q leaks the state", msg)
	}
}

func wantNoRefresh(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoRefreshToken) {
		t.Fatalf("error = %v, want ErrNoRefreshToken", err)
	}
	if !strings.HasPrefix(err.Error(), "no refresh token returned; ") {
		t.Errorf("message = %q", err)
	}
}

func TestRunInputClosedKeepsWaiting(t *testing.T) {
	// In ending (stdin is /dev/null) leaves the callback path: Run keeps
	// waiting for the browser until ctx ends.
	as := newFakeAS(t, ClaudeProvider())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	f := &Flow{Provider: as.provider, HTTPClient: testutil.LoopbackClient(t, false), In: strings.NewReader("")}
	res := waitRun(t, startRun(ctx, f))
	if !errors.Is(res.err, context.DeadlineExceeded) {
		t.Fatalf("Run error = %v, want DeadlineExceeded", res.err)
	}
}

func TestRunInvalidProvider(t *testing.T) {
	f := &Flow{Provider: namedProvider("broken")}
	_, err := f.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no token URL") || !strings.Contains(err.Error(), "no client id") {
		t.Fatalf("Run error = %v, want every missing field named", err)
	}
}

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		name, body      string
		wantCode, wantD string
	}{
		{"rfc6749", `{"error":"invalid_grant","error_description":"expired"}`, "invalid_grant", "expired"},
		{"anthropic shape", `{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`, "invalid_request_error", "bad"},
		{"not json", `<html>Cloudflare</html>`, "", ""},
		{"empty", ``, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ee := parseErrorBody(403, []byte(tt.body))
			if ee.StatusCode != 403 || ee.Code != tt.wantCode || ee.Description != tt.wantD {
				t.Errorf("parseErrorBody = %+v, want code %q description %q", ee, tt.wantCode, tt.wantD)
			}
		})
	}
}

func TestEmailFromIDToken(t *testing.T) {
	tests := []struct {
		name, jwt, want string
	}{
		{"email", fakeJWT(`{"email":"a@b.c"}`), "a@b.c"},
		{"no email", fakeJWT(`{"sub":"1"}`), ""},
		{"garbage", "not-a-jwt", ""},
		{"bad base64", "a.!!!.c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := emailFromIDToken(tt.jwt); got != tt.want {
				t.Errorf("emailFromIDToken = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAuthorizationErrorPrintable: a provider's error text reaches the
// terminal without control characters (escape sequences could clear the
// screen, forge a hyperlink or rewrite what the user reads).
func TestAuthorizationErrorPrintable(t *testing.T) {
	s := &session{state: "the-state"}
	q := url.Values{"state": {"the-state"}, "error": {"access_denied\x1b[31m"},
		"error_description": {"\x1b[2J\x1b]8;;https://evil.example\x07click here\x1b]8;;\x07\rfine\u202e" + strings.Repeat("x", 2000)}}
	res := s.fromQuery(q, "http://127.0.0.1/callback", "test")
	var ae *AuthorizationError
	if !errors.As(res.err, &ae) {
		t.Fatalf("got %+v, want an AuthorizationError", res)
	}
	msg := res.err.Error()
	for _, r := range msg {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("error message holds %U: %q", r, msg)
		}
	}
	if !strings.Contains(msg, "click here") || len(msg) > 700 {
		t.Errorf("error message %q (%d bytes)", msg, len(msg))
	}
	ee := &ExchangeError{StatusCode: 400, Code: "invalid_grant\x1b[0m", Description: "bad\x1b[2J"}
	if strings.ContainsRune(ee.Error(), 0x1b) {
		t.Errorf("ExchangeError prints an escape: %q", ee.Error())
	}
}
