package credential

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/provider"
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
	// Type is the account's type (required, with a Refresh): the request
	// format (Refresh.Form: a form body, else JSON), the default endpoint,
	// client and scope, and the hint that gets a new refresh token. Logs
	// name it.
	Type *accounttype.Spec
	// TokenURL is the token endpoint. Default: the type's.
	TokenURL string
	// ClientID is the OAuth client id. Default: the type's.
	ClientID string
	// ClientSecret is sent with the refresh. Default: the type's secret
	// (Gemini CLI's installed-app secret) when ClientID is the type's
	// client, none otherwise.
	ClientSecret string
	// Scope, when set, is sent with the refresh. Default: the type's
	// (Refresh.Scope), else none, so the provider keeps the scopes granted
	// at login.
	Scope string
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
	cfg.TokenURL, cfg.ClientID, cfg.ClientSecret = cfg.Type.Refresh.Client(cfg.TokenURL, cfg.ClientID, cfg.ClientSecret)
	if cfg.Scope == "" {
		cfg.Scope = cfg.Type.Refresh.Scope
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
		log:      log.With("account", cfg.AccountID, "type", cfg.Type.Type),
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

// loginHint is what gets the account a new refresh token.
func (o *OAuth) loginHint() string { return "run: " + o.cfg.Type.Renew(o.cfg.AccountID) }
