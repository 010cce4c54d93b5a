package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/state"
)

// OAuthConfig describes one OAuth account.
type OAuthConfig struct {
	// AccountID keys the stored credential and the lock, and names the
	// account in logs and hints.
	AccountID string
	// ConfigRefreshToken is the refresh token in config.toml. It seeds the
	// chain of rotated tokens; when it changes (a new login), it wins over
	// whatever is stored.
	ConfigRefreshToken string
	// TokenURL is the token endpoint. Default: Claude's or Google's, per Style.
	TokenURL string
	// ClientID is the OAuth client id. Default: Claude Code's or Gemini CLI's.
	ClientID string
	// ClientSecret is sent by the Google style. Default: Gemini CLI's
	// installed-app secret when ClientID is defaulted too; none for Claude.
	ClientSecret string
	// Scope, when set, is sent with the refresh. Default: none, so both
	// providers keep the scopes granted at login.
	Scope string
	// Style selects the request format (Claude JSON or Google form).
	Style Style
	// Renew is the command that gets this account a new refresh token, for
	// hints. Default: "ccrelay login claude|gemini --account <AccountID>",
	// per Style.
	Renew string
	// NotFound reports whether an error from Store.Credential means "nothing
	// stored for this account" (then the config token is used). Default:
	// errors.Is(err, ErrNotStored). For *store.DB pass
	// func(err error) bool { return errors.Is(err, store.ErrNoRow) }.
	// Any other load error fails the refresh rather than risk reusing a
	// consumed config token.
	NotFound func(error) bool
	// OnRefresh, when set, is told the outcome of every refresh that reached
	// the provider or failed trying (nil on success); metrics and alerts use
	// it. It must not block.
	OnRefresh func(err *RefreshError)
	// OnIDToken, when set, is given the id_token of every successful refresh
	// whose answer has one (OpenAI's names the ChatGPT account), before the
	// new access token is handed to anyone. It must not block, and must not
	// log the token.
	OnIDToken func(idToken string)
}

const (
	// minMargin is the least time before expiry at which a token is renewed.
	minMargin = 60 * time.Second
	// hardMargin: a token with less left is never handed out, not even as a
	// fallback while refreshes fail (a tenth of its lifetime for a token
	// living less than 100 s, see endLocked).
	hardMargin = 10 * time.Second
	// minRefreshGap spaces the refreshes of one account: a token obtained
	// less than this long ago is renewed only once it has actually expired
	// or a 401 rejected it, however short its lifetime (a token living 20 s
	// was once renewed on every request).
	minRefreshGap = 30 * time.Second
	// refreshTimeout bounds one refresh: lock, store re-read and POST.
	refreshTimeout = 30 * time.Second
	// saveTimeout bounds the save that follows a successful POST; it gets its
	// own budget so a slow POST cannot starve the save of a rotated token.
	saveTimeout = 10 * time.Second
	// backoffBase and backoffMax shape the wait after consecutive failures:
	// 5 s, 10 s, 20 s ... 5 min.
	backoffBase = 5 * time.Second
	backoffMax  = 5 * time.Minute
	// maxRunSleep caps Run's sleeps so a suspended machine or a clock jump is
	// noticed within a minute.
	maxRunSleep = time.Minute
	// minRunGap keeps Run from spinning when a token is due again at once.
	minRunGap = time.Second
	// maxSpent is how many consumed refresh tokens are remembered for
	// scrubbing messages.
	maxSpent = 4
)

// OAuth is a Source that refreshes an OAuth access token from a refresh token,
// one refresh per account at a time. Build it with NewOAuth.
type OAuth struct {
	cfg      OAuthConfig
	hc       *http.Client
	st       Store
	lk       Locker
	log      *slog.Logger
	notFound func(error) bool

	// now and sleep are replaced by tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool

	mu sync.Mutex
	// loaded is set once the stored credential (or the config token) is in.
	loaded bool
	// origin is the OriginHash written with every saved credential.
	origin string
	// gen is the chain's generation written with every saved credential
	// (state.Credential.Generation).
	gen int64
	// superseded is set once the store refused a save because a newer
	// login's chain is stored: this chain is kept in memory only.
	superseded bool
	// refreshTok is the newest refresh token: the only one never yet sent.
	refreshTok string
	access     string
	expires    time.Time
	// issued is when access was obtained; it gives the lifetime the renewal
	// margin is a share of. Zero means unknown.
	issued time.Time
	// rejected is the last access token the upstream refused (Invalidate);
	// a stored copy of it is not adopted.
	rejected string
	// spent holds the last consumed refresh tokens, for scrubbing only.
	spent []string

	inflight *call

	lastErr  *RefreshError
	failures int
	retryAt  time.Time

	// dirty means the in-memory credential is newer than the stored one.
	dirty           bool
	persistErr      string
	persistFailures int
	persistRetryAt  time.Time
	persistLogged   bool
}

// call is one refresh in flight; waiters share its result.
type call struct {
	done chan struct{}
	tok  string
	err  error
}

// NewOAuth returns the source of one OAuth account. hc is the account's own
// (proxied) client: refresh traffic leaves the way the account's requests do;
// nil means a plain client. st persists rotated credentials; nil keeps them in
// memory only, which loses a rotated Claude token at restart. lk serialises
// refreshes across processes; nil serialises within this one. log may be nil.
func NewOAuth(cfg OAuthConfig, hc *http.Client, st Store, lk Locker, log *slog.Logger) *OAuth {
	switch cfg.Style {
	case Google:
		if cfg.TokenURL == "" {
			cfg.TokenURL = googleTokenURL
		}
		if cfg.ClientID == "" {
			cfg.ClientID = googleClientID
		}
		// Gemini CLI's installed-app secret goes with its client id, whether the
		// id was defaulted or written out in the config.
		if cfg.ClientID == googleClientID && cfg.ClientSecret == "" {
			cfg.ClientSecret = googleClientSecret
		}
	default:
		if cfg.TokenURL == "" {
			cfg.TokenURL = claudeTokenURL
		}
		if cfg.ClientID == "" {
			cfg.ClientID = claudeClientID
		}
	}
	notFound := cfg.NotFound
	if notFound == nil {
		notFound = func(err error) bool { return errors.Is(err, ErrNotStored) }
	}
	client := &http.Client{}
	if hc != nil {
		c := *hc
		client = &c
	}
	client.CheckRedirect = noRedirect
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OAuth{
		cfg:      cfg,
		hc:       client,
		st:       st,
		lk:       lk,
		log:      log.With("account", cfg.AccountID, "oauth", cfg.Style.String()),
		notFound: notFound,
		now:      time.Now,
		sleep:    sleepCtx,
	}
}

// Token returns the cached access token while it has more than the renewal
// margin left (or was obtained less than minRefreshGap ago and has not ended
// yet), and otherwise refreshes. Concurrent callers share one refresh; each
// stops waiting when its own ctx ends, while the refresh itself runs on (a
// refresh cut off after the provider consumed the old token would lose the
// new one). When a refresh fails but the cached token has not ended (10 s
// before its expiry, see endLocked), that token is returned; otherwise the
// *RefreshError is, and the same error is returned without a new attempt
// until the back-off passes.
func (o *OAuth) Token(ctx context.Context) (string, error) {
	now := o.now()
	o.mu.Lock()
	if o.loaded && o.freshLocked(now) {
		tok := o.access
		o.mu.Unlock()
		return tok, nil
	}
	if o.backoffLocked(now) {
		tok, err := o.fallbackLocked(now)
		o.mu.Unlock()
		return tok, err
	}
	o.mu.Unlock()
	return o.join(ctx)
}

// Invalidate drops the cached access token if it is still token, so the next
// Token call refreshes. Reports about an older token are ignored.
func (o *OAuth) Invalidate(token string) {
	if token == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if token == o.access {
		o.access = ""
		o.rejected = token
	}
}

// Run refreshes ahead of expiry (at the renewal margin) so an idle account
// never meets a request with an expired token, retries failures with capped
// back-off, and retries saving a credential whose save failed. It stops
// retrying a refresh token the provider rejected (a new login is needed;
// Token still tries again after the back-off). It returns when ctx ends.
func (o *OAuth) Run(ctx context.Context) {
	for {
		if o.runDue() {
			if _, err := o.join(ctx); err != nil && ctx.Err() != nil {
				return
			}
		}
		if !o.sleep(ctx, o.nextWake()) {
			return
		}
	}
}

// Status returns a secret-free snapshot.
func (o *OAuth) Status() Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := Status{State: StateOK, ExpiresAt: o.expires}
	switch {
	case o.lastErr != nil:
		s.LastError = o.lastErr.Error()
		s.State = StateRefreshFailing
		if o.lastErr.Kind == provider.TokenInvalid {
			s.State = StateTokenInvalid
			s.Hint = o.loginHint()
		}
	case o.dirty:
		s.LastError = "refreshed credential not saved yet: " + o.persistErr
		s.Hint = "check the state store; until the save succeeds a restart loses the rotated refresh token"
	}
	return s
}

func (o *OAuth) loginHint() string {
	if o.cfg.Renew != "" {
		return "run: " + o.cfg.Renew
	}
	return fmt.Sprintf("run: ccrelay login %s --account %s", o.cfg.Style.loginName(), o.cfg.AccountID)
}

// margin is how long before expiry a token of the given lifetime is renewed:
// 10% of its lifetime but at least a minute, at most half its lifetime, and
// never less than 10 s. An unknown lifetime (0) gets a minute. For a token
// living under 20 s that is all of its life: renewAtLocked spaces such
// refreshes.
func margin(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return minMargin
	}
	m := max(minMargin, lifetime/10)
	m = min(m, lifetime/2)
	return max(m, hardMargin)
}

// freshLocked reports whether the cached token needs no refresh at now.
func (o *OAuth) freshLocked(now time.Time) bool {
	return o.access != "" && now.Before(o.renewAtLocked())
}

// usableLocked reports whether the cached token may still be handed out.
func (o *OAuth) usableLocked(now time.Time) bool {
	return o.access != "" && now.Before(o.endLocked())
}

func (o *OAuth) lifetimeLocked() time.Duration {
	if o.issued.IsZero() {
		return 0
	}
	return o.expires.Sub(o.issued)
}

// endLocked is when the cached token counts as expired: hardMargin before
// its expiry, or a tenth of its lifetime when that is shorter.
func (o *OAuth) endLocked() time.Time {
	skew := hardMargin
	if l := o.lifetimeLocked(); l > 0 {
		skew = min(skew, l/10)
	}
	return o.expires.Add(-skew)
}

// renewAtLocked is when the cached token is renewed: at the renewal margin,
// but no sooner than minRefreshGap after it was obtained, and no later than
// its end.
func (o *OAuth) renewAtLocked() time.Time {
	at := o.expires.Add(-margin(o.lifetimeLocked()))
	if !o.issued.IsZero() {
		at = later(at, o.issued.Add(minRefreshGap))
	}
	return earlier(at, o.endLocked())
}

// runAtLocked is when Run renews the cached token: at renewAtLocked, but no
// sooner than minRefreshGap after it was obtained even when it ends before
// that. An idle account with a very short-lived token is then refreshed
// twice a minute, and a request that meets its expired token refreshes it.
func (o *OAuth) runAtLocked() time.Time {
	at := o.renewAtLocked()
	if !o.issued.IsZero() {
		at = later(at, o.issued.Add(minRefreshGap))
	}
	return at
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (o *OAuth) backoffLocked(now time.Time) bool {
	return o.lastErr != nil && now.Before(o.retryAt)
}

// fallbackLocked is the answer while refreshing is failing: the cached token
// if it is still usable, otherwise the last error.
func (o *OAuth) fallbackLocked(now time.Time) (string, error) {
	if o.usableLocked(now) {
		return o.access, nil
	}
	if o.lastErr == nil {
		return "", &RefreshError{Kind: provider.ServerError, Msg: "no access token"}
	}
	return "", o.lastErr
}

// join starts the refresh, or joins the one in flight, and waits for it or ctx.
func (o *OAuth) join(ctx context.Context) (string, error) {
	o.mu.Lock()
	c := o.inflight
	if c == nil {
		c = &call{done: make(chan struct{})}
		o.inflight = c
		go o.fly(c)
	}
	o.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return "", fmt.Errorf("wait for oauth refresh: %w", ctx.Err())
	}
}

// fly runs one refresh on a context of its own: no waiter's cancellation may
// abort it once the provider may have consumed the old refresh token.
func (o *OAuth) fly(c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	c.tok, c.err = o.sync(ctx)
	o.mu.Lock()
	o.inflight = nil
	o.mu.Unlock()
	close(c.done)
}

// sync brings the credential up to date: loaded, saved and fresh. It runs only
// inside a flight, so it is the single writer of the credential fields (but
// for Invalidate, which only clears the access token).
func (o *OAuth) sync(ctx context.Context) (string, error) {
	if e := o.load(ctx); e != nil {
		return o.fail(e)
	}
	now := o.now()
	o.mu.Lock()
	fresh, dirty, backoff, tok := o.freshLocked(now), o.dirty, o.backoffLocked(now), o.access
	if !dirty && (fresh || backoff) {
		// Fresh (the stored token, or one refreshed while this flight was
		// being started), or failing and not to be retried yet.
		tok, err := o.fallbackLocked(now)
		if fresh {
			tok, err = o.access, nil
		}
		o.mu.Unlock()
		return tok, err
	}
	o.mu.Unlock()

	if o.lk != nil {
		unlock, err := o.lk.Lock(ctx, o.cfg.AccountID)
		if err != nil {
			if dirty {
				o.saveFailed(fmt.Errorf("lock account: %w", err), false)
			}
			if fresh {
				return tok, nil
			}
			return o.fail(&RefreshError{Kind: provider.ServerError, Msg: o.scrub("lock account for refresh: " + err.Error()), cause: err})
		}
		defer unlock()
	}
	if dirty {
		o.retrySave(ctx)
	}
	if fresh {
		return tok, nil
	}
	if backoff {
		o.mu.Lock()
		tok, err := o.fallbackLocked(o.now())
		o.mu.Unlock()
		return tok, err
	}
	if o.lk != nil && !o.isDirty() {
		// Another process may have refreshed while we waited for the lock.
		tok, ok, err := o.reread(ctx)
		if err != nil {
			return o.fail(&RefreshError{Kind: provider.ServerError, Msg: o.scrub("re-read stored credential: " + err.Error()), cause: err})
		}
		if ok {
			return tok, nil
		}
	}
	return o.refresh(ctx)
}

func (o *OAuth) isDirty() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dirty
}

// load reads the stored credential once. A stored chain that grew from the
// config's refresh token is newer than the config and is used; one that grew
// from another token is discarded, because a changed config token means a
// new login or a hand edit, and the operator's latest word wins.
func (o *OAuth) load(ctx context.Context) *RefreshError {
	o.mu.Lock()
	loaded := o.loaded
	o.mu.Unlock()
	if loaded {
		return nil
	}
	cfgRT := o.cfg.ConfigRefreshToken
	origin := ""
	if cfgRT != "" {
		origin = OriginHash(cfgRT)
	}
	var (
		c     state.Credential
		found bool
	)
	if o.st != nil {
		var err error
		c, err = o.st.Credential(ctx, o.cfg.AccountID)
		switch {
		case err == nil:
			found = c.RefreshToken != ""
		case o.notFound(err):
		default:
			// Not knowing whether a newer chain exists, the config token (maybe
			// consumed long ago) must not be tried.
			return &RefreshError{Kind: provider.ServerError, Msg: o.scrub("load stored credential: " + err.Error()), cause: err}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case found && (cfgRT == "" || c.OriginHash == origin):
		o.origin, o.gen = c.OriginHash, c.Generation
		o.refreshTok = c.RefreshToken
		o.access, o.expires, o.issued = c.AccessToken, c.ExpiresAt, c.UpdatedAt
		o.log.Debug("using the stored oauth credential", "expires_at", c.ExpiresAt)
	case cfgRT == "":
		return &RefreshError{Kind: provider.TokenInvalid, Msg: "no refresh token configured; " + o.loginHint()}
	default:
		if found {
			o.log.Info("the config holds a different refresh token than the stored chain grew from; using the config's and discarding the stored credential")
		}
		o.origin = origin
		o.refreshTok = cfgRT
		// A new chain (a new login) outranks the stored one, and any chain
		// started before it.
		o.gen = max(o.now().UnixMilli(), c.Generation+1)
	}
	o.loaded = true
	return nil
}

// reread adopts what another process stored while holding the lock: a newer
// refresh token always, and the access token too if it is fresh (then no
// refresh is needed and ok is true).
func (o *OAuth) reread(ctx context.Context) (tok string, ok bool, err error) {
	c, err := o.st.Credential(ctx, o.cfg.AccountID)
	if err != nil {
		if o.notFound(err) {
			return "", false, nil
		}
		return "", false, err
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.RefreshToken == "" || c.OriginHash != o.origin {
		// A chain from another config token: ours wins (see load).
		return "", false, nil
	}
	if c.RefreshToken != o.refreshTok {
		o.log.Debug("adopting a refresh token rotated by another process")
		o.rememberSpentLocked(o.refreshTok)
		o.refreshTok = c.RefreshToken
	}
	if c.AccessToken != "" && c.AccessToken != o.rejected && c.AccessToken != o.access {
		o.access, o.expires, o.issued = c.AccessToken, c.ExpiresAt, c.UpdatedAt
	}
	if !o.freshLocked(now) {
		return "", false, nil
	}
	o.lastErr, o.failures, o.retryAt = nil, 0, time.Time{}
	return o.access, true, nil
}

// refresh spends the current refresh token at the token endpoint.
//
// Persistence policy. A rotating provider consumes the old refresh token the
// moment it answers, so from then on the new one exists only in this
// process's memory until it is saved. The invariant is: never send a consumed
// refresh token again, and never lose the newest one. Hence:
//   - the new credential is saved BEFORE it replaces the old one in memory
//     and before its access token is returned, so a crash after the save
//     restarts from the new token;
//   - if the save fails, the new refresh token still replaces the old one in
//     memory (the old one is dead upstream; keeping it would only earn an
//     invalid_grant, or get the whole chain revoked by reuse detection), the
//     access token is still returned (the request is not the problem), an
//     error is logged once, Status reports it, and the save is retried before
//     the next refresh and on Run's ticks. The only loss left is a crash
//     before any retry succeeds; it then needs a new login, which no
//     in-process choice can prevent once the provider has answered.
func (o *OAuth) refresh(ctx context.Context) (string, error) {
	o.mu.Lock()
	rt := o.refreshTok
	o.mu.Unlock()

	tr, e := o.post(ctx, rt)
	if e != nil {
		return o.fail(e)
	}
	now := o.now()
	lifetime, bad := tr.lifetime()
	if bad != "" {
		o.log.Warn("the token endpoint sent a nonsensical token lifetime; assuming the default", "hint", bad, "default", defaultLifetime)
	}
	newRT := tr.RefreshToken
	rotated := newRT != "" && newRT != rt
	if newRT == "" {
		newRT = rt // Google usually does not rotate
	}
	o.mu.Lock()
	cred := state.Credential{
		AccountID:    o.cfg.AccountID,
		RefreshToken: newRT,
		AccessToken:  tr.AccessToken,
		ExpiresAt:    now.Add(lifetime),
		OriginHash:   o.origin,
		UpdatedAt:    now,
		Generation:   o.gen,
	}
	o.mu.Unlock()

	err := o.save(ctx, cred)
	if tr.IDToken != "" && o.cfg.OnIDToken != nil {
		// Before the new access token is cached or returned, so no request
		// carries it with the previous account.
		o.cfg.OnIDToken(tr.IDToken)
	}

	o.mu.Lock()
	if rotated {
		o.rememberSpentLocked(rt)
	}
	o.refreshTok = newRT
	o.access, o.expires, o.issued = cred.AccessToken, cred.ExpiresAt, cred.UpdatedAt
	o.lastErr, o.failures, o.retryAt = nil, 0, time.Time{}
	o.mu.Unlock()

	switch {
	case errors.Is(err, state.ErrSuperseded):
		o.supersede()
	case err != nil:
		o.saveFailed(err, rotated)
	default:
		o.saveSucceeded()
	}
	o.log.Info("oauth token refreshed", "rotated", rotated, "expires_at", cred.ExpiresAt)
	if o.cfg.OnRefresh != nil {
		o.cfg.OnRefresh(nil)
	}
	return cred.AccessToken, nil
}

func (o *OAuth) rememberSpentLocked(rt string) {
	if rt == "" {
		return
	}
	o.spent = append(o.spent, rt)
	if len(o.spent) > maxSpent {
		o.spent = o.spent[len(o.spent)-maxSpent:]
	}
}

// fail records a failed refresh and sets the back-off: 5 s doubling to 5 min
// over consecutive failures, at least until a 429's Retry-After, and 5 min
// straight for a rejected refresh token. It returns the cached token if still
// usable, else e.
func (o *OAuth) fail(e *RefreshError) (string, error) {
	now := o.now()
	o.mu.Lock()
	o.failures++
	wait := backoff(o.failures)
	if e.Kind == provider.TokenInvalid {
		wait = backoffMax
	}
	retry := now.Add(wait)
	if e.Until.After(retry) {
		retry = e.Until
	}
	o.retryAt = retry
	e.Until = retry
	if e.Kind == provider.TokenInvalid {
		e.Until = time.Time{} // no waiting cures it: the relay's default cooldown applies
	}
	o.lastErr = e
	tok, err := o.fallbackLocked(now)
	o.mu.Unlock()

	level := slog.LevelWarn
	if e.Kind == provider.TokenInvalid {
		level = slog.LevelError
	}
	o.log.Log(context.Background(), level, "oauth refresh failed", "kind", e.Kind.String(), "error", e.Msg, "retry_in", retry.Sub(now).Round(time.Second))
	if o.cfg.OnRefresh != nil {
		o.cfg.OnRefresh(e)
	}
	return tok, err
}

// backoff is the wait after n consecutive failures.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 10 {
		return backoffMax
	}
	return min(backoffBase<<(n-1), backoffMax)
}

// runDue reports whether Run should start (or join) a refresh now.
func (o *OAuth) runDue() bool {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dirty && !now.Before(o.persistRetryAt) {
		return true
	}
	if o.lastErr != nil && (o.lastErr.Kind == provider.TokenInvalid || now.Before(o.retryAt)) {
		return false
	}
	return !o.loaded || o.access == "" || !now.Before(o.runAtLocked())
}

// nextWake is how long Run sleeps: until the renewal margin, the end of a
// back-off or the next save retry, within [minRunGap, maxRunSleep].
func (o *OAuth) nextWake() time.Duration {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	var at time.Time
	switch {
	case o.lastErr != nil && o.lastErr.Kind == provider.TokenInvalid:
		at = now.Add(maxRunSleep)
	case o.lastErr != nil && now.Before(o.retryAt):
		at = o.retryAt
	case !o.loaded || o.access == "":
		at = now
	default:
		at = o.runAtLocked()
	}
	if o.dirty && o.persistRetryAt.Before(at) {
		at = o.persistRetryAt
	}
	return min(max(at.Sub(now), minRunGap), maxRunSleep)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
