package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/store"
)

var (
	_ relay.ProjectSource = (*projectSource)(nil)
	_ projectStore        = (*store.DB)(nil)
)

// discoveryTimeout bounds one project discovery, onboarding included
// (Gemini CLI polls onboardUser every 5 s).
const discoveryTimeout = 2 * time.Minute

// wireGemini gives the accounts at start their project sources (wireProject).
func (a *App) wireGemini() {
	for _, up := range a.upstreams {
		a.wireProject(up)
	}
}

// wireProject gives up its project source when its type speaks the Code
// Assist API (accounttype.Spec.CodeAssist), at start and at a reload. The
// relay asks it once per attempt while building the request; a failed
// lookup is the account's (its Verdict), a refused token earns one refresh
// (StaleToken).
func (a *App) wireProject(up *relay.Upstream) {
	if up.TypeSpec().CodeAssist {
		up.Project = newProjectSource(up.Config, up.Client, a.DB, a.Log)
	}
}

// projectStore caches discovered projects across restarts.
type projectStore interface {
	ProjectID(ctx context.Context, accountID string) (string, error)
	SaveProjectID(ctx context.Context, accountID, project string) error
}

// projectSource yields the Code Assist project of one gemini account: the
// configured project_id when set, else the one cached in the database, else
// one found by gemini.DiscoverProject, once (concurrent first requests share
// the lookup) and through the account's own client, then saved.
type projectSource struct {
	accountID string
	pin       string
	base      string
	hc        *http.Client
	db        projectStore
	log       *slog.Logger
	// pollEvery is the onboarding poll interval; 0 means Gemini CLI's 5 s.
	pollEvery time.Duration

	project atomic.Pointer[string]
	mu      sync.Mutex
	flight  *projectFlight
}

// projectFlight is one lookup in progress; done is closed when it ends.
type projectFlight struct {
	done    chan struct{}
	project string
	err     error
}

func newProjectSource(ac config.AccountConfig, hc *http.Client, db projectStore, log *slog.Logger) *projectSource {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &projectSource{accountID: ac.ID, pin: ac.ProjectID, base: ac.APIURL, hc: hc, db: db, log: log.With("account", ac.ID)}
}

// Project returns the account's Code Assist project. accessToken is used only
// when the project must be discovered. A caller whose ctx ends stops waiting;
// the lookup itself runs on, bounded by discoveryTimeout, for the others.
func (p *projectSource) Project(ctx context.Context, accessToken string) (string, error) {
	if p.pin != "" {
		return p.pin, nil
	}
	if v := p.project.Load(); v != nil {
		return *v, nil
	}
	p.mu.Lock()
	if v := p.project.Load(); v != nil {
		p.mu.Unlock()
		return *v, nil
	}
	f := p.flight
	if f == nil {
		f = &projectFlight{done: make(chan struct{})}
		p.flight = f
		go p.resolve(context.WithoutCancel(ctx), accessToken, f)
	}
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.project, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (p *projectSource) resolve(ctx context.Context, accessToken string, f *projectFlight) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	project, err := p.lookup(ctx, accessToken)
	p.mu.Lock()
	if err == nil {
		p.project.Store(&project)
	}
	p.flight = nil
	p.mu.Unlock()
	f.project, f.err = project, err
	close(f.done)
}

func (p *projectSource) lookup(ctx context.Context, accessToken string) (string, error) {
	if p.db != nil {
		id, err := p.db.ProjectID(ctx, p.accountID)
		if err != nil {
			p.log.Warn("could not read the cached code assist project; discovering it", "err", err)
		} else if id != "" {
			return id, nil
		}
	}
	project, err := gemini.DiscoverProject(ctx, p.hc, p.base, accessToken, "", p.pollEvery)
	if err != nil {
		return "", &projectError{err: err}
	}
	p.log.Info("discovered the code assist project", "project", project)
	if p.db != nil {
		if err := p.db.SaveProjectID(ctx, p.accountID, project); err != nil {
			p.log.Warn("could not save the code assist project; it will be discovered again after a restart", "err", err)
		}
	}
	return project, nil
}

// projectError is a failed discovery; its Verdict tells the scheduler how
// long to leave the account alone.
type projectError struct{ err error }

func (e *projectError) Error() string { return "code assist project discovery: " + e.err.Error() }
func (e *projectError) Unwrap() error { return e.err }

// StaleToken reports a 401 from a setup call: the access token was refused,
// and one refresh may fix it.
func (e *projectError) StaleToken() bool {
	var ae *gemini.APIError
	return errors.As(e.err, &ae) && ae.StatusCode == http.StatusUnauthorized
}

// Verdict implements relay.Verdicter.
func (e *projectError) Verdict() provider.Verdict {
	v := provider.Verdict{Kind: provider.Network, Reason: e.Error()}
	var ae *gemini.APIError
	switch {
	case errors.Is(e.err, gemini.ErrProjectRequired):
		v.Kind = provider.Unavailable
		v.Reason += "; set project_id on this account to your Google Cloud project"
	case errors.Is(e.err, gemini.ErrIneligible):
		v.Kind = provider.Unavailable
	case errors.As(e.err, &ae):
		switch {
		case ae.StatusCode == http.StatusTooManyRequests:
			v.Kind = provider.RateLimited
		case ae.StatusCode >= 500:
			v.Kind = provider.ServerError
		default:
			// 400, 401, 403, 404 from setup calls are about the account.
			v.Kind = provider.Unavailable
		}
	}
	return v
}
